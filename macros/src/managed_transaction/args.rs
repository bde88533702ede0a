//! The options inside `#[managed_transaction(...)]`, one setter per key
//! (each rejects a duplicate), then checks of the options against each other.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit, LitStr, Path};

use super::Flavor;
use crate::common::crate_path::{crate_path_from_option, default_crate_path};
use crate::common::errors::{Errors, Once};
use crate::common::options::{MacroOption, MacroOptions, read_tokens};

/// Every valid option, as messages show them.
const VALID: &[&str] = &[
    "retries = N",
    "isolation = \"...\"",
    "read_only",
    "deferrable",
    "durable",
    "timeout = \"...\"",
    "sqlite_mode = \"...\"",
    "contention = \"...\"",
    "key = <expr>",
    "batch",
    "batch = N",
    "idempotency_key = <expr>",
    "fingerprint = <expr>",
    "store_errors",
    "resolver = <expr>",
    "label = \"...\"",
    "crate = \"path\"",
];

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

/// The options as given; anything unset falls back to the resolver's defaults.
pub(crate) struct Options {
    flavor: Flavor,
    pub(crate) retries: Once<(u32, Span)>,
    pub(crate) isolation: Once<(Isolation, Span)>,
    pub(crate) read_only: Once<Span>,
    /// `deferrable`: a read-only report that never conflicts (see `deferrable`).
    pub(crate) deferrable: Once<Span>,
    /// `durable`: the call refuses to run nested (a typed error at run time).
    pub(crate) durable: Once<Span>,
    /// `timeout = "2s"`: the call's budget, in milliseconds (checked here
    /// against the runtime's bounds, so the generated call cannot fail).
    pub(crate) timeout: Once<(u64, Span)>,
    pub(crate) sqlite_mode: Once<(SqliteMode, Span)>,
    pub(crate) contention: Once<(Contention, Span)>,
    pub(crate) resolver: Once<Expr>,
    /// `key = <expr>`: what the call contends on (hashed at run time).
    pub(crate) key: Once<Expr>,
    /// `batch` / `batch = N`: group commit, at most N calls a transaction.
    pub(crate) batch: Once<(usize, Span)>,
    /// `idempotency_key = <expr>`: the request's key; the call runs once
    /// per key and a repeat gets the stored outcome.
    pub(crate) idempotency_key: Once<Expr>,
    /// `fingerprint = <expr>`: what tells a retry from another request
    /// (default: the arguments).
    pub(crate) fingerprint: Once<Expr>,
    /// `store_errors`: a serializable `Err` is stored under the key too.
    pub(crate) store_errors: Once<Span>,
    pub(crate) label: Once<LitStr>,
    pub(crate) krate: Once<Path>,
}

impl Options {
    /// Reads `args`; every problem is pushed to `errors` and its option left unset.
    pub(crate) fn parse(args: TokenStream, flavor: Flavor, errors: &mut Errors) -> Self {
        let mut options = Self {
            flavor,
            retries: Once::default(),
            isolation: Once::default(),
            read_only: Once::default(),
            deferrable: Once::default(),
            durable: Once::default(),
            timeout: Once::default(),
            sqlite_mode: Once::default(),
            contention: Once::default(),
            resolver: Once::default(),
            key: Once::default(),
            batch: Once::default(),
            idempotency_key: Once::default(),
            fingerprint: Once::default(),
            store_errors: Once::default(),
            label: Once::default(),
            krate: Once::default(),
        };
        read_tokens(&mut options, args, errors);
        options.check_together(errors);
        options
    }

    /// The root of generated paths: `::conflictkit` unless `crate = "..."`.
    pub(crate) fn krate(&self) -> TokenStream {
        self.krate
            .get()
            .cloned()
            .unwrap_or_else(default_crate_path)
            .to_token_stream()
    }

