//! The options inside `#[managed_transaction(...)]`: one setter per key that
//! rejects duplicates, then checks of the options against each other.
//!
//! `crate = "path"` is parsed here too ([`Options::krate`]), with its own
//! error message (pinned by the UI tests); the default root comes from the
//! shared `common::crate_path`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Path, Token};

use super::{Errors, Flavor};

/// Every valid option, for the "unknown option" message.
const VALID: &str = "`retries = N`, `isolation = \"...\"`, `read_only`, `sqlite_mode = \"...\"`, \
                     `contention = \"...\"`, `key = <expr>`, `resolver = <expr>`, `label = \"...\"`, `crate = \"path\"`";

const ISOLATIONS: &str = "\"serializable\", \"repeatable_read\", \"read_committed\"";
const SQLITE_MODES: &str = "\"immediate\", \"deferred\", \"exclusive\"";
const CONTENTIONS: &str = "\"adaptive\", \"off\"";

/// `contention = "..."`, mirrored from the runtime's `Contention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contention {
    Adaptive,
    Off,
}

impl Contention {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "adaptive" => Some(Self::Adaptive),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    /// The runtime variant's name.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Adaptive => "Adaptive",
            Self::Off => "Off",
        }
    }
}

/// `isolation = "..."`, mirrored from the runtime's `Isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    Serializable,
    RepeatableRead,
    ReadCommitted,
}

impl Isolation {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "serializable" => Some(Self::Serializable),
            "repeatable_read" => Some(Self::RepeatableRead),
            "read_committed" => Some(Self::ReadCommitted),
            _ => None,
        }
    }

    /// The runtime variant's name.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Serializable => "Serializable",
            Self::RepeatableRead => "RepeatableRead",
            Self::ReadCommitted => "ReadCommitted",
        }
    }
}

/// `sqlite_mode = "..."`, mirrored from the runtime's `SqliteMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SqliteMode {
    Immediate,
    Deferred,
    Exclusive,
}

impl SqliteMode {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "immediate" => Some(Self::Immediate),
            "deferred" => Some(Self::Deferred),
            "exclusive" => Some(Self::Exclusive),
            _ => None,
        }
    }

    /// The runtime variant's name.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::Immediate => "Immediate",
            Self::Deferred => "Deferred",
            Self::Exclusive => "Exclusive",
        }
    }
}

/// The checked options. Anything unset falls back to the resolver's defaults.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) retries: Option<(u32, Span)>,
    pub(crate) isolation: Option<(Isolation, Span)>,
    pub(crate) read_only: Option<Span>,
    pub(crate) sqlite_mode: Option<(SqliteMode, Span)>,
    pub(crate) contention: Option<(Contention, Span)>,
    pub(crate) resolver: Option<Expr>,
    /// `key = <expr>`: what the call contends on (hashed at run time).
    pub(crate) key: Option<Expr>,
    pub(crate) label: Option<LitStr>,
    pub(crate) krate: Option<Path>,
}

impl Options {
    /// The root of generated paths: `::conflictkit` unless `crate = "..."`.
    pub(crate) fn krate(&self) -> TokenStream {
        self.krate
            .clone()
            .unwrap_or_else(crate::common::crate_path::default_crate_path)
            .to_token_stream()
    }
}

/// Parses `args`; every problem is pushed to `errors` and the option is left unset.
pub(crate) fn parse(args: TokenStream, flavor: Flavor, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                format!("{e}; the options of `#[{}]` are {VALID}", flavor.name()),
            ));
            return options;
        }
    };
    for meta in metas {
        set(&mut options, meta, flavor, errors);
    }
    check_together(&options, errors);
    options
}

fn set(options: &mut Options, meta: Meta, flavor: Flavor, errors: &mut Errors) {
    let path = meta.path().clone();
    let Some(key) = path.get_ident().map(ToString::to_string) else {
        errors.spanned(
            &path,
            format!(
                "unknown option `{}`; valid options: {VALID}",
                path_string(&path)
            ),
        );
        return;
    };
    match key.as_str() {
        "read_only" => {
            if !matches!(meta, Meta::Path(_)) {
                errors.spanned(&meta, "`read_only` is a flag: write `read_only` on its own");
            } else if options.read_only.is_some() {
                errors.spanned(&path, "`read_only` is set more than once");
            } else {
                options.read_only = Some(span_of(&path));
            }
        }
        "retries" | "isolation" | "sqlite_mode" | "contention" | "key" | "resolver" | "label"
        | "crate" => {
            let value = match meta {
                Meta::NameValue(nv) => nv.value,
                other => {
                    let example = match key.as_str() {
                        "retries" => "retries = 5",
                        "isolation" => "isolation = \"serializable\"",
                        "sqlite_mode" => "sqlite_mode = \"immediate\"",
                        "contention" => "contention = \"off\"",
                        "resolver" => "resolver = self.resolver",
                        "key" => "key = account_id",
                        "label" => "label = \"wallet::top_up\"",
                        _ => "crate = \"::conflictkit\"",
                    };
                    errors.spanned(&other, format!("`{key}` needs a value: write `{example}`"));
                    return;
                }
            };
            set_value(options, &key, &path, value, flavor, errors);
        }
        other => {
            let hint = if Isolation::from_name(other).is_some() {
                format!(" (did you mean `isolation = \"{other}\"`?)")
            } else if SqliteMode::from_name(other).is_some() {
                format!(" (did you mean `sqlite_mode = \"{other}\"`?)")
            } else if other == "non_retryable" {
                " (use the `#[managed_non_retryable_transaction]` attribute instead)".to_owned()
            } else {
                String::new()
            };
            errors.spanned(
                &path,
                format!("unknown option `{other}`{hint}; valid options: {VALID}"),
            );
        }
    }
}

