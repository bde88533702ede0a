//! Checks a `#[derive(AutoNumber)]` input and numbers its variants: a
//! fieldless, non-generic enum whose discriminants count up by one from the
//! first variant's, which is written out.
//!
//! The values are the Rust discriminants, so `Enum::Variant as i32` and
//! `Enum::Variant.value()` cannot disagree: the first variant states its
//! number (`Database = 1`, as the Python original started), later ones may
//! restate theirs, and a restated number that breaks the sequence is an error.
//!
//! Checking never stops at the first problem: every error goes to an
//! [`Errors`] and a best-effort [`Input`] is still returned, so the caller can
//! emit stub impls next to the errors.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::punctuated::Punctuated;
use syn::{Attribute, Fields, Ident, Item, Path, Token};

use super::args::{EnumArgs, IntRepr, SerdeMode, Spanned, VariantArgs};
use crate::common::crate_path::default_crate_path;
use crate::common::errors::Errors;
use crate::common::options::integer_literal;

/// The enum-level settings, defaults filled in.
pub(crate) struct Options {
    /// `crate = "path"`, default `::conflictkit`.
    pub(crate) krate: Path,
    /// `repr = i16`, else the enum's `#[repr(i16)]`, else `i32`.
    pub(crate) repr: IntRepr,
    /// `serde = "number" | "name" | "none"`, default number.
    pub(crate) serde: SerdeMode,
    /// The span of an explicit `serde` option (it needs the serde feature).
    pub(crate) serde_span: Option<Span>,
}

/// One variant, its name and its value.
pub(crate) struct Variant {
    pub(crate) ident: Ident,
    /// The name `name()` returns: `rename`, else `rename_all` applied to the
    /// identifier, else the identifier as written without `r#`.
    pub(crate) name: String,
    pub(crate) value: i128,
}

/// A checked (and, when no error was reported, valid) AutoNumber enum.
pub(crate) struct Input {
    pub(crate) ident: Ident,
    pub(crate) has_generics: bool,
    pub(crate) options: Options,
    pub(crate) variants: Vec<Variant>,
}

/// Checks `input`, recording every problem in `errors`.
pub(crate) fn check(input: &Item, errors: &mut Errors) -> Input {
    let empty = Punctuated::new();
    let (ident, attrs, generics, variants) = match input {
        Item::Enum(item) => (&item.ident, &item.attrs, &item.generics, &item.variants),
        Item::Struct(item) => {
            let ident = &item.ident;
            errors.spanned(
                item.struct_token,
                format_args!(
                    "`#[derive(AutoNumber)]` only supports enums, but `{ident}` is a struct"
                ),
            );
            (ident, &item.attrs, &item.generics, &empty)
        }
        Item::Union(item) => {
            let ident = &item.ident;
            errors.spanned(
                item.union_token,
                format_args!(
                    "`#[derive(AutoNumber)]` only supports enums, but `{ident}` is a union"
                ),
            );
            (ident, &item.attrs, &item.generics, &empty)
        }
        other => {
            // Not reachable from `#[derive]`, which only accepts the above.
            errors.spanned(other, "`#[derive(AutoNumber)]` only supports enums");
            return Input {
                ident: Ident::new("__CkNotAnEnum", Span::call_site()),
                has_generics: true,
                options: options(EnumArgs::default(), None),
                variants: Vec::new(),
            };
        }
    };
    let args = EnumArgs::parse(attrs, errors);

    if !generics.params.is_empty() {
        errors.spanned(
            generics,
            format_args!(
                "`#[derive(AutoNumber)]` does not support generic parameters; remove them from `{ident}`"
            ),
        );
    }

    let rename_all = args.rename_all.get().copied();
    let mut numbered = Vec::with_capacity(variants.len());
    let first: Option<TokenStream> = variants
        .first()
        .and_then(|v| v.discriminant.as_ref())
        .map(|(_, expr)| expr.to_token_stream());
    let mut next: Option<i128> = None;
    for variant in variants {
        let path = format!("{ident}::{}", variant.ident);
        if !matches!(variant.fields, Fields::Unit) {
            errors.spanned(
                variant,
                format_args!(
                    "`#[derive(AutoNumber)]` only supports unit variants (without fields), but `{path}` has fields; remove them"
                ),
            );
        }
        let value = number(variant, &path, next, errors);
        next = value.checked_add(1);

        let variant_args = VariantArgs::parse(&variant.attrs, errors);
        let written = variant.ident.unraw().to_string();
        let name = match (variant_args.rename.into_inner(), rename_all) {
            (Some((name, _)), _) => name,
            (None, Some(rule)) => rule.apply(&written),
            (None, None) => written,
        };
        numbered.push(Variant {
            ident: variant.ident.clone(),
            name,
            value,
        });
    }
    check_names_unique(ident, &numbered, errors);

    let int_repr = int_repr_attribute(attrs);
    let repr = args
        .repr
        .get()
        .map(|r| r.value)
        .or(int_repr)
        .unwrap_or(IntRepr::I32);
    if let (Some(first_value), Some(last)) = (numbered.first(), numbered.last()) {
        check_range(
            repr,
            (first_value.value, last.value),
            numbered.len(),
            first.as_ref(),
            args.repr.get(),
            errors,
        );
    }

    Input {
        ident: ident.clone(),
        has_generics: !generics.params.is_empty(),
        options: options(args, int_repr),
        variants: numbered,
    }
}

