//! The one way conflictkit macros read their options: a comma-separated list
//! of `key`, `key = value` and `key(...)` items (`syn::Meta`), each handed to
//! a setter on the macro's own configuration, as tokio-macros' `Configuration`
//! does. A setter reads its value with the typed accessors of [`MacroOption`],
//! whose errors are spanned on the value and say what to write instead; a
//! [`Once`](super::errors::Once) slot rejects a key given twice.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, ExprUnary, Lit, LitStr, Meta, Token, UnOp};

use super::errors::Errors;

/// One option: its key and the rest of the item.
pub(crate) struct MacroOption {
    meta: Meta,
    /// The key as written (`start`, `crate`), for messages and dispatch.
    name: String,
    /// The macro's attribute name (`auto_number`), for messages.
    attribute: &'static str,
}

impl MacroOption {
    /// The key as written.
    pub(crate) fn name(&self) -> &str {
        &self.name
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

    /// "`auto_number` option `start`", for messages.
    pub(crate) fn describe(&self) -> String {
        format!("`{}` option `{}`", self.attribute, self.name)
    }

    /// The value of `key = value`; an error spanned on the key for the other forms.
    pub(crate) fn value(&self) -> syn::Result<&Expr> {
        match &self.meta {
            Meta::NameValue(nv) => Ok(&nv.value),
            _ => Err(syn::Error::new_spanned(
                &self.meta,
                format_args!("{} takes a value: `{} = …`", self.describe(), self.name),
            )),
        }
    }

    /// The string of `key = "…"`; `example` shows a valid value in the error.
    pub(crate) fn string(&self, example: &str) -> syn::Result<LitStr> {
        match self.value()? {
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

    /// The error for a key the macro does not know, listing the valid ones.
    pub(crate) fn unknown(&self, valid: &[&str]) -> syn::Error {
        let valid: Vec<String> = valid.iter().map(|k| format!("`{k}`")).collect();
        syn::Error::new_spanned(
            self.key(),
            format_args!(
                "unknown {}; expected one of {}",
                self.describe(),
                valid.join(", ")
            ),
        )
    }
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

/// Hands every option in `tokens` (an attribute macro's arguments) to `set`,
/// recording its errors and going on with the next option.
pub(crate) fn for_each_in_tokens(
    attribute: &'static str,
    tokens: TokenStream,
    errors: &mut Errors,
    mut set: impl FnMut(&MacroOption) -> syn::Result<()>,
) {
    let parsed = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens);
    let Some(list) = errors.capture(parsed) else {
        return;
    };
    for meta in list {
        let name = meta.path().to_token_stream().to_string().replace(' ', "");
        let option = MacroOption {
            meta,
            name,
            attribute,
        };
        errors.capture(set(&option));
    }
}

/// Hands every option of every `#[<attribute>(...)]` in `attrs` to `set` (the
/// helper attributes of a derive, which may be repeated).
pub(crate) fn for_each_in_attributes(
    attribute: &'static str,
    attrs: &[Attribute],
    errors: &mut Errors,
    mut set: impl FnMut(&MacroOption) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(attribute)) {
        match &attr.meta {
            Meta::List(list) => {
                for_each_in_tokens(attribute, list.tokens.clone(), errors, &mut set);
            }
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

    fn collect(tokens: TokenStream) -> (Vec<String>, Vec<String>) {
        let mut errors = Errors::new();
        let mut seen = Vec::new();
        for_each_in_tokens("demo", tokens, &mut errors, |option| {
            seen.push(option.name().to_owned());
            match option.name() {
                "n" => option.value().map(drop),
                "s" => option.string("x").map(drop),
                "t" => option.ident().map(drop),
                _ => Err(option.unknown(&["n", "s", "t"])),
            }
        });
        let messages = errors
            .finish()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (seen, messages)
    }

    #[test]
    fn every_option_reaches_its_setter_and_errors_accumulate() {
        let (seen, errors) = collect(quote!(n = -3, s = "a", t = i16));
        assert_eq!(seen, ["n", "s", "t"]);
        assert!(errors.is_empty(), "{errors:?}");

        let (seen, errors) = collect(quote!(n, s = 1, t = "i16", bogus));
        assert_eq!(seen, ["n", "s", "t", "bogus"]);
        assert_eq!(
            errors,
            [
                "`demo` option `n` takes a value: `n = …`",
                "`demo` option `s` takes a string literal, e.g. `s = \"x\"`",
                "`demo` option `t` takes an identifier",
                "unknown `demo` option `bogus`; expected one of `n`, `s`, `t`",
            ]
        );
    }

    #[test]
    fn integer_literals() {
        assert_eq!(integer_literal(&syn::parse_quote!(-(7))), Some(-7));
        assert_eq!(integer_literal(&syn::parse_quote!(7u8)), Some(7));
        assert_eq!(integer_literal(&syn::parse_quote!(N)), None);
    }
}
