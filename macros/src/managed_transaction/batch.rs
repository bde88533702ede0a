//! `batch`: a batched body runs in its batch's task, to its end even when
//! its caller is gone (its writes commit or roll back with the batch), so
//! it owns what it uses: no borrowed arguments, no `&self`. Checked here so
//! that the error names the argument, not a lifetime deep in the expansion.

use syn::visit_mut::VisitMut;
use syn::{Lifetime, Type};

use super::validate::Checked;
use crate::common::errors::Errors;

/// An error on each receiver or argument type that borrows; `true` when
/// there is none.
pub(crate) fn check_owned(checked: &Checked, errors: &mut Errors) -> bool {
    let mut owned = true;
    if let Some(receiver) = &checked.receiver
        && (receiver.reference.is_some() || borrows(&receiver.ty))
    {
        errors.push(syn::Error::new_spanned(
            receiver,
            "a `batch` function cannot borrow `self`: its body runs in the batch's task, and \
             runs to its end even if the caller is gone; make it a free function taking owned \
             values (clone what it needs from `self`), or drop `batch`",
        ));
        owned = false;
    }
    for arg in &checked.args {
        if borrows(&arg.ty) {
            errors.push(syn::Error::new_spanned(
                &arg.ty,
                "a `batch` function takes owned arguments: its body runs in the batch's task, \
                 and runs to its end even if the caller is gone, so it cannot borrow the \
                 caller's data; pass an owned value (`String` for `&str`, an `Arc`, a clone), \
                 or drop `batch`",
            ));
            owned = false;
        }
    }
    owned
}

/// Whether `ty` holds a reference or a lifetime other than `'static`.
fn borrows(ty: &Type) -> bool {
    struct Finder(bool);
    impl VisitMut for Finder {
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            if r.lifetime.as_ref().is_none_or(|l| l.ident != "static") {
                self.0 = true;
            }
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
        fn visit_lifetime_mut(&mut self, l: &mut Lifetime) {
            if l.ident != "static" {
                self.0 = true;
            }
        }
    }
    let mut finder = Finder(false);
    finder.visit_type_mut(&mut ty.clone());
    finder.0
}
