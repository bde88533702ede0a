//! The arguments of `#[event_listener(...)]`, one setter per key: an
//! optional event name (a string literal, first), then `crate = "path"`,
//! `timeout_ms = N` and `transactional`.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit, LitInt, LitStr, Path};

use crate::common::crate_path::{crate_path_from_option, default_crate_path};
use crate::common::errors::{Errors, Once};
use crate::common::options::{MacroOption, MacroOptions, read_tokens};

/// The attribute's name.
const ATTRIBUTE: &str = "event_listener";

/// Every valid option, as messages show them.
const VALID: &[&str] = &["crate = \"path\"", "timeout_ms = N", "transactional"];

/// The arguments as given.
#[derive(Default)]
pub(super) struct Args {
    /// The event handled; `None` = every event.
    pub(super) event: Option<LitStr>,
    /// Root path of the conflictkit crate (default `::conflictkit`).
    krate: Once<Path>,
    /// Per-handler timeout in milliseconds.
    pub(super) timeout_ms: Once<LitInt>,
    /// `transactional`: the handler runs in a managed transaction that
    /// records the delivery in the inbox (the keyword, for error spans).
    pub(super) transactional: Once<Path>,
    /// The user meant to name an event (even if the name is invalid), so the
    /// function is validated as a one-event handler.
    pub(super) named: bool,
}

impl Args {
    /// Reads the arguments, collecting every error; the arguments understood
    /// so far come back even with errors, so the function is still validated
    /// the way the user meant.
    pub(super) fn parse(tokens: TokenStream, errors: &mut Errors) -> Self {
        let mut args = Self::default();
        read_tokens(&mut args, tokens, errors);
        args
    }

    /// The root of generated paths: `::conflictkit` unless `crate = "..."`.
    pub(super) fn krate(&self) -> TokenStream {
        self.krate
            .get()
            .cloned()
            .unwrap_or_else(default_crate_path)
            .to_token_stream()
    }

    fn set_crate(&mut self, option: &MacroOption) -> syn::Result<()> {
        let path = crate_path_from_option(option)?;
        self.krate.set(option.key(), option.describe(), path)
    }

    fn set_timeout_ms(&mut self, option: &MacroOption) -> syn::Result<()> {
        let Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) = option.value_like("timeout_ms = 5000")?
        else {
            return Err(syn::Error::new_spanned(
                option.value()?,
                "`timeout_ms` takes a whole number of milliseconds: `timeout_ms = 5000`",
            ));
        };
        match lit.base10_parse::<u64>() {
            Ok(0) => Err(syn::Error::new(
                lit.span(),
                "`timeout_ms` must be at least 1",
            )),
            Ok(_) => self
                .timeout_ms
                .set(option.key(), option.describe(), lit.clone()),
            Err(e) => Err(syn::Error::new(
                lit.span(),
                format!("`timeout_ms` must fit in a u64: {e}"),
            )),
        }
    }

    fn set_transactional(&mut self, option: &MacroOption) -> syn::Result<()> {
        // Kept even when given a value, so the function is still checked as
        // the transactional handler it was meant to be.
        let flag = option.flag();
        self.transactional
            .set(option.key(), option.describe(), option.key().clone())?;
        flag.map(drop)
    }
}

impl MacroOptions for Args {
    fn attribute(&self) -> &'static str {
        ATTRIBUTE
    }

    fn valid(&self) -> &'static [&'static str] {
        VALID
    }

    fn set(&mut self, option: &MacroOption) -> syn::Result<()> {
        // A bare word first is most likely the event name, unquoted.
        let event_name = option.position() == 0 && option.is_bare();
        self.named |= event_name && option.name() != "transactional";
        match option.name() {
            "crate" => self.set_crate(option),
            "timeout_ms" => self.set_timeout_ms(option),
            "transactional" => self.set_transactional(option),
            name if event_name && option.near_miss().is_none() => {
                Err(option.unknown_because(format_args!(
                    " (an event name is a string literal: `#[event_listener(\"{name}\")]`)"
                )))
            }
            _ => Err(option.unknown()),
        }
    }

    fn set_literal(&mut self, literal: &Lit, position: usize) -> syn::Result<()> {
        let first = position == 0;
        self.named |= first || matches!(literal, Lit::Str(_));
        match literal {
            Lit::Str(_) if !first => Err(syn::Error::new_spanned(
                literal,
                "the event name must be the first argument: `#[event_listener(\"txupdate\", ...)]`",
            )),
            Lit::Str(lit) if lit.value().is_empty() => Err(syn::Error::new_spanned(
                literal,
                "the event name is empty: name the event, e.g. `#[event_listener(\"txupdate\")]`, \
                 or omit it to handle every event",
            )),
            Lit::Str(lit) => {
                self.event = Some(lit.clone());
                Ok(())
            }
            _ => Err(syn::Error::new_spanned(
                literal,
                "the event name must be a string literal, e.g. `#[event_listener(\"txupdate\")]`",
            )),
        }
    }
}
