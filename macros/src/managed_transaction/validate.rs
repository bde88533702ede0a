//! Checks of the annotated function: `async`, not `const`/`unsafe`, a
//! shareable receiver, the transaction as first parameter, a return type.
//! What it finds is split into the pieces [`expand`](super::expand) re-emits.

use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, Ident, ItemFn, Pat, PatIdent, PatType, Receiver, ReturnType, Type, TypePath,
};

use crate::common::errors::Errors;

/// The transaction parameter (`txn: &Txn`), which becomes the resolver.
pub(crate) struct TxnParam {
    /// `txn` or `_`: the closure's parameter.
    pub(crate) pat: Pat,
    /// `Txn` in `&Txn` (without the reference's lifetime, which must stay
    /// higher-ranked in the closure).
    pub(crate) ty: TypePath,
}

/// Another parameter: kept in the signature, copied afresh for each run.
pub(crate) struct Arg {
    pub(crate) attrs: Vec<Attribute>,
    /// The name in the rewritten signature: the user's identifier (without
    /// `mut`), or `__ck_arg<N>` for a destructuring pattern.
    pub(crate) ident: Ident,
    /// The user's pattern, bound inside the closure on each run.
    pub(crate) pat: Pat,
    pub(crate) ty: Box<Type>,
    /// Where a "not Clone" error points: the parameter's type.
    pub(crate) span: Span,
}

/// A function that passed every check.
pub(crate) struct Checked {
    pub(crate) function: ItemFn,
    pub(crate) receiver: Option<Receiver>,
    pub(crate) txn: TxnParam,
    pub(crate) args: Vec<Arg>,
}

/// Checks `function`; `None` when it cannot be rewritten (errors pushed).
pub(crate) fn check(function: ItemFn, errors: &mut Errors) -> Option<Checked> {
    let mut local = Errors::default();
    check_signature(&function, &mut local);
    let params = split_params(&function, &mut local);
    let failed = !local.is_empty();
    errors.append(local);
    let (receiver, txn, args) = params?;
    (!failed).then_some(Checked {
        function,
        receiver,
        txn,
        args,
    })
}

fn check_signature(function: &ItemFn, errors: &mut Errors) {
    let sig = &function.sig;
    if let Some(c) = &sig.constness {
        errors.spanned(
            c,
            "a managed transaction cannot be a `const fn`: it runs database I/O",
        );
    }
    if let Some(u) = &sig.unsafety {
        errors.spanned(
            u,
            "a managed transaction cannot be an `unsafe fn`: its body runs inside a closure, where the \
             function's `unsafe` does not reach; keep the function safe and use `unsafe {}` blocks inside",
        );
    }
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            "the `async` keyword is missing from the function declaration: a managed transaction is an `async fn`",
        );
    }
    if let Some(v) = &sig.variadic {
        errors.spanned(v, "a managed transaction cannot be variadic");
    }
    if let ReturnType::Default = sig.output {
        errors.push(syn::Error::new(
            sig.paren_token.span.close(),
            "a managed transaction returns `Result<T, E>` with `E: From<DbErr> + \
             From<CannotResolveDatabaseConflict>`: add a return type such as `-> Result<(), conflictkit::Error>`",
        ));
    }
}

type Params = (Option<Receiver>, TxnParam, Vec<Arg>);

fn split_params(function: &ItemFn, errors: &mut Errors) -> Option<Params> {
    let sig = &function.sig;
    let mut inputs = sig.inputs.iter().peekable();
    let mut receiver_is_txn = false;
    let receiver = match inputs.peek() {
        Some(FnArg::Receiver(r)) => {
            inputs.next();
            receiver_is_txn = !check_receiver(r, errors);
            Some(r.clone())
        }
        _ => None,
    };
    let txn = match inputs.next() {
        Some(FnArg::Typed(param)) => txn_param(param, sig, errors),
        Some(FnArg::Receiver(r)) => {
            errors.spanned(r, "unexpected `self` parameter");
            None
        }
        None => {
            let message = if receiver.is_some() {
                "`self` is not the transaction: a managed transaction takes the transaction as its \
                 first parameter after `self`; add `txn: &Txn`"
            } else {
                "a managed transaction takes the transaction as its first parameter: add `txn: &Txn`"
            };
            match &receiver {
                Some(_) if receiver_is_txn => {} // already reported on the receiver
                Some(r) => errors.spanned(r, message),
                None => errors.push(syn::Error::new(sig.paren_token.span.join(), message)),
            }
            None
        }
    };
    let mut args = Vec::new();
    for (index, input) in inputs.enumerate() {
        let FnArg::Typed(param) = input else { continue };
        if let (Some(_), Some((_, path))) = (&txn, txn_reference(&param.ty)) {
            errors.spanned(
                &param.ty,
                format!(
                    "a managed transaction has one transaction parameter, the first; `{}` is a second one",
                    quote::ToTokens::to_token_stream(path).to_string().replace(' ', "")
                ),
            );
            continue;
        }
        args.push(arg(param, index));
    }
    Some((receiver, txn?, args))
}