/// The value of `variant`: its discriminant, which must be an integer literal
/// on the first variant and, when written on a later one, the value after
/// the previous variant's (`next`).
fn number(variant: &syn::Variant, path: &str, next: Option<i128>, errors: &mut Errors) -> i128 {
    let written = variant.discriminant.as_ref().map(|(_, expr)| expr);
    match (written.map(|expr| (expr, integer_literal(expr))), next) {
        (Some((_, Some(value))), None) => value,
        (Some((expr, Some(value))), Some(expected)) => {
            if value != expected {
                errors.spanned(
                    expr,
                    format_args!(
                        "`{path} = {value}` breaks the numbering: AutoNumber variants count up by one, so `{path}` is {expected} here; write `= {expected}` or remove the discriminant"
                    ),
                );
            }
            expected
        }
        (Some((expr, None)), _) => {
            errors.spanned(
                expr,
                format_args!(
                    "the discriminant of `{path}` must be an integer literal, e.g. `= 1`, so that the derive can check the numbering"
                ),
            );
            next.unwrap_or(1)
        }
        (None, Some(expected)) => expected,
        (None, None) => {
            let variant_ident = &variant.ident;
            errors.spanned(
                variant_ident,
                format_args!(
                    "write the number of the first variant: `{variant_ident} = 1` (or `= 0`). AutoNumber values are the enum's discriminants, so `{path} as i32` and `{path}.value()` agree, and an implicit first discriminant would be 0 where the values start at 1"
                ),
            );
            1
        }
    }
}

/// Two variants with one name would make `from_name` ambiguous.
fn check_names_unique(ident: &Ident, variants: &[Variant], errors: &mut Errors) {
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for variant in variants {
        if let Some(earlier) = seen.insert(variant.name.as_str(), &variant.ident) {
            errors.spanned(
                &variant.ident,
                format_args!(
                    "`{ident}::{}` and `{ident}::{earlier}` are both named \"{}\"; rename one with `#[auto_number(rename = \"…\")]`",
                    variant.ident, variant.name
                ),
            );
        }
    }
}

/// The integer type of the enum's `#[repr(…)]`, when it is one of the eight.
fn int_repr_attribute(attrs: &[Attribute]) -> Option<IntRepr> {
    let mut found = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let list = attr.parse_args_with(Punctuated::<Ident, Token![,]>::parse_terminated);
        if let Ok(list) = list {
            found = list
                .iter()
                .find_map(|i| IntRepr::from_name(&i.to_string()))
                .or(found);
        }
    }
    found
}

/// Every value, `first ..= last`, must fit in the repr.
fn check_range(
    repr: IntRepr,
    (first, last): (i128, i128),
    count: usize,
    first_tokens: Option<&TokenStream>,
    repr_option: Option<&Spanned<IntRepr>>,
    errors: &mut Errors,
) {
    let name = repr.name();
    let (min, max) = (repr.min(), repr.max());
    let on_first = first_tokens.cloned().unwrap_or_default();
    if !(min..=max).contains(&first) {
        errors.spanned(
            on_first,
            format_args!("the first value, {first}, does not fit in `{name}` ({min}..={max}); choose a first value in that range or a wider `repr`"),
        );
        return;
    }
    if last > max {
        let message = format!(
            "the last of the {count} variants would be numbered {last}, which overflows `{name}` (at most {max}); lower the first value or choose a wider `repr`"
        );
        match repr_option {
            Some(repr) => errors.spanned(&repr.tokens, message),
            None => errors.spanned(on_first, message),
        }
    }
}

fn options(args: EnumArgs, int_repr: Option<IntRepr>) -> Options {
    let repr = args
        .repr
        .into_inner()
        .map(|r| r.value)
        .or(int_repr)
        .unwrap_or(IntRepr::I32);
    let (serde, serde_span) = args
        .serde
        .into_inner()
        .map_or((SerdeMode::Number, None), |(mode, span)| (mode, Some(span)));
    Options {
        krate: args.krate.into_inner().unwrap_or_else(default_crate_path),
        repr,
        serde,
        serde_span,
    }
}
