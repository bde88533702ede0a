//! The one way conflictkit macros read their options: a comma-separated list
//! of `key`, `key = value` and `key(...)` items (`syn::Meta`), and, where a
//! macro takes one, a leading literal (the event name of `#[event_listener]`).
//! Each item goes to a setter of the macro's own configuration, a type
//! implementing [`MacroOptions`], as tokio-macros' `Configuration` does.
//!
//! A setter reads its value with the typed accessors of [`MacroOption`],
//! whose errors are spanned on the value and say what to write instead; a
//! [`Once`](super::errors::Once) slot rejects a key given twice; an unknown
//! key gets the list of valid ones and, for a near miss, "did you mean".

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, ExprUnary, Lit, LitStr, Meta, Token, UnOp};

use super::errors::Errors;

/// A macro's configuration: one setter per key.
pub(crate) trait MacroOptions {
    /// The attribute's name (`auto_number`), for messages.
    fn attribute(&self) -> &'static str;

    /// Every valid option as messages show it (`retries = N`, `read_only`);
    /// the leading identifier of each is its key.
    fn valid(&self) -> &'static [&'static str];

    /// Records `option`, or says what is wrong with it.
    fn set(&mut self, option: &MacroOption) -> syn::Result<()>;

    /// Records a literal given at `position` (0 = first); most macros take none.
    fn set_literal(&mut self, literal: &Lit, position: usize) -> syn::Result<()> {
        let _ = position;
        Err(syn::Error::new_spanned(
            literal,
            format_args!(
                "`{}` takes options, not a literal; {}",
                self.attribute(),
                options_are(self.attribute(), self.valid())
            ),
        ))
    }
}

/// One option: its key and the rest of the item.
pub(crate) struct MacroOption {
    meta: Meta,
    /// The key as written (`start`, `crate`), for messages and dispatch.
    name: String,
    /// Where the option stands in the list (0 = first).
    position: usize,
    /// The macro's attribute name (`auto_number`), for messages.
    attribute: &'static str,
    /// The valid options, for the "unknown option" message.
    valid: &'static [&'static str],
}

impl MacroOption {
    /// The key as written.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the option stands in the list (0 = first).
    pub(crate) fn position(&self) -> usize {
        self.position
    }

    /// The key's tokens, where errors about the option as a whole go.
    pub(crate) fn key(&self) -> &syn::Path {
        self.meta.path()
    }

    /// The span of the key.
    pub(crate) fn key_span(&self) -> Span {
        self.meta
            .path()
            .segments
            .first()
            .map_or_else(Span::call_site, |s| s.ident.span())
    }

    /// Whether the option is a bare key (`read_only`), with no value.
    pub(crate) fn is_bare(&self) -> bool {
        matches!(self.meta, Meta::Path(_))
    }

    /// "`auto_number` option `start`", for messages.
    pub(crate) fn describe(&self) -> String {
        format!("`{}` option `{}`", self.attribute, self.name)
    }

    /// The value of `key = value`; an error spanned on the option for the
    /// other forms.
    pub(crate) fn value(&self) -> syn::Result<&Expr> {
        self.value_like(&format!("{} = …", self.name))
    }

    /// As [`value`](Self::value), with `example` (`retries = 5`) shown in the error.
    pub(crate) fn value_like(&self, example: &str) -> syn::Result<&Expr> {
        match &self.meta {
            Meta::NameValue(nv) => Ok(&nv.value),
            _ => Err(syn::Error::new_spanned(
                &self.meta,
                format_args!("{} takes a value: `{example}`", self.describe()),
            )),
        }
    }

    /// A flag (`read_only`): an error spanned on the option when it has a value.
    pub(crate) fn flag(&self) -> syn::Result<Span> {
        if self.is_bare() {
            Ok(self.key_span())
        } else {
            Err(syn::Error::new_spanned(
                &self.meta,
                format_args!(
                    "{} is a flag: write `{}` on its own",
                    self.describe(),
                    self.name
                ),
            ))
        }
    }