/// Checks the receiver; `false` when it was written as the transaction.
fn check_receiver(receiver: &Receiver, errors: &mut Errors) -> bool {
    if receiver.colon_token.is_some() && txn_reference(&receiver.ty).is_some() {
        errors.spanned(
            receiver,
            "`self` cannot be the transaction: keep `&self` for the method's object and add a \
             `txn: &Txn` parameter after it",
        );
        return false;
    }
    let shared_ref = matches!(&*receiver.ty, Type::Reference(r) if r.mutability.is_none());
    if !shared_ref {
        errors.spanned(
            receiver,
            "a managed transaction may run its body several times, so it cannot take `self` by value \
             or `&mut self`: take `&self` (with interior mutability where needed)",
        );
    }
    true
}

/// `&Txn` / `&path::Txn` / `&mut Txn`: the reference's mutability and the path.
fn txn_reference(ty: &Type) -> Option<(bool, &TypePath)> {
    let Type::Reference(r) = ty else { return None };
    let Type::Path(path) = &*r.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    (path.qself.is_none() && last.ident == "Txn" && last.arguments.is_none())
        .then_some((r.mutability.is_some(), path))
}

fn txn_param(param: &PatType, sig: &syn::Signature, errors: &mut Errors) -> Option<TxnParam> {
    let ty = match txn_reference(&param.ty) {
        Some((false, path)) => path.clone(),
        Some((true, _)) => {
            errors.spanned(
                &param.ty,
                "the transaction is shared with the resolver: take `&Txn`, not `&mut Txn`",
            );
            return None;
        }
        None => {
            let later = sig.inputs.iter().skip(1).find_map(|a| match a {
                FnArg::Typed(p) if txn_reference(&p.ty).is_some() => Some(p),
                _ => None,
            });
            match later {
                Some(p) => errors.spanned(
                    p,
                    "the transaction must be the first parameter of a managed transaction (after \
                     `self`): move it first",
                ),
                None => errors.spanned(
                    &param.ty,
                    format!(
                        "the first parameter of a managed transaction must be the transaction, `&Txn`; \
                         found `{}`{}",
                        type_text(&param.ty),
                        wrong_transaction_hint(&param.ty)
                    ),
                ),
            }
            return None;
        }
    };
    match &*param.pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ..
        })
        | Pat::Wild(_) => {}
        other => {
            errors.spanned(
                other,
                "the transaction parameter must be a plain name, such as `txn`",
            );
            return None;
        }
    }
    Some(TxnParam {
        pat: (*param.pat).clone(),
        ty,
    })
}

/// `ty` as written, without the token stream's spaces around `::`, `&` and `<>`.
fn type_text(ty: &Type) -> String {
    quote::ToTokens::to_token_stream(ty)
        .to_string()
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
}

/// What the likeliest wrong guesses for the transaction's type should be.
fn wrong_transaction_hint(ty: &Type) -> &'static str {
    let (by_ref, path) = match ty {
        Type::Reference(r) => (true, &*r.elem),
        other => (false, other),
    };
    let Type::Path(path) = path else { return "" };
    let Some(last) = path.path.segments.last() else {
        return "";
    };
    match last.ident.to_string().as_str() {
        "Txn" if !by_ref => ": take it by reference, `txn: &Txn`",
        "DatabaseTransaction" => {
            ": `conflictkit::Txn` is the SeaORM transaction here (it implements `ConnectionTrait`, \
             so `Entity::find().one(txn)` works), begun, committed and replayed by the resolver"
        }
        "DatabaseConnection" | "ConflictResolver" => {
            ": the function takes the transaction, `txn: &Txn`; callers pass the \
             `ConflictResolver` (which holds the connection) in its place"
        }
        _ => "",
    }
}

fn arg(param: &PatType, index: usize) -> Arg {
    let ident = match &*param.pat {
        Pat::Ident(PatIdent {
            by_ref: None,
            subpat: None,
            ident,
            ..
        }) => ident.clone(),
        other => format_ident!("__ck_arg{}", index, span = other.span()),
    };
    Arg {
        attrs: param.attrs.clone(),
        ident,
        pat: (*param.pat).clone(),
        ty: param.ty.clone(),
        span: param.ty.span(),
    }
}
