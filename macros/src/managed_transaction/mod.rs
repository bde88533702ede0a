//! `#[managed_transaction]` and `#[managed_non_retryable_transaction]`.
//!
//! Parse the options ([`args`]) → check the function ([`validate`]) →
//! generate the call into the runtime ([`expand`](mod@expand)). Everything here works on
//! `proc_macro2` types, so `macros/tests/expand.rs` can snapshot [`expand()`].
//!
//! Errors are collected, not returned at the first one: the user sees every
//! problem in one compile. When only the options are wrong the function is
//! still rewritten (with the options that were valid), and when the function
//! itself is wrong it is emitted unchanged, so other diagnostics stay sensible.

mod args;
mod batch;
mod deferrable;
mod expand;
mod together;
mod validate;

use proc_macro2::TokenStream;

use crate::common::errors::Errors;

/// Which of the two attributes is being expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `#[managed_transaction]`: replayed on conflicts.
    Retryable,
    /// `#[managed_non_retryable_transaction]`: one run; a conflict gives up at once.
    NonRetryable,
}

impl Flavor {
    /// The attribute's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::Retryable => "managed_transaction",
            Flavor::NonRetryable => "managed_non_retryable_transaction",
        }
    }
}

/// Expands `#[<flavor>(args)] item`. Never panics: every problem becomes a
/// spanned `compile_error!` next to the (rewritten or original) function.
pub(crate) fn expand(args: TokenStream, item: TokenStream, flavor: Flavor) -> TokenStream {
    let mut errors = Errors::default();
    let mut options = args::Options::parse(args, flavor, &mut errors);
    let function: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!(
                    "`#[{}]` goes on an `async fn` whose first parameter is the transaction (`txn: &Txn`): {e}",
                    flavor.name()
                ),
            ));
            return with_errors(item, &errors);
        }
    };
    match validate::check(function, &mut errors) {
        Some(checked) => {
            if options.batch.get().is_some() && !batch::check_owned(&checked, &mut errors) {
                // expanded unbatched: the error above is the one to read
                options.batch = Default::default();
            }
            with_errors(expand::function(&checked, &options, flavor), &errors)
        }
        None => with_errors(item, &errors),
    }
}

fn with_errors(mut tokens: TokenStream, errors: &Errors) -> TokenStream {
    tokens.extend(errors.to_compile_errors());
    tokens
}