    fn set_retries(&mut self, option: &MacroOption) -> syn::Result<()> {
        if self.flavor == Flavor::NonRetryable {
            return Err(syn::Error::new_spanned(
                option.key(),
                "`retries` has no meaning on `#[managed_non_retryable_transaction]`, which runs \
                 once; use `#[managed_transaction(retries = N)]` to replay on conflicts",
            ));
        }
        let value = match option.value_like("retries = 5")? {
            Expr::Lit(ExprLit {
                lit: Lit::Int(int), ..
            }) => match int.base10_parse::<u32>() {
                Ok(n) => (n, int.span()),
                Err(_) => {
                    return Err(syn::Error::new_spanned(
                        int,
                        "`retries` must fit in a `u32` (it counts replays)",
                    ));
                }
            },
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`retries` takes a non-negative integer literal, the number of replays after \
                     the first run: `retries = 5`",
                ));
            }
        };
        self.retries.set(option.key(), option.describe(), value)
    }

    fn set_isolation(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = named_value(option, "serializable", ISOLATIONS)?;
        let isolation = Isolation::from_name(&lit.value())
            .ok_or_else(|| unknown_value(&lit, "isolation", ISOLATIONS))?;
        self.isolation
            .set(option.key(), option.describe(), (isolation, lit.span()))
    }

    fn set_read_only(&mut self, option: &MacroOption) -> syn::Result<()> {
        let span = option.flag()?;
        self.read_only.set(option.key(), option.describe(), span)
    }

    fn set_durable(&mut self, option: &MacroOption) -> syn::Result<()> {
        let span = option.flag()?;
        self.durable.set(option.key(), option.describe(), span)
    }

    fn set_timeout(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = option.string("2s")?;
        let millis = parse_timeout(&lit.value()).map_err(|e| syn::Error::new_spanned(&lit, e))?;
        self.timeout
            .set(option.key(), option.describe(), (millis, lit.span()))
    }

    fn set_sqlite_mode(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = named_value(option, "immediate", SQLITE_MODES)?;
        let mode = SqliteMode::from_name(&lit.value())
            .ok_or_else(|| unknown_value(&lit, "sqlite_mode", SQLITE_MODES))?;
        self.sqlite_mode
            .set(option.key(), option.describe(), (mode, lit.span()))
    }

    fn set_contention(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = named_value(option, "off", CONTENTIONS)?;
        let contention = Contention::from_name(&lit.value())
            .ok_or_else(|| unknown_value(&lit, "contention", CONTENTIONS))?;
        self.contention
            .set(option.key(), option.describe(), (contention, lit.span()))
    }

    fn set_resolver(&mut self, option: &MacroOption) -> syn::Result<()> {
        let value = option.value_like("resolver = self.resolver")?.clone();
        self.resolver.set(option.key(), option.describe(), value)
    }

    fn set_key(&mut self, option: &MacroOption) -> syn::Result<()> {
        let value = option.value_like("key = account_id")?;
        if let Expr::Lit(ExprLit { lit, .. }) = value {
            return Err(syn::Error::new_spanned(
                lit,
                "`key` takes an expression of the call's arguments, such as `key = account_id`: \
                 a literal would put every call on the same key, which is what leaving `key` \
                 out does",
            ));
        }
        self.key.set(option.key(), option.describe(), value.clone())
    }

    fn set_batch(&mut self, option: &MacroOption) -> syn::Result<()> {
        if self.flavor == Flavor::NonRetryable {
            return Err(syn::Error::new_spanned(
                option.key(),
                "`batch` does not apply to `#[managed_non_retryable_transaction]`: a batch \
                 replays all its calls on a conflict, which a non-retryable call refuses; use \
                 `#[managed_transaction(batch)]`",
            ));
        }
        if option.is_bare() {
            let span = option.flag()?;
            return self
                .batch
                .set(option.key(), option.describe(), (DEFAULT_BATCH, span));
        }
        let max = match option.value_like("batch = 64")? {
            Expr::Lit(ExprLit {
                lit: Lit::Int(int), ..
            }) => match int.base10_parse::<usize>() {
                Ok(n) if n >= 1 => (n, int.span()),
                _ => {
                    return Err(syn::Error::new_spanned(
                        int,
                        "`batch` takes the most calls one transaction runs, at least 1: \
                         `batch = 64`",
                    ));
                }
            },
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "`batch` takes an integer literal, the most calls one transaction runs \
                     (`batch = 64`), or nothing (`batch`: 64)",
                ));
            }
        };
        self.batch.set(option.key(), option.describe(), max)
    }

    fn set_idempotency_key(&mut self, option: &MacroOption) -> syn::Result<()> {
        let value = option.value_like("idempotency_key = request_id")?.clone();
        self.idempotency_key
            .set(option.key(), option.describe(), value)
    }

    fn set_fingerprint(&mut self, option: &MacroOption) -> syn::Result<()> {
        let value = option.value_like("fingerprint = (account, cents)")?.clone();
        self.fingerprint.set(option.key(), option.describe(), value)
    }

    fn set_store_errors(&mut self, option: &MacroOption) -> syn::Result<()> {
        let span = option.flag()?;
        self.store_errors.set(option.key(), option.describe(), span)
    }

    fn set_label(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = option.string("wallet::top_up")?;
        if lit.value().trim().is_empty() {
            return Err(syn::Error::new_spanned(
                &lit,
                "`label` must not be empty: it names the call in logs, stats and errors",
            ));
        }
        self.label.set(option.key(), option.describe(), lit)
    }

    fn set_crate(&mut self, option: &MacroOption) -> syn::Result<()> {
        let path = crate_path_from_option(option)?;
        self.krate.set(option.key(), option.describe(), path)
    }

    /// The error for a key that is not an option, with a hint for the
    /// likeliest meaning.
    fn unknown(option: &MacroOption) -> syn::Error {
        let name = option.name();
        if Isolation::from_name(name).is_some() {
            option.unknown_because(format_args!(" (did you mean `isolation = \"{name}\"`?)"))
        } else if SqliteMode::from_name(name).is_some() {
            option.unknown_because(format_args!(" (did you mean `sqlite_mode = \"{name}\"`?)"))
        } else if name == "non_retryable" {
            option.unknown_because(
                " (use the `#[managed_non_retryable_transaction]` attribute instead)",
            )
        } else {
            option.unknown()
        }
    }
}

