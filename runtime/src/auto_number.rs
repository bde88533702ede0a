//! Auto-numbered enums: the [`AutoNumber`] trait that `#[derive(AutoNumber)]`
//! implements, and the errors of its conversions.
//!
//! An AutoNumber enum is a fieldless enum whose variants are numbered one
//! after another in declaration order, from the number written on the first
//! variant (`= 1`, as the `AutoNumber` enum recipe of the Python original
//! counted). The numbers are the enum's discriminants, so `as` casts agree
//! with [`AutoNumber::value`]. The derive lives in `conflictkit` (`conflictkit::AutoNumber`
//! names both the derive and this trait, as `serde::Serialize` does).
//!
//! ```
//! use conflictkit::AutoNumber;
//!
//! #[derive(AutoNumber, Debug, Clone, Copy, PartialEq, Eq)]
//! enum Subsystem { Database = 1, StatusServer, Backend }
//!
//! assert_eq!(Subsystem::Backend.value(), 3);
//! assert_eq!(Subsystem::from_value(2), Some(Subsystem::StatusServer));
//! assert_eq!("Database".parse::<Subsystem>(), Ok(Subsystem::Database));
//! ```

use core::fmt;
use core::hash::Hash;
use core::iter::FusedIterator;
use core::marker::PhantomData;

mod sealed {
    pub trait Sealed {}
}

/// An integer type that numbers the variants of an [`AutoNumber`] enum:
/// `i8`, `i16`, `i32` (the default), `i64`, `u8`, `u16`, `u32` or `u64`
/// (chosen with `#[auto_number(repr = i16)]`).
///
/// This trait is sealed: the derive checks at compile time that every value
/// fits in the chosen type, which it can only do for these types.
pub trait AutoNumberRepr:
    sealed::Sealed + Copy + Eq + Ord + Hash + fmt::Debug + fmt::Display + Send + Sync + 'static
{
}

macro_rules! reprs {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl AutoNumberRepr for $t {}
    )*};
}
reprs!(i8, i16, i32, i64, u8, u16, u32, u64);

/// A fieldless enum whose variants are numbered in declaration order.
///
/// Implement it with `#[derive(AutoNumber)]` (from the `conflictkit` crate);
/// the derive also implements `TryFrom<Repr>`, `From<Enum> for Repr`,
/// `Display` (the variant name) and `FromStr` (from the variant name), and,
/// when the `serde` / `sea-orm-value` features are on, serde and sea-orm
/// column support. Generic code can rely on this trait alone:
///
/// ```
/// use conflictkit::AutoNumber;
///
/// /// "1=Database, 2=StatusServer, 3=Backend"
/// fn legend<E: AutoNumber>() -> String {
///     E::all()
///         .map(|v| format!("{}={}", v.value(), v.name()))
///         .collect::<Vec<_>>()
///         .join(", ")
/// }
///
/// #[derive(AutoNumber, Debug, PartialEq, Eq)]
/// enum Subsystem { Database = 1, StatusServer, Backend }
///
/// #[derive(AutoNumber, Debug, PartialEq, Eq)]
/// #[auto_number(repr = u8)]
/// enum Level { Low = 0, High }
///
/// assert_eq!(legend::<Subsystem>(), "1=Database, 2=StatusServer, 3=Backend");
/// assert_eq!(legend::<Level>(), "0=Low, 1=High");
/// assert_eq!(Level::from_name("High"), Some(Level::High));
/// assert_eq!(Subsystem::VARIANT_NAMES, ["Database", "StatusServer", "Backend"]);
/// ```
///
/// # Contract
///
/// Hand-written implementations must keep the values distinct, list
/// [`VARIANTS`](AutoNumber::VARIANTS) and
/// [`VARIANT_NAMES`](AutoNumber::VARIANT_NAMES) in the same order, and make
/// `from_value(v.value())` and `from_name(v.name())` return `v`. The derive
/// guarantees all of this by construction.
pub trait AutoNumber: Sized + 'static {
    /// The integer type of the values (`i32` unless `#[auto_number(repr = …)]`).
    type Repr: AutoNumberRepr;

    /// The name of the enum as written, e.g. `"Subsystem"`.
    const ENUM_NAME: &'static str;

    /// Every variant, in declaration order (so in increasing value order).
    const VARIANTS: &'static [Self];

    /// The name of every variant, in declaration order (see [`name`](AutoNumber::name)).
    const VARIANT_NAMES: &'static [&'static str];

    /// The number of this variant.
    fn value(&self) -> Self::Repr;

    /// The variant numbered `value`, or `None` when no variant has it.
    fn from_value(value: Self::Repr) -> Option<Self>;

    /// The name of this variant: as written in the source (`"Backend"`, without
    /// `r#`), or as set by `#[auto_number(rename = "…")]` or `rename_all`.
    fn name(&self) -> &'static str;

    /// The variant whose [`name`](AutoNumber::name) is `name` (compared
    /// exactly, case-sensitive), or `None`.
    fn from_name(name: &str) -> Option<Self>;

    /// Every variant by value, in declaration order. Unlike
    /// [`VARIANTS`](AutoNumber::VARIANTS) it yields owned variants and does
    /// not need the enum to be `Copy` or `Clone`.
    fn all() -> Variants<Self> {
        Variants {
            inner: Self::VARIANTS.iter(),
        }
    }
}

