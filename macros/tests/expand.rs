//! Snapshots of the macros' pure expansion functions: each
//! `tests/expand/<case>.rs` is expanded (`#[managed_transaction]` functions
//! are rewritten, `#[event_listener]` functions are followed by their
//! registration, `#[derive(AutoNumber)]` enums by their impls),
//! pretty-printed (prettyplease) and compared with the checked-in
//! `tests/expand/<case>.expanded.rs`.
//!
//! Regenerate after an intended change, then review `git diff`:
//! `CONFLICTKIT_BLESS=1 cargo test -p conflictkit-macros --test expand`

// Test code: failing loudly is the point (the crate denies these for the macros).
#![allow(clippy::panic, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../src/auto_number/mod.rs"]
mod auto_number;
#[allow(dead_code, unreachable_pub)]
#[path = "../src/common/mod.rs"]
mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../src/event_listener/mod.rs"]
mod event_listener;
#[allow(dead_code, unreachable_pub)]
#[path = "../src/managed_transaction/mod.rs"]
mod managed_transaction;

use std::path::{Path, PathBuf};

use managed_transaction::{Flavor, expand};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{Attribute, ImplItem, Item, Meta};

/// An attribute macro of conflictkit.
enum Macro {
    Managed(Flavor),
    EventListener,
}

/// Takes the first conflictkit attribute off `attrs` (by its last path
/// segment, so `#[conflictkit::event_listener]` counts): which one, and its
/// argument tokens.
fn take_attribute(attrs: &mut Vec<Attribute>) -> Option<(Macro, TokenStream)> {
    let which = |attr: &Attribute| {
        let name = attr.path().segments.last()?.ident.to_string();
        match name.as_str() {
            "managed_transaction" => Some(Macro::Managed(Flavor::Retryable)),
            "managed_non_retryable_transaction" => Some(Macro::Managed(Flavor::NonRetryable)),
            "event_listener" => Some(Macro::EventListener),
            _ => None,
        }
    };
    let index = attrs.iter().position(|a| which(a).is_some())?;
    let attr = attrs.remove(index);
    let kind = which(&attr)?;
    let args = match attr.meta {
        Meta::List(list) => list.tokens,
        _ => TokenStream::new(),
    };
    Some((kind, args))
}

/// Expands an attribute macro of conflictkit.
fn expand_attribute(kind: Macro, args: TokenStream, item: TokenStream) -> TokenStream {
    match kind {
        Macro::Managed(flavor) => expand(args, item, flavor),
        Macro::EventListener => event_listener::event_listener(args, item),
    }
}

/// Whether `attrs` holds `#[derive(..., AutoNumber, ...)]`.
fn derives_auto_number(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("derive")
            && a.parse_args_with(
                syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
            )
            .is_ok_and(|paths| paths.iter().any(|p| p.is_ident("AutoNumber")))
    })
}

struct Expander;

impl VisitMut for Expander {
    fn visit_file_mut(&mut self, file: &mut syn::File) {
        let mut items = Vec::with_capacity(file.items.len());
        for mut item in std::mem::take(&mut file.items) {
            if let Item::Fn(f) = &mut item
                && let Some((kind, args)) = take_attribute(&mut f.attrs)
            {
                let out = expand_attribute(kind, args, f.to_token_stream());
                let expanded: syn::File =
                    syn::parse2(out.clone()).unwrap_or_else(|e| panic!("{e}: {out}"));
                items.extend(expanded.items);
                continue;
            }
            self.visit_item_mut(&mut item);
            let derived = match &item {
                Item::Enum(e) if derives_auto_number(&e.attrs) => {
                    Some(auto_number::derive(item.to_token_stream()))
                }
                _ => None,
            };
            items.push(item);
            if let Some(out) = derived {
                let expanded: syn::File =
                    syn::parse2(out.clone()).unwrap_or_else(|e| panic!("{e}: {out}"));
                items.extend(expanded.items);
            }
        }
        file.items = items;
    }

    fn visit_impl_item_mut(&mut self, item: &mut ImplItem) {
        if let ImplItem::Fn(f) = item
            && let Some((kind, args)) = take_attribute(&mut f.attrs)
        {
            let out = expand_attribute(kind, args, f.to_token_stream());
            *item = syn::parse2(out.clone()).unwrap_or(ImplItem::Verbatim(out));
            return;
        }
        syn::visit_mut::visit_impl_item_mut(self, item);
    }
}

fn expand_file(path: &Path) -> String {
    let source =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut file =
        syn::parse_file(&source).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    Expander.visit_file_mut(&mut file);
    prettyplease::unparse(&file)
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/expand");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".rs") && !name.ends_with(".expanded.rs")
        })
        .collect();
    cases.sort();
    cases
}

#[test]
fn expansion_snapshots() {
    // Only `1` blesses: `CONFLICTKIT_BLESS=0` (or empty) must still compare.
    let bless = std::env::var("CONFLICTKIT_BLESS").is_ok_and(|v| v == "1");
    let cases = cases();
    assert!(
        cases.len() >= 15,
        "expected the expansion cases in tests/expand"
    );
    let mut stale = Vec::new();
    for case in cases {
        let actual = expand_file(&case);
        let snapshot = case.with_extension("expanded.rs");
        if bless {
            std::fs::write(&snapshot, &actual)
                .unwrap_or_else(|e| panic!("write {}: {e}", snapshot.display()));
            continue;
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != actual {
            eprintln!(
                "--- {} differs; actual expansion:\n{actual}",
                snapshot.display()
            );
            stale.push(snapshot.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale snapshots (rerun with CONFLICTKIT_BLESS=1 and review the diff): {stale:?}"
    );
}

#[test]
fn no_rewrite_on_invalid_functions() {
    // A function that cannot be rewritten is emitted unchanged next to the errors.
    let item: TokenStream = syn::parse_quote! {
        fn top_up(amount: i64) -> Result<i64, Error> { Ok(amount) }
    };
    let out = expand(TokenStream::new(), item.clone(), Flavor::Retryable).to_string();
    assert!(out.starts_with(&item.to_string()), "{out}");
    assert!(out.contains("compile_error"), "{out}");
    assert!(out.contains("the `async` keyword is missing"), "{out}");
    assert!(out.contains("first parameter"), "{out}");
}
