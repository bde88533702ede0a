//! `#[derive(AutoNumber)]`: [`args`] (the `#[auto_number(...)]` options) →
//! [`validate`] (the enum's shape and numbering) → [`expand`](mod@expand).
//!
//! The input is read as a `syn::Item` (syn's `full` feature, which the
//! workspace enables) rather than a `DeriveInput` (its `derive` feature).
//! Every problem is recorded, not only the first; on error the output is the
//! errors plus stub impls, so one mistake does not cascade into unrelated
//! diagnostics.

mod args;
mod expand;
mod rename;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;

/// Expands `#[derive(AutoNumber)]` on `item`.
pub(crate) fn derive(item: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::Item>(item) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut errors = Errors::new();
    let checked = validate::check(&input, &mut errors);
    match errors.finish() {
        Ok(()) => expand::expand(&checked),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(&checked));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(item: TokenStream) -> Vec<String> {
        let out = derive(item).to_string();
        out.split("compile_error !")
            .skip(1)
            .filter_map(|s| s.split('"').nth(1).map(str::to_owned))
            .collect()
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let errors = errors_of(quote! {
            #[auto_number(repr = i8, repr = i16, bogus, repr = usize)]
            enum E { A(u8) = 1, B = 3, #[auto_number(rename = "A")] C }
        });
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[0].starts_with("duplicate `auto_number` option `repr`"));
        assert!(errors[1].starts_with("unknown `auto_number` option `bogus`"));
        assert!(errors[2].starts_with("unsupported `repr = usize`"));
        assert!(errors[3].contains("`E::A` has fields"));
        assert!(errors[4].starts_with("`E::B = 3` breaks the numbering"));
        assert!(errors[5].contains("are both named"), "{errors:?}");
    }

    #[test]
    fn overflow_counts_the_variants() {
        let ok = errors_of(quote! { #[auto_number(repr = u8)] enum E { A = 254, B } });
        assert!(ok.is_empty(), "{ok:?}");
        let errors = errors_of(quote! { #[auto_number(repr = u8)] enum E { A = 254, B, C } });
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("numbered 256, which overflows `u8`"),
            "{errors:?}"
        );
        let below = errors_of(quote! { #[repr(u8)] enum E { A = -1 } });
        assert!(
            below[0].contains("the first value, -1, does not fit in `u8` (0..=255)"),
            "{below:?}"
        );
    }
}