/// Iterator over the variants of an [`AutoNumber`] enum in declaration order,
/// returned by [`AutoNumber::all`].
pub struct Variants<E: 'static> {
    inner: core::slice::Iter<'static, E>,
}

impl<E: AutoNumber> Iterator for Variants<E> {
    type Item = E;

    fn next(&mut self) -> Option<E> {
        self.inner.next().and_then(|v| E::from_value(v.value()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<E: AutoNumber> DoubleEndedIterator for Variants<E> {
    fn next_back(&mut self) -> Option<E> {
        self.inner
            .next_back()
            .and_then(|v| E::from_value(v.value()))
    }
}

impl<E: AutoNumber> ExactSizeIterator for Variants<E> {}
impl<E: AutoNumber> FusedIterator for Variants<E> {}

impl<E> Clone for Variants<E> {
    fn clone(&self) -> Self {
        Variants {
            inner: self.inner.clone(),
        }
    }
}

impl<E: AutoNumber> fmt::Debug for Variants<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.inner.clone().map(AutoNumber::name).collect();
        f.debug_tuple("Variants").field(&names).finish()
    }
}

/// Formats the values an enum accepts, for error messages.
struct ValidValues<E>(PhantomData<fn() -> E>);

impl<E: AutoNumber> fmt::Display for ValidValues<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (E::VARIANTS.first(), E::VARIANTS.last()) {
            (Some(first), Some(last)) => {
                write!(f, "use one of {}..={}", first.value(), last.value())
            }
            _ => write!(f, "`{}` has no variants", E::ENUM_NAME),
        }
    }
}

/// Formats the names an enum accepts, for error messages.
struct ValidNames<E>(PhantomData<fn() -> E>);

impl<E: AutoNumber> fmt::Display for ValidNames<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if E::VARIANT_NAMES.is_empty() {
            return write!(f, "`{}` has no variants", E::ENUM_NAME);
        }
        f.write_str("expected one of: ")?;
        for (i, name) in E::VARIANT_NAMES.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// No variant of the enum `E` has this value: the error of
/// `E::try_from(value)` (and of deserializing or loading a number from the
/// database that is not one of `E`'s values).
///
/// ```
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber, Debug)]
/// enum Subsystem { Database = 1, StatusServer, Backend }
///
/// let err = Subsystem::try_from(7).unwrap_err();
/// assert_eq!(err.value(), 7);
/// assert_eq!(
///     err.to_string(),
///     "no variant of `Subsystem` has the value 7; use one of 1..=3"
/// );
/// ```
#[derive(thiserror::Error)]
#[error(
    "no variant of `{enum_name}` has the value {value}; {valid}",
    enum_name = E::ENUM_NAME,
    valid = ValidValues::<E>(PhantomData)
)]
pub struct TryFromValueError<E: AutoNumber> {
    value: E::Repr,
    _enum: PhantomData<fn() -> E>,
}

