//! Procedural macros of conflictkit. Use them through the `conflictkit` crate,
//! which documents them, with tested examples, where it re-exports them
//! (`src/macro_docs/` of the facade).

mod auto_number;
mod common;
mod event_listener;
mod managed_transaction;

use proc_macro::TokenStream;

/// (Implemented in the `conflictkit-macros` crate.)
#[proc_macro_attribute]
pub fn event_listener(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    event_listener::event_listener(args.into(), item.into()).into()
}

/// (Implemented in the `conflictkit-macros` crate.)
#[proc_macro_derive(AutoNumber, attributes(auto_number))]
pub fn derive_auto_number(item: TokenStream) -> TokenStream {
    auto_number::derive(item.into()).into()
}

/// (Implemented in the `conflictkit-macros` crate.)
#[proc_macro_attribute]
pub fn managed_transaction(args: TokenStream, item: TokenStream) -> TokenStream {
    managed_transaction::expand(
        args.into(),
        item.into(),
        managed_transaction::Flavor::Retryable,
    )
    .into()
}

/// (Implemented in the `conflictkit-macros` crate.)
#[proc_macro_attribute]
pub fn managed_non_retryable_transaction(args: TokenStream, item: TokenStream) -> TokenStream {
    managed_transaction::expand(
        args.into(),
        item.into(),
        managed_transaction::Flavor::NonRetryable,
    )
    .into()
}
