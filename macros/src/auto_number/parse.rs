//! Parse and validate the input of `#[derive(AutoNumber)]`: a fieldless enum
//! without discriminants, plus its `#[auto_number(...)]` options.
//!
//! Parsing never stops at the first problem: every error goes to an
//! [`Errors`] and a best-effort [`Input`] is still returned, so the caller
//! can emit a stub impl next to the errors.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::punctuated::Punctuated;
use syn::{Attribute, Expr, ExprLit, ExprUnary, Fields, Ident, Item, Lit, LitStr, Path, UnOp};

use crate::common::crate_path::{crate_path_from_meta, default_crate_path};
use crate::common::errors::{Errors, Once};

const OPTIONS: &str = "`start`, `repr`, `serde`, `crate`";

/// The integer types an AutoNumber enum can be numbered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntRepr {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl IntRepr {
    const ALL: [IntRepr; 8] = [
        IntRepr::I8,
        IntRepr::I16,
        IntRepr::I32,
        IntRepr::I64,
        IntRepr::U8,
        IntRepr::U16,
        IntRepr::U32,
        IntRepr::U64,
    ];

    /// The Rust name of the type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IntRepr::I8 => "i8",
            IntRepr::I16 => "i16",
            IntRepr::I32 => "i32",
            IntRepr::I64 => "i64",
            IntRepr::U8 => "u8",
            IntRepr::U16 => "u16",
            IntRepr::U32 => "u32",
            IntRepr::U64 => "u64",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    fn min(self) -> i128 {
        match self {
            IntRepr::I8 => i8::MIN.into(),
            IntRepr::I16 => i16::MIN.into(),
            IntRepr::I32 => i32::MIN.into(),
            IntRepr::I64 => i64::MIN.into(),
            IntRepr::U8 | IntRepr::U16 | IntRepr::U32 | IntRepr::U64 => 0,
        }
    }

    fn max(self) -> i128 {
        match self {
            IntRepr::I8 => i8::MAX.into(),
            IntRepr::I16 => i16::MAX.into(),
            IntRepr::I32 => i32::MAX.into(),
            IntRepr::I64 => i64::MAX.into(),
            IntRepr::U8 => u8::MAX.into(),
            IntRepr::U16 => u16::MAX.into(),
            IntRepr::U32 => u32::MAX.into(),
            IntRepr::U64 => u64::MAX.into(),
        }
    }

    /// The type as a token (`i32`).
    pub(crate) fn ident(self) -> Ident {
        Ident::new(self.name(), Span::call_site())
    }
}

/// How the enum (de)serializes with serde.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SerdeMode {
    /// As the number (the default).
    Number,
    /// As the variant name.
    Name,
    /// No serde impls (the user writes their own).
    None,
}

impl SerdeMode {
    /// The mode as the helper macro takes it.
    pub(crate) fn ident(self) -> Ident {
        format_ident!(
            "{}",
            match self {
                SerdeMode::Number => "number",
                SerdeMode::Name => "name",
                SerdeMode::None => "none",
            }
        )
    }
}

/// The `#[auto_number(...)]` options, with their defaults filled in.
pub(crate) struct Options {
    /// `crate = "path"`, default `::conflictkit`.
    pub(crate) krate: Path,
    /// `repr = i16`, default `i32`.
    pub(crate) repr: IntRepr,
    /// `serde = "number" | "name" | "none"`, default number.
    pub(crate) serde: SerdeMode,
    /// The span of an explicit `serde` option (it needs the serde feature).
    pub(crate) serde_span: Option<Span>,
}

/// One variant and its value.
pub(crate) struct Variant {
    pub(crate) ident: Ident,
    /// The name as written, without `r#`.
    pub(crate) name: String,
    pub(crate) value: i128,
}

/// A parsed (and, when no error was reported, valid) AutoNumber enum.
pub(crate) struct Input {
    pub(crate) ident: Ident,
    pub(crate) has_generics: bool,
    pub(crate) options: Options,
    pub(crate) variants: Vec<Variant>,
}

/// Where a value came from, for spanning range errors.
struct Spanned<T> {
    tokens: TokenStream,
    value: T,
}

#[derive(Default)]
struct RawOptions {
    krate: Once<Path>,
    repr: Once<Spanned<IntRepr>>,
    start: Once<Spanned<i128>>,
    serde: Once<(SerdeMode, Span)>,
}

/// Parses `input`, recording every problem in `errors`.
pub(crate) fn parse(input: &Item, errors: &mut Errors) -> Input {
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
            let ident = Ident::new("__CkNotAnEnum", proc_macro2::Span::call_site());
            return Input {
                ident,
                has_generics: true,
                options: default_options(),
                variants: Vec::new(),
            };
        }
    };
    let raw = parse_options(attrs, errors);

    if !generics.params.is_empty() {
        errors.spanned(
            generics,
            format_args!(
                "`#[derive(AutoNumber)]` does not support generic parameters; remove them from `{ident}`"
            ),
        );
    }

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
        if let Some((_, discriminant)) = &variant.discriminant {
            errors.spanned(
                variant,
                format_args!(
                    "`{path}` has an explicit discriminant, which would contradict auto numbering; remove `= {}` and set the first value with `#[auto_number(start = N)]` on the enum",
                    discriminant.to_token_stream()
                ),
            );
        }
        for attr in variant
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("auto_number"))
        {
            errors.spanned(
                attr,
                format_args!("`#[auto_number(...)]` goes on the enum, not on the variant `{path}`"),
            );
        }
    }

    let repr = raw.repr.get().map_or(IntRepr::I32, |r| r.value);
    let start = raw.start.get().map_or(1, |s| s.value);
    check_range(&raw, repr, start, variants.len(), errors);

    let variants = variants
        .iter()
        .zip(start..)
        .map(|(v, value)| Variant {
            ident: v.ident.clone(),
            name: v.ident.unraw().to_string(),
            value,
        })
        .collect();

    let (serde, serde_span) = raw
        .serde
        .into_inner()
        .map_or((SerdeMode::Number, None), |(mode, span)| (mode, Some(span)));
    Input {
        ident: ident.clone(),
        has_generics: !generics.params.is_empty(),
        options: Options {
            krate: raw.krate.into_inner().unwrap_or_else(default_crate_path),
            repr,
            serde,
            serde_span,
        },
        variants,
    }
}