impl<E: AutoNumber> TryFromValueError<E> {
    /// The error for `value`, which no variant of `E` has.
    pub fn new(value: E::Repr) -> Self {
        Self {
            value,
            _enum: PhantomData,
        }
    }

    /// The value that matched no variant.
    pub fn value(&self) -> E::Repr {
        self.value
    }
}

impl<E: AutoNumber> fmt::Debug for TryFromValueError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryFromValueError")
            .field("enum", &E::ENUM_NAME)
            .field("value", &self.value)
            .finish()
    }
}

impl<E: AutoNumber> Clone for TryFromValueError<E> {
    fn clone(&self) -> Self {
        Self::new(self.value)
    }
}

impl<E: AutoNumber> PartialEq for TryFromValueError<E> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<E: AutoNumber> Eq for TryFromValueError<E> {}

/// No variant of the enum `E` has this name: the error of `str::parse::<E>()`
/// (and of deserializing an unknown name with `#[auto_number(serde = "name")]`).
///
/// ```
/// use conflictkit::AutoNumber;
///
/// #[derive(AutoNumber, Debug)]
/// enum Subsystem { Database = 1, StatusServer, Backend }
///
/// let err = "backend".parse::<Subsystem>().unwrap_err();
/// assert_eq!(err.name(), "backend");
/// assert_eq!(
///     err.to_string(),
///     "`backend` is not a variant of `Subsystem`; expected one of: Database, StatusServer, Backend"
/// );
/// ```
#[derive(thiserror::Error)]
#[error(
    "`{name}` is not a variant of `{enum_name}`; {valid}",
    enum_name = E::ENUM_NAME,
    valid = ValidNames::<E>(PhantomData)
)]
pub struct ParseNameError<E: AutoNumber> {
    name: String,
    _enum: PhantomData<fn() -> E>,
}

impl<E: AutoNumber> ParseNameError<E> {
    /// The error for `name`, which no variant of `E` has.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            _enum: PhantomData,
        }
    }

    /// The name that matched no variant.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<E: AutoNumber> fmt::Debug for ParseNameError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseNameError")
            .field("enum", &E::ENUM_NAME)
            .field("name", &self.name)
            .finish()
    }
}

impl<E: AutoNumber> Clone for ParseNameError<E> {
    fn clone(&self) -> Self {
        Self::new(self.name.clone())
    }
}

impl<E: AutoNumber> PartialEq for ParseNameError<E> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<E: AutoNumber> Eq for ParseNameError<E> {}

#[cfg(feature = "sea-orm-value")]
mod sea_orm_support;
#[cfg(feature = "serde")]
mod serde_support;

/// Support for the code `#[derive(AutoNumber)]` generates. Not public API.
///
/// The helper macros are chosen here, by this crate's features, because the
/// derive cannot see them (a `cfg(feature)` in generated code would test the
/// user's crate). With a feature off its macro expands to nothing.
#[doc(hidden)]
pub mod __private {
    pub use super::{AutoNumber, ParseNameError, TryFromValueError};

    pub use crate::__conflictkit_auto_number_require_serde as require_serde;
    pub use crate::__conflictkit_auto_number_sea_orm as sea_orm_impls;
    pub use crate::__conflictkit_auto_number_serde as serde_impls;

    #[cfg(feature = "sea-orm-value")]
    pub use super::sea_orm_support::*;
    #[cfg(feature = "sea-orm-value")]
    pub use sea_orm;

    #[cfg(feature = "serde")]
    pub use super::serde_support::*;
    #[cfg(feature = "serde")]
    pub use serde;
}