    /// The string of `key = "…"`; `example` shows a valid value in the error.
    pub(crate) fn string(&self, example: &str) -> syn::Result<LitStr> {
        let value = self.value_like(&format!("{} = \"{example}\"", self.name))?;
        match value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => Ok(lit.clone()),
            other => Err(syn::Error::new_spanned(
                other,
                format_args!(
                    "{} takes a string literal, e.g. `{} = \"{example}\"`",
                    self.describe(),
                    self.name
                ),
            )),
        }
    }

    /// The single identifier of `key = ident` (a type such as `i16`).
    pub(crate) fn ident(&self) -> syn::Result<(&syn::Ident, &Expr)> {
        let expr = self.value()?;
        match expr {
            Expr::Path(p) if p.qself.is_none() && p.attrs.is_empty() => p
                .path
                .get_ident()
                .map(|ident| (ident, expr))
                .ok_or_else(|| syn::Error::new_spanned(expr, "expected a single identifier")),
            other => Err(syn::Error::new_spanned(
                other,
                format_args!("{} takes an identifier", self.describe()),
            )),
        }
    }

    /// The error for a key the macro does not know: a near miss gets "did
    /// you mean", and the valid options are listed.
    pub(crate) fn unknown(&self) -> syn::Error {
        let hint = self
            .near_miss()
            .map(|key| format!(" (did you mean `{key}`?)"));
        self.unknown_because(hint.as_deref().unwrap_or(""))
    }

    /// The valid key this unknown one most likely meant, if any.
    pub(crate) fn near_miss(&self) -> Option<&'static str> {
        near_miss(&self.name, self.valid.iter().map(|v| key_of(v)))
    }

    /// As [`unknown`](Self::unknown), with the macro's own `hint` (" (use …)")
    /// after the key instead of the near-miss one.
    pub(crate) fn unknown_because(&self, hint: impl Display) -> syn::Error {
        syn::Error::new_spanned(
            self.key(),
            format_args!(
                "unknown {}{hint}; the options are {}",
                self.describe(),
                list(self.valid)
            ),
        )
    }
}

/// "the options of `#[attr]` are `a`, `b`", for messages.
fn options_are(attribute: &str, valid: &[&str]) -> String {
    format!("the options of `#[{attribute}]` are {}", list(valid))
}

/// "`a`, `b`".
fn list(valid: &[&str]) -> String {
    let valid: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
    valid.join(", ")
}

/// The key of a valid option as messages show it: `retries` of `retries = N`.
fn key_of(form: &'static str) -> &'static str {
    form.split([' ', '=', '(']).next().unwrap_or(form)
}

/// The valid key `written` most likely meant: one or two edits away
/// (`readonly`, `isolaton`), or sharing its first four letters (`retry`,
/// `timeout`).
pub(crate) fn near_miss<'a>(
    written: &str,
    valid: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let allowed = if written.chars().count() <= 3 { 1 } else { 2 };
    valid
        .into_iter()
        .filter(|key| *key != written)
        .filter_map(|key| {
            let distance = edit_distance(written, key);
            let prefix = written
                .chars()
                .zip(key.chars())
                .take_while(|(a, b)| a == b)
                .count();
            (distance <= allowed || prefix >= 4).then_some((distance, key))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// `3` or `-3` as written, or `None` for any other expression.
pub(crate) fn integer_literal(expr: &Expr) -> Option<i128> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit.base10_parse::<i128>().ok(),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: inner,
            ..
        }) => integer_literal(inner).and_then(i128::checked_neg),
        Expr::Group(group) => integer_literal(&group.expr),
        Expr::Paren(paren) => integer_literal(&paren.expr),
        _ => None,
    }
}

/// One item of the list: a literal or an option.
enum Item {
    Literal(Lit),
    Option(Box<Meta>),
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Lit) {
            input.parse().map(Item::Literal)
        } else {
            input.parse().map(|meta| Item::Option(Box::new(meta)))
        }
    }
}

/// Hands every item in `tokens` (an attribute macro's arguments) to the
/// setters of `options`, recording their errors and going on with the next.
pub(crate) fn read_tokens(
    options: &mut impl MacroOptions,
    tokens: TokenStream,
    errors: &mut Errors,
) {
    let parsed = Punctuated::<Item, Token![,]>::parse_terminated.parse2(tokens);
    let list = match parsed {
        Ok(list) => list,
        Err(error) => {
            errors.push(syn::Error::new(
                error.span(),
                format_args!(
                    "{error}; {}",
                    options_are(options.attribute(), options.valid())
                ),
            ));
            return;
        }
    };
    for (position, item) in list.into_iter().enumerate() {
        let result = match item {
            Item::Literal(literal) => options.set_literal(&literal, position),
            Item::Option(meta) => {
                let name = meta.path().to_token_stream().to_string().replace(' ', "");
                options.set(&MacroOption {
                    meta: *meta,
                    name,
                    position,
                    attribute: options.attribute(),
                    valid: options.valid(),
                })
            }
        };
        errors.capture(result);
    }
}

