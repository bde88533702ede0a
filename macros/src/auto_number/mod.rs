//! `#[derive(AutoNumber)]`: parse → validate → expand.
//!
//! The input is read as a `syn::Item` (syn's `full` feature, which the
//! workspace enables) rather than a `DeriveInput` (its `derive` feature).
//!
//! [`parse`] builds a best-effort model and records every problem;
//! [`expand`] generates the impls. On error the output is the errors plus
//! stub impls, so one mistake does not cascade into unrelated diagnostics.

mod expand;
mod parse;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;

/// Expands `#[derive(AutoNumber)]` on `item`.
pub(crate) fn derive(item: TokenStream) -> TokenStream {
    let input = match syn::parse2::<syn::Item>(item) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let mut errors = Errors::new();
    let parsed = parse::parse(&input, &mut errors);
    match errors.finish() {
        Ok(()) => expand::expand(&parsed),
        Err(error) => {
            let mut out = error.to_compile_error();
            out.extend(expand::fallback(&parsed));
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
    fn values_follow_declaration_order_from_start() {
        let out = derive(quote! {
            #[auto_number(start = -1, repr = i8)]
            enum E { A, B, C }
        })
        .to_string();
        assert!(
            out.contains("Self :: A => - 1 , Self :: B => 0 , Self :: C => 1 ,"),
            "{out}"
        );
        assert!(out.contains("type Repr = i8"), "{out}");
        assert!(
            out.contains(
                ":: conflictkit :: __private :: auto_number :: serde_impls ! { E , number }"
            ),
            "{out}"
        );
    }

    #[test]
    fn crate_path_is_used_everywhere() {
        let out = derive(quote! {
            #[auto_number(crate = "my::ck")]
            enum E { A }
        })
        .to_string();
        assert!(!out.contains("conflictkit"), "{out}");
        assert!(
            out.contains("my :: ck :: __private :: auto_number :: AutoNumber"),
            "{out}"
        );
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let errors = errors_of(quote! {
            #[auto_number(start = 1, start = 2, bogus, repr = usize)]
            enum E { A(u8), B = 3 }
        });
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].starts_with("duplicate `auto_number` option `start`"));
        assert!(errors[1].starts_with("unknown `auto_number` option `bogus`"));
        assert!(errors[2].starts_with("unsupported `repr = usize`"));
        assert!(errors[3].contains("`E::A` has fields"));
        assert!(errors[4].starts_with("`E::B` has an explicit discriminant"));
    }

    #[test]
    fn overflow_counts_the_variants() {
        let ok = errors_of(quote! { #[auto_number(repr = u8, start = 254)] enum E { A, B } });
        assert!(ok.is_empty(), "{ok:?}");
        let errors =
            errors_of(quote! { #[auto_number(repr = u8, start = 254)] enum E { A, B, C } });
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("numbered 256, which overflows `u8`"),
            "{errors:?}"
        );
        let below = errors_of(quote! { #[auto_number(repr = u8, start = -1)] enum E {} });
        assert!(
            below[0].contains("`start = -1` does not fit in `u8` (0..=255)"),
            "{below:?}"
        );
    }
}