/// `serde_impls! { Enum, number | name | none }`: serde support for an
/// AutoNumber enum, as a number (default) or as the variant name.
#[cfg(feature = "serde")]
#[doc(hidden)]
#[macro_export]
macro_rules! __conflictkit_auto_number_serde {
    ($ty:ty, number) => {
        $crate::__conflictkit_auto_number_serde!(@impl $ty, serialize_value, deserialize_value);
    };
    ($ty:ty, name) => {
        $crate::__conflictkit_auto_number_serde!(@impl $ty, serialize_name, deserialize_name);
    };
    ($ty:ty, none) => {};
    (@impl $ty:ty, $ser:ident, $de:ident) => {
        #[automatically_derived]
        impl $crate::auto_number::__private::serde::Serialize for $ty {
            fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
            where
                S: $crate::auto_number::__private::serde::Serializer,
            {
                $crate::auto_number::__private::$ser(self, serializer)
            }
        }

        #[automatically_derived]
        impl<'de> $crate::auto_number::__private::serde::Deserialize<'de> for $ty {
            fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
            where
                D: $crate::auto_number::__private::serde::Deserializer<'de>,
            {
                $crate::auto_number::__private::$de(deserializer)
            }
        }
    };
}

/// With the `serde` feature off: no serde support.
#[cfg(not(feature = "serde"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __conflictkit_auto_number_serde {
    ($ty:ty, $mode:ident) => {};
}

/// `require_serde! {}`: emitted when the user asked for a serde mode
/// explicitly; an error when the `serde` feature is off.
#[cfg(feature = "serde")]
#[doc(hidden)]
#[macro_export]
macro_rules! __conflictkit_auto_number_require_serde {
    () => {};
}

/// With the `serde` feature off: the explicit `serde = "…"` option is an error.
#[cfg(not(feature = "serde"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __conflictkit_auto_number_require_serde {
    () => {
        ::core::compile_error!(
            "`#[auto_number(serde = \"...\")]` needs the `serde` feature of conflictkit; enable it in Cargo.toml or remove the option"
        );
    };
}

/// `sea_orm_impls! { Enum }`: lets an AutoNumber enum be a sea-orm entity
/// field stored as an integer column of its repr type.
#[cfg(feature = "sea-orm-value")]
#[doc(hidden)]
#[macro_export]
macro_rules! __conflictkit_auto_number_sea_orm {
    ($ty:ty) => {
        #[automatically_derived]
        impl ::core::convert::From<$ty> for $crate::auto_number::__private::sea_orm::Value {
            fn from(value: $ty) -> Self {
                $crate::auto_number::__private::into_sea_orm_value(&value)
            }
        }

        #[automatically_derived]
        impl $crate::auto_number::__private::sea_orm::TryGetable for $ty {
            fn try_get_by<I: $crate::auto_number::__private::sea_orm::ColIdx>(
                res: &$crate::auto_number::__private::sea_orm::QueryResult,
                index: I,
            ) -> ::core::result::Result<Self, $crate::auto_number::__private::sea_orm::TryGetError>
            {
                $crate::auto_number::__private::try_get_by(res, index)
            }
        }

        #[automatically_derived]
        impl $crate::auto_number::__private::sea_orm::sea_query::ValueType for $ty {
            fn try_from(
                value: $crate::auto_number::__private::sea_orm::Value,
            ) -> ::core::result::Result<
                Self,
                $crate::auto_number::__private::sea_orm::sea_query::ValueTypeErr,
            > {
                $crate::auto_number::__private::value_type_try_from(value)
            }

            fn type_name() -> ::std::string::String {
                ::std::string::String::from(
                    <Self as $crate::auto_number::__private::AutoNumber>::ENUM_NAME,
                )
            }

            fn array_type() -> $crate::auto_number::__private::sea_orm::sea_query::ArrayType {
                $crate::auto_number::__private::array_type::<Self>()
            }

            fn column_type() -> $crate::auto_number::__private::sea_orm::sea_query::ColumnType {
                $crate::auto_number::__private::column_type::<Self>()
            }
        }

        #[automatically_derived]
        impl $crate::auto_number::__private::sea_orm::sea_query::Nullable for $ty {
            fn null() -> $crate::auto_number::__private::sea_orm::Value {
                $crate::auto_number::__private::null::<Self>()
            }
        }

        #[automatically_derived]
        impl $crate::auto_number::__private::sea_orm::IntoActiveValue<$ty> for $ty {
            fn into_active_value(
                self,
            ) -> $crate::auto_number::__private::sea_orm::ActiveValue<$ty> {
                $crate::auto_number::__private::sea_orm::ActiveValue::Set(self)
            }
        }

        #[automatically_derived]
        impl $crate::auto_number::__private::sea_orm::TryFromU64 for $ty {
            fn try_from_u64(
                n: u64,
            ) -> ::core::result::Result<Self, $crate::auto_number::__private::sea_orm::DbErr> {
                $crate::auto_number::__private::try_from_u64(n)
            }
        }
    };
}

