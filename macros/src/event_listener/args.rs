//! Arguments of `#[event_listener(...)]`: an optional event name (a string
//! literal, first), then `crate = "path"`, `timeout_ms = N` and
//! `transactional`.
//!
//! `crate = "path"` is parsed by the shared `common::crate_path` helper.

use proc_macro2::TokenStream;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitInt, LitStr, Meta, Path, Token};

const OPTIONS: &str = "`crate = \"path\"`, `timeout_ms = N` and `transactional`";

/// The validated arguments.
#[derive(Default)]
pub(super) struct Args {
    /// The event handled; `None` = every event.
    pub(super) event: Option<LitStr>,
    /// Root path of the conflictkit crate (default `::conflictkit`).
    pub(super) krate: Option<Path>,
    /// Per-handler timeout in milliseconds.
    pub(super) timeout_ms: Option<LitInt>,
    /// `transactional`: the handler runs in a managed transaction that
    /// records the delivery in the inbox (the keyword, for error spans).
    pub(super) transactional: Option<Path>,
    /// The user meant to name an event (even if the name is invalid), so the
    /// function is validated as a one-event handler.
    pub(super) named: bool,
}

/// Parses the arguments, collecting every error; the arguments understood so
/// far come back even with errors, so the function is still validated the
/// way the user meant.
pub(super) fn parse(tokens: TokenStream) -> (Args, Option<syn::Error>) {
    let mut args = Args::default();
    let mut errors = None;
    let result =
        (|input: ParseStream<'_>| parse_args(input, &mut args, &mut errors)).parse2(tokens);
    if let Err(e) = result {
        push(&mut errors, e);
    }
    (args, errors)
}

fn push(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

fn parse_args(
    input: ParseStream<'_>,
    args: &mut Args,
    errors: &mut Option<syn::Error>,
) -> Result<(), syn::Error> {
    let mut first = true;
    while !input.is_empty() {
        if input.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            args.named = true;
            if !first {
                push(
                    errors,
                    syn::Error::new(
                        lit.span(),
                        "the event name must be the first argument: `#[event_listener(\"txupdate\", ...)]`",
                    ),
                );
            } else if lit.value().is_empty() {
                push(
                    errors,
                    syn::Error::new(
                        lit.span(),
                        "the event name is empty: name the event, e.g. `#[event_listener(\"txupdate\")]`, or omit it to handle every event",
                    ),
                );
            } else {
                args.event = Some(lit);
            }
        } else if input.peek(Lit) {
            let lit: Lit = input.parse()?;
            args.named |= first;
            push(
                errors,
                syn::Error::new(
                    lit.span(),
                    "the event name must be a string literal, e.g. `#[event_listener(\"txupdate\")]`",
                ),
            );
        } else {
            let meta: Meta = input.parse()?;
            args.named |=
                first && matches!(meta, Meta::Path(_)) && !meta.path().is_ident("transactional");
            if let Err(e) = apply(args, meta) {
                push(errors, e);
            }
        }
        first = false;
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

fn apply(args: &mut Args, meta: Meta) -> Result<(), syn::Error> {
    let key = meta.path().clone();
    let name = key
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_else(|| quote::ToTokens::to_token_stream(&key).to_string());
    if name == "transactional" {
        let Meta::Path(path) = meta else {
            return Err(syn::Error::new(
                meta.span(),
                "`transactional` takes no value: `#[event_listener(\"txupdate\", transactional)]`",
            ));
        };
        if args.transactional.is_some() {
            return Err(syn::Error::new(
                path.span(),
                "`transactional` is set more than once",
            ));
        }
        args.transactional = Some(path);
        return Ok(());
    }
    let value = match (&meta, name.as_str()) {
        (Meta::NameValue(nv), "crate" | "timeout_ms") => &nv.value,
        (_, "crate" | "timeout_ms") => {
            return Err(syn::Error::new(
                meta.span(),
                format!("`{name}` takes a value: `{name} = ...`"),
            ));
        }
        (Meta::Path(_), _) => {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{name}`: an event name is a string literal, `#[event_listener(\"{name}\")]`; the options are {OPTIONS}"
                ),
            ));
        }
        _ => {
            return Err(syn::Error::new(
                key.span(),
                format!("unknown option `{name}`; the options are {OPTIONS}"),
            ));
        }
    };
    match name.as_str() {
        "crate" => {
            if args.krate.is_some() {
                return Err(syn::Error::new(key.span(), "`crate` is set more than once"));
            }
            args.krate = Some(crate::common::crate_path::crate_path_from_expr(value)?);
        }
        _ => {
            if args.timeout_ms.is_some() {
                return Err(syn::Error::new(
                    key.span(),
                    "`timeout_ms` is set more than once",
                ));
            }
            let Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) = value
            else {
                return Err(syn::Error::new(
                    value.span(),
                    "`timeout_ms` takes a whole number of milliseconds: `timeout_ms = 5000`",
                ));
            };
            match lit.base10_parse::<u64>() {
                Ok(0) => {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`timeout_ms` must be at least 1",
                    ));
                }
                Ok(_) => args.timeout_ms = Some(lit.clone()),
                Err(e) => {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("`timeout_ms` must fit in a u64: {e}"),
                    ));
                }
            }
        }
    }
    Ok(())
}
