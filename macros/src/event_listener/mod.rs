//! `#[event_listener]`: registers a function as an event handler of the
//! conflictkit event listener.
//!
//! Parse the arguments ([`args`]) → check the function ([`validate`]) →
//! generate its registration ([`expand`](mod@expand)). Everything here works
//! on `proc_macro2` types, so `macros/tests/expand.rs` can snapshot
//! [`event_listener()`].
//!
//! Errors are collected, not returned at the first one; when there is any,
//! the function is emitted unchanged and nothing is registered.

mod args;
mod expand;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;

/// Expands `#[event_listener(args)] item`. Never panics: every problem
/// becomes a spanned `compile_error!` next to the unchanged function.
pub(crate) fn event_listener(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let args = args::Args::parse(args, &mut errors);
    let func: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(error) => {
            errors.push(error);
            return with_errors(item, &errors);
        }
    };
    let shape = validate::check(&func, &args, &mut errors);
    match shape {
        Some(shape) if errors.is_empty() => expand::registration(&func, &args, &shape),
        _ => with_errors(quote::ToTokens::into_token_stream(func), &errors),
    }
}

fn with_errors(mut tokens: TokenStream, errors: &Errors) -> TokenStream {
    tokens.extend(errors.to_compile_errors());
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[test]
    fn errors_keep_the_function_and_register_nothing() {
        let item = quote!(
            fn f(a: &u8, b: u8) {}
        );
        let out = event_listener(quote!(42), item.clone()).to_string();
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert_eq!(out.matches("compile_error").count(), 2, "{out}");
        assert!(
            out.contains("the event name must be a string literal"),
            "{out}"
        );
        assert!(out.contains("take `T`, not `&T`"), "{out}");
        assert!(!out.contains("submit"), "{out}");
    }
}