fn set_value(
    options: &mut Options,
    key: &str,
    path: &Path,
    value: Expr,
    flavor: Flavor,
    errors: &mut Errors,
) {
    let duplicate = match key {
        "retries" => options.retries.is_some(),
        "isolation" => options.isolation.is_some(),
        "sqlite_mode" => options.sqlite_mode.is_some(),
        "contention" => options.contention.is_some(),
        "resolver" => options.resolver.is_some(),
        "key" => options.key.is_some(),
        "label" => options.label.is_some(),
        _ => options.krate.is_some(),
    };
    if duplicate {
        errors.spanned(path, format!("`{key}` is set more than once"));
        return;
    }
    match key {
        "retries" => {
            if flavor == Flavor::NonRetryable {
                errors.spanned(
                    path,
                    "`retries` has no meaning on `#[managed_non_retryable_transaction]`, which runs \
                     once; use `#[managed_transaction(retries = N)]` to replay on conflicts",
                );
                return;
            }
            match &value {
                Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => match int.base10_parse::<u32>() {
                    Ok(n) => options.retries = Some((n, int.span())),
                    Err(_) => errors.spanned(int, "`retries` must fit in a `u32` (it counts replays)"),
                },
                _ => errors.spanned(
                    &value,
                    "`retries` takes a non-negative integer literal, the number of replays after the \
                     first run: `retries = 5`",
                ),
            }
        }
        "isolation" => {
            if let Some(lit) = string(&value, key, ISOLATIONS, errors) {
                match Isolation::from_name(&lit.value()) {
                    Some(i) => options.isolation = Some((i, lit.span())),
                    None => errors.spanned(
                        &lit,
                        format!(
                            "unknown isolation `{}`; valid values: {ISOLATIONS}",
                            lit.value()
                        ),
                    ),
                }
            }
        }
        "sqlite_mode" => {
            if let Some(lit) = string(&value, key, SQLITE_MODES, errors) {
                match SqliteMode::from_name(&lit.value()) {
                    Some(m) => options.sqlite_mode = Some((m, lit.span())),
                    None => errors.spanned(
                        &lit,
                        format!(
                            "unknown sqlite_mode `{}`; valid values: {SQLITE_MODES}",
                            lit.value()
                        ),
                    ),
                }
            }
        }
        "contention" => {
            if let Some(lit) = string(&value, key, CONTENTIONS, errors) {
                match Contention::from_name(&lit.value()) {
                    Some(c) => options.contention = Some((c, lit.span())),
                    None => errors.spanned(
                        &lit,
                        format!(
                            "unknown contention `{}`; valid values: {CONTENTIONS}",
                            lit.value()
                        ),
                    ),
                }
            }
        }
        "resolver" => options.resolver = Some(value),
        "key" => {
            if let Expr::Lit(ExprLit { lit, .. }) = &value {
                errors.spanned(
                    lit,
                    "`key` takes an expression of the call's arguments, such as `key = account_id`: \
                     a literal would put every call on the same key, which is what leaving `key` \
                     out does",
                );
            } else {
                options.key = Some(value);
            }
        }
        "label" => {
            if let Some(lit) = string(&value, key, "any non-empty string", errors) {
                if lit.value().trim().is_empty() {
                    errors.spanned(
                        &lit,
                        "`label` must not be empty: it names the call in logs, stats and errors",
                    );
                } else {
                    options.label = Some(lit);
                }
            }
        }
        _ => {
            if let Some(lit) = string(&value, key, "a path such as \"::conflictkit\"", errors) {
                match lit.parse::<Path>() {
                    Ok(p) => options.krate = Some(p),
                    Err(_) => errors.spanned(
                        &lit,
                        format!(
                            "`crate` must be the path of the conflictkit crate, such as \"::conflictkit\" \
                             or \"my_facade::conflictkit\"; `{}` is not a path",
                            lit.value()
                        ),
                    ),
                }
            }
        }
    }
}

/// The string literal of `key = "..."`, or an error listing `expected`.
fn string(value: &Expr, key: &str, expected: &str, errors: &mut Errors) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        _ => {
            errors.spanned(value, format!("`{key}` takes a string literal: {expected}"));
            None
        }
    }
}

fn check_together(options: &Options, errors: &mut Errors) {
    if let (Some(_), Some((mode @ (SqliteMode::Immediate | SqliteMode::Exclusive), span))) =
        (options.read_only, options.sqlite_mode)
    {
        let name = if mode == SqliteMode::Immediate {
            "immediate"
        } else {
            "exclusive"
        };
        errors.push(syn::Error::new(
            span,
            format!(
                "`read_only` contradicts `sqlite_mode = \"{name}\"`: an {name} transaction takes SQLite's \
                 write lock at BEGIN, which a read-only transaction never needs; drop `sqlite_mode` \
                 (read-only transactions begin deferred) or drop `read_only`"
            ),
        ));
    }
}

fn span_of(tokens: &impl ToTokens) -> Span {
    syn::spanned::Spanned::span(tokens)
}

fn path_string(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}