/// The most calls a batch runs when `batch` gives no number.
const DEFAULT_BATCH: usize = 64;

impl MacroOptions for Options {
    fn attribute(&self) -> &'static str {
        self.flavor.name()
    }

    fn valid(&self) -> &'static [&'static str] {
        VALID
    }

    fn set(&mut self, option: &MacroOption) -> syn::Result<()> {
        match option.name() {
            "retries" => self.set_retries(option),
            "isolation" => self.set_isolation(option),
            "read_only" => self.set_read_only(option),
            "deferrable" => self.set_deferrable(option),
            "durable" => self.set_durable(option),
            "timeout" => self.set_timeout(option),
            "sqlite_mode" => self.set_sqlite_mode(option),
            "contention" => self.set_contention(option),
            "resolver" => self.set_resolver(option),
            "key" => self.set_key(option),
            "batch" => self.set_batch(option),
            "idempotency_key" => self.set_idempotency_key(option),
            "fingerprint" => self.set_fingerprint(option),
            "store_errors" => self.set_store_errors(option),
            "label" => self.set_label(option),
            "crate" => self.set_crate(option),
            _ => Err(Self::unknown(option)),
        }
    }
}

/// The string of `key = "name"`, whose valid names are `expected`.
fn named_value(option: &MacroOption, example: &str, expected: &str) -> syn::Result<LitStr> {
    let value = option.value_like(&format!("{} = \"{example}\"", option.name()))?;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{}` takes a string literal: {expected}", option.name()),
        )),
    }
}

fn unknown_value(lit: &LitStr, what: &str, expected: &str) -> syn::Error {
    syn::Error::new_spanned(
        lit,
        format!("unknown {what} `{}`; valid values: {expected}", lit.value()),
    )
}

/// The longest budget `timeout` takes, in milliseconds: the runtime's
/// `MAX_TIMEOUT` (one hour), mirrored here because a macro cannot read it.
const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// `"250ms"`, `"2s"`, `"1m"`, `"1h"` (a whole number and a unit) in
/// milliseconds, between 1 ms and [`MAX_TIMEOUT_MS`]. Written by hand: the
/// duration-parsing crates take more forms (fractions, compound units) than
/// a budget needs, and a proc-macro dependency costs every user's build.
pub(crate) fn parse_timeout(text: &str) -> Result<u64, String> {
    const FORMS: &str =
        "a whole number and a unit: `timeout = \"250ms\"`, `\"2s\"`, `\"1m\"` or `\"1h\"`";
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`timeout` takes {FORMS}")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`timeout` takes {FORMS}"))?;
    let millis = number.saturating_mul(per_unit);
    if millis == 0 {
        return Err(
            "`timeout` must be longer than zero: a call with no time cannot begin; \
                    leave `timeout` out for no bound"
                .to_owned(),
        );
    }
    if millis > MAX_TIMEOUT_MS {
        return Err(
            "`timeout` is at most one hour (`\"1h\"`): a call that may take longer \
                    holds a pooled connection and the rows it locked that long; leave `timeout` \
                    out for no bound"
                .to_owned(),
        );
    }
    Ok(millis)
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;

    #[test]
    fn timeouts_in_every_unit_and_the_bounds() {
        assert_eq!(parse_timeout("250ms"), Ok(250));
        assert_eq!(parse_timeout("2s"), Ok(2_000));
        assert_eq!(parse_timeout("1m"), Ok(60_000));
        assert_eq!(parse_timeout("1h"), Ok(3_600_000));
        assert_eq!(parse_timeout("3600s"), Ok(3_600_000));
        for bad in [
            "",
            "2",
            "2x",
            "s",
            "1.5s",
            "-1s",
            "0ms",
            "61m",
            "99999999999999999999s",
        ] {
            assert!(parse_timeout(bad).is_err(), "{bad:?}");
        }
    }
}