/// Hands every option of every `#[<attribute>(...)]` in `attrs` to the
/// setters of `options` (the helper attributes of a derive, which may be
/// repeated).
pub(crate) fn read_attributes(
    options: &mut impl MacroOptions,
    attrs: &[Attribute],
    errors: &mut Errors,
) {
    let attribute = options.attribute();
    for attr in attrs.iter().filter(|a| a.path().is_ident(attribute)) {
        match &attr.meta {
            Meta::List(list) => read_tokens(options, list.tokens.clone(), errors),
            other => errors.spanned(
                other,
                format_args!("write the options in parentheses: `#[{attribute}(…)]`"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    #[derive(Default)]
    struct Demo {
        seen: Vec<String>,
    }

    impl MacroOptions for Demo {
        fn attribute(&self) -> &'static str {
            "demo"
        }

        fn valid(&self) -> &'static [&'static str] {
            &["n = N", "s = \"…\"", "t = T", "flag", "timeout_ms = N"]
        }

        fn set(&mut self, option: &MacroOption) -> syn::Result<()> {
            self.seen.push(option.name().to_owned());
            match option.name() {
                "n" => option.value().map(drop),
                "s" => option.string("x").map(drop),
                "t" => option.ident().map(drop),
                "flag" => option.flag().map(drop),
                _ => Err(option.unknown()),
            }
        }
    }

    fn collect(tokens: TokenStream) -> (Vec<String>, Vec<String>) {
        let mut errors = Errors::new();
        let mut demo = Demo::default();
        read_tokens(&mut demo, tokens, &mut errors);
        let messages = errors
            .finish()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (demo.seen, messages)
    }

    #[test]
    fn every_option_reaches_its_setter_and_errors_accumulate() {
        let (seen, errors) = collect(quote!(n = -3, s = "a", t = i16, flag));
        assert_eq!(seen, ["n", "s", "t", "flag"]);
        assert!(errors.is_empty(), "{errors:?}");

        let (seen, errors) = collect(quote!(n, s = 1, t = "i16", flag = 1, "lit", bogus));
        assert_eq!(seen, ["n", "s", "t", "flag", "bogus"]);
        let valid =
            "the options of `#[demo]` are `n = N`, `s = \"…\"`, `t = T`, `flag`, `timeout_ms = N`";
        let listed = "the options are `n = N`, `s = \"…\"`, `t = T`, `flag`, `timeout_ms = N`";
        assert_eq!(
            errors,
            [
                "`demo` option `n` takes a value: `n = …`".to_owned(),
                "`demo` option `s` takes a string literal, e.g. `s = \"x\"`".to_owned(),
                "`demo` option `t` takes an identifier".to_owned(),
                "`demo` option `flag` is a flag: write `flag` on its own".to_owned(),
                format!("`demo` takes options, not a literal; {valid}"),
                format!("unknown `demo` option `bogus`; {listed}"),
            ]
        );
    }

    #[test]
    fn near_misses_get_did_you_mean() {
        let (_, errors) = collect(quote!(flg, timeout = 5, nn));
        let listed = "the options are `n = N`, `s = \"…\"`, `t = T`, `flag`, `timeout_ms = N`";
        assert_eq!(
            errors,
            [
                format!("unknown `demo` option `flg` (did you mean `flag`?); {listed}"),
                format!("unknown `demo` option `timeout` (did you mean `timeout_ms`?); {listed}"),
                format!("unknown `demo` option `nn` (did you mean `n`?); {listed}"),
            ]
        );
        let keys = [
            "retries",
            "isolation",
            "read_only",
            "key",
            "label",
            "resolver",
        ];
        assert_eq!(near_miss("retry", keys), Some("retries"));
        assert_eq!(near_miss("readonly", keys), Some("read_only"));
        assert_eq!(near_miss("isolaton", keys), Some("isolation"));
        assert_eq!(near_miss("flavour", keys), None);
        assert_eq!(near_miss("serializable", keys), None);
    }

    #[test]
    fn parse_errors_list_the_options() {
        let (seen, errors) = collect(quote!(n = ));
        assert!(seen.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("; the options of `#[demo]` are `n = N`, `s = \"…\"`, `t = T`, `flag`, `timeout_ms = N`"),
            "{errors:?}"
        );
    }

    #[test]
    fn integer_literals() {
        assert_eq!(integer_literal(&syn::parse_quote!(-(7))), Some(-7));
        assert_eq!(integer_literal(&syn::parse_quote!(7u8)), Some(7));
        assert_eq!(integer_literal(&syn::parse_quote!(N)), None);
    }
}