/// Every value, `start ..= start + count - 1`, must fit in the repr.
fn check_range(raw: &RawOptions, repr: IntRepr, start: i128, count: usize, errors: &mut Errors) {
    let name = repr.name();
    let (min, max) = (repr.min(), repr.max());
    let start_tokens = raw.start.get().map(|s| &s.tokens);
    if !(min..=max).contains(&start) {
        let span_on = start_tokens.cloned().unwrap_or_default();
        errors.spanned(
            span_on,
            format_args!("`start = {start}` does not fit in `{name}` ({min}..={max}); choose a start in that range or a wider `repr`"),
        );
        return;
    }
    let last = start + i128::try_from(count).unwrap_or(i128::MAX) - 1;
    if count > 0 && last > max {
        let message = format!(
            "the last of the {count} variants would be numbered {last}, which overflows `{name}` (at most {max}); lower `start` or choose a wider `repr`"
        );
        match (start_tokens, raw.repr.get()) {
            (Some(tokens), _) => errors.spanned(tokens, message),
            (None, Some(repr)) => errors.spanned(&repr.tokens, message),
            (None, None) => errors.at(Span::call_site(), message),
        }
    }
}

fn default_options() -> Options {
    Options {
        krate: default_crate_path(),
        repr: IntRepr::I32,
        serde: SerdeMode::Number,
        serde_span: None,
    }
}

fn parse_options(attrs: &[Attribute], errors: &mut Errors) -> RawOptions {
    let mut raw = RawOptions::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("auto_number")) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.clone();
            let what = |name: &str| format!("`auto_number` option `{name}`");
            if key.is_ident("start") {
                let start = parse_start(&meta)?;
                errors.capture(raw.start.set(&key, what("start"), start));
            } else if key.is_ident("repr") {
                if let Some(repr) = errors.capture(parse_repr(&meta)?) {
                    errors.capture(raw.repr.set(&key, what("repr"), repr));
                }
            } else if key.is_ident("serde") {
                let lit: LitStr = meta.value()?.parse()?;
                if let Some(mode) = errors.capture(parse_serde(&lit)) {
                    errors.capture(raw.serde.set(&key, what("serde"), (mode, key_span(&key))));
                }
            } else if key.is_ident("crate") {
                let path = crate_path_from_meta(&meta)?;
                errors.capture(raw.krate.set(&key, what("crate"), path));
            } else {
                skip_value(&meta)?;
                errors.spanned(
                    &key,
                    format_args!(
                        "unknown `auto_number` option `{}`; expected one of {OPTIONS}",
                        key.to_token_stream()
                    ),
                );
            }
            Ok(())
        });
        errors.capture(result);
    }
    raw
}

fn key_span(key: &Path) -> Span {
    key.segments
        .first()
        .map_or_else(Span::call_site, |s| s.ident.span())
}

/// Consumes `= value` or `(...)` after an unknown key so parsing can go on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

fn parse_start(meta: &ParseNestedMeta<'_>) -> syn::Result<Spanned<i128>> {
    let expr: Expr = meta.value()?.parse()?;
    let value = match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit.base10_parse::<i128>(),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr: inner,
            ..
        }) => match &**inner {
            Expr::Lit(ExprLit {
                lit: Lit::Int(lit), ..
            }) => lit.base10_parse::<i128>().map(|v| -v),
            _ => Err(start_error(&expr)),
        },
        _ => Err(start_error(&expr)),
    }?;
    let key = &meta.path;
    Ok(Spanned {
        tokens: quote::quote!(#key = #expr),
        value,
    })
}

fn start_error(expr: &Expr) -> syn::Error {
    syn::Error::new_spanned(expr, "`start` must be an integer literal, e.g. `start = 0`")
}

fn parse_repr(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::Result<Spanned<IntRepr>>> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return Ok(Err(syn::Error::new(
            lit.span(),
            format_args!(
                "`repr` takes a type, not a string: write `repr = {}`",
                lit.value()
            ),
        )));
    }
    let ty: syn::Type = value.parse()?;
    let found = match &ty {
        syn::Type::Path(p) if p.qself.is_none() => p
            .path
            .get_ident()
            .and_then(|i| IntRepr::from_name(&i.to_string())),
        _ => None,
    };
    Ok(match found {
        Some(repr) => Ok(Spanned {
            tokens: ty.to_token_stream(),
            value: repr,
        }),
        None => {
            let names: Vec<&str> = IntRepr::ALL.iter().map(|r| r.name()).collect();
            Err(syn::Error::new_spanned(
                &ty,
                format_args!(
                    "unsupported `repr = {}`; use one of {}",
                    ty.to_token_stream(),
                    names.join(", ")
                ),
            ))
        }
    })
}

fn parse_serde(lit: &LitStr) -> syn::Result<SerdeMode> {
    match lit.value().as_str() {
        "number" => Ok(SerdeMode::Number),
        "name" => Ok(SerdeMode::Name),
        "none" => Ok(SerdeMode::None),
        other => Err(syn::Error::new(
            lit.span(),
            format_args!(
                "unknown serde mode `{other}`; use \"number\" (the default), \"name\" or \"none\""
            ),
        )),
    }
}
