//! The `#[auto_number(...)]` options, one setter per key: `repr`, `serde`,
//! `rename_all` and `crate` on the enum, `rename` on a variant.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident};
use syn::{Attribute, Expr, ExprLit, Ident, Lit, Path};

use super::rename::RenameRule;
use crate::common::crate_path::crate_path_from_option;
use crate::common::errors::{Errors, Once};
use crate::common::options::{MacroOption, MacroOptions, read_attributes};

/// The helper attribute's name.
pub(crate) const ATTRIBUTE: &str = "auto_number";

/// The options on the enum, as messages show them.
const ENUM_KEYS: &[&str] = &[
    "repr = <integer type>",
    "serde = \"number\" | \"name\" | \"none\"",
    "rename_all = \"<case>\"",
    "crate = \"path\"",
];
/// The options on a variant, as messages show them.
const VARIANT_KEYS: &[&str] = &["rename = \"name\""];

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

    /// The type named `name`, if it is one of the eight.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The smallest value of the type.
    pub(crate) fn min(self) -> i128 {
        match self {
            IntRepr::I8 => i8::MIN.into(),
            IntRepr::I16 => i16::MIN.into(),
            IntRepr::I32 => i32::MIN.into(),
            IntRepr::I64 => i64::MIN.into(),
            IntRepr::U8 | IntRepr::U16 | IntRepr::U32 | IntRepr::U64 => 0,
        }
    }

    /// The largest value of the type.
    pub(crate) fn max(self) -> i128 {
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

/// A value and the tokens it was written as, for spanning later errors.
pub(crate) struct Spanned<T> {
    pub(crate) tokens: TokenStream,
    pub(crate) value: T,
}

/// The options on the enum, as given (defaults are filled in by `validate`).
#[derive(Default)]
pub(crate) struct EnumArgs {
    pub(crate) krate: Once<Path>,
    pub(crate) repr: Once<Spanned<IntRepr>>,
    pub(crate) serde: Once<(SerdeMode, Span)>,
    pub(crate) rename_all: Once<RenameRule>,
}

impl MacroOptions for EnumArgs {
    fn attribute(&self) -> &'static str {
        ATTRIBUTE
    }

    fn valid(&self) -> &'static [&'static str] {
        ENUM_KEYS
    }

    fn set(&mut self, option: &MacroOption) -> syn::Result<()> {
        match option.name() {
            "repr" => self.set_repr(option),
            "serde" => self.set_serde(option),
            "rename_all" => self.set_rename_all(option),
            "crate" => self.set_crate(option),
            "start" => Err(syn::Error::new_spanned(
                option.key(),
                "`start` is gone: the values are the enum's discriminants, so write the first \
                 one on the first variant instead (e.g. `Database = 0`)",
            )),
            "rename" => Err(syn::Error::new_spanned(
                option.key(),
                "`rename` goes on a variant; on the enum, use `rename_all = \"…\"`",
            )),
            _ => Err(option.unknown()),
        }
    }
}

impl EnumArgs {
    /// Reads every `#[auto_number(...)]` on the enum.
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut args = Self::default();
        read_attributes(&mut args, attrs, errors);
        args
    }

    fn set_repr(&mut self, option: &MacroOption) -> syn::Result<()> {
        if let Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) = option.value()?
        {
            return Err(syn::Error::new(
                lit.span(),
                format_args!(
                    "`repr` takes a type, not a string: write `repr = {}`",
                    lit.value()
                ),
            ));
        }
        let unsupported = |tokens: &dyn ToTokens| {
            let names: Vec<&str> = IntRepr::ALL.iter().map(|r| r.name()).collect();
            syn::Error::new_spanned(
                tokens,
                format_args!(
                    "unsupported `repr = {}`; use one of {}",
                    tokens.to_token_stream(),
                    names.join(", ")
                ),
            )
        };
        let value = option.value()?;
        let (ident, expr) = option.ident().map_err(|_| unsupported(value))?;
        let repr = IntRepr::from_name(&ident.to_string()).ok_or_else(|| unsupported(expr))?;
        let spanned = Spanned {
            tokens: expr.to_token_stream(),
            value: repr,
        };
        self.repr.set(option.key(), option.describe(), spanned)
    }

    fn set_serde(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = option.string("name")?;
        let mode = match lit.value().as_str() {
            "number" => SerdeMode::Number,
            "name" => SerdeMode::Name,
            "none" => SerdeMode::None,
            other => {
                return Err(syn::Error::new(
                    lit.span(),
                    format_args!(
                        "unknown serde mode `{other}`; use \"number\" (the default), \"name\" or \"none\""
                    ),
                ));
            }
        };
        let value = (mode, option.key_span());
        self.serde.set(option.key(), option.describe(), value)
    }

    fn set_rename_all(&mut self, option: &MacroOption) -> syn::Result<()> {
        let rule = RenameRule::from_lit(&option.string("snake_case")?)?;
        self.rename_all.set(option.key(), option.describe(), rule)
    }

    fn set_crate(&mut self, option: &MacroOption) -> syn::Result<()> {
        let path = crate_path_from_option(option)?;
        self.krate.set(option.key(), option.describe(), path)
    }
}

/// The options on one variant.
#[derive(Default)]
pub(crate) struct VariantArgs {
    /// `rename = "…"`: the name instead of the identifier, with its span.
    pub(crate) rename: Once<(String, Span)>,
}

impl MacroOptions for VariantArgs {
    fn attribute(&self) -> &'static str {
        ATTRIBUTE
    }

    fn valid(&self) -> &'static [&'static str] {
        VARIANT_KEYS
    }

    fn set(&mut self, option: &MacroOption) -> syn::Result<()> {
        match option.name() {
            "rename" => self.set_rename(option),
            "repr" | "serde" | "rename_all" | "crate" => Err(syn::Error::new_spanned(
                option.key(),
                format_args!("{} goes on the enum, not on a variant", option.describe()),
            )),
            _ => Err(option.unknown()),
        }
    }
}

impl VariantArgs {
    /// Reads every `#[auto_number(...)]` on a variant.
    pub(crate) fn parse(attrs: &[Attribute], errors: &mut Errors) -> Self {
        let mut args = Self::default();
        read_attributes(&mut args, attrs, errors);
        args
    }

    fn set_rename(&mut self, option: &MacroOption) -> syn::Result<()> {
        let lit = option.string("name")?;
        let name = lit.value();
        if name.is_empty() {
            return Err(syn::Error::new(
                lit.span(),
                "`rename = \"\"`: a variant name cannot be empty",
            ));
        }
        self.rename
            .set(option.key(), option.describe(), (name, lit.span()))
    }
}