/// With the `sea-orm-value` feature off: no sea-orm support.
#[cfg(not(feature = "sea-orm-value"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __conflictkit_auto_number_sea_orm {
    ($ty:ty) => {};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    enum Hand {
        Left,
        Right,
    }

    impl AutoNumber for Hand {
        type Repr = u8;
        const ENUM_NAME: &'static str = "Hand";
        const VARIANTS: &'static [Self] = &[Hand::Left, Hand::Right];
        const VARIANT_NAMES: &'static [&'static str] = &["Left", "Right"];
        fn value(&self) -> u8 {
            match self {
                Hand::Left => 5,
                Hand::Right => 6,
            }
        }
        fn from_value(value: u8) -> Option<Self> {
            match value {
                5 => Some(Hand::Left),
                6 => Some(Hand::Right),
                _ => None,
            }
        }
        fn name(&self) -> &'static str {
            Self::VARIANT_NAMES[usize::from(self.value() - 5)]
        }
        fn from_name(name: &str) -> Option<Self> {
            match name {
                "Left" => Some(Hand::Left),
                "Right" => Some(Hand::Right),
                _ => None,
            }
        }
    }

    enum Nothing {}

    impl AutoNumber for Nothing {
        type Repr = i64;
        const ENUM_NAME: &'static str = "Nothing";
        const VARIANTS: &'static [Self] = &[];
        const VARIANT_NAMES: &'static [&'static str] = &[];
        fn value(&self) -> i64 {
            match *self {}
        }
        fn from_value(_: i64) -> Option<Self> {
            None
        }
        fn name(&self) -> &'static str {
            match *self {}
        }
        fn from_name(_: &str) -> Option<Self> {
            None
        }
    }

    #[test]
    fn all_is_double_ended_and_exact() {
        let mut all = Hand::all();
        assert_eq!(all.len(), 2);
        assert_eq!(all.next_back(), Some(Hand::Right));
        assert_eq!(all.len(), 1);
        assert_eq!(all.next(), Some(Hand::Left));
        assert_eq!(all.next(), None);
        assert_eq!(
            format!("{:?}", Hand::all()),
            r#"Variants(["Left", "Right"])"#
        );
        assert_eq!(Nothing::all().count(), 0);
    }

    #[test]
    fn error_messages_list_what_is_valid() {
        assert_eq!(
            TryFromValueError::<Hand>::new(9).to_string(),
            "no variant of `Hand` has the value 9; use one of 5..=6"
        );
        assert_eq!(
            TryFromValueError::<Nothing>::new(-1).to_string(),
            "no variant of `Nothing` has the value -1; `Nothing` has no variants"
        );
        assert_eq!(
            ParseNameError::<Hand>::new("left").to_string(),
            "`left` is not a variant of `Hand`; expected one of: Left, Right"
        );
        assert_eq!(
            ParseNameError::<Nothing>::new("x").to_string(),
            "`x` is not a variant of `Nothing`; `Nothing` has no variants"
        );
        assert_eq!(
            format!("{:?}", TryFromValueError::<Hand>::new(9)),
            r#"TryFromValueError { enum: "Hand", value: 9 }"#
        );
    }
}
