//! serde for AutoNumber enums: as the number (the default, like the original's
//! `.value`) or as the variant name. Called by the impls `serde_impls!` emits.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use super::{AutoNumber, TryFromValueError};

/// Serializes `value` as its number.
pub fn serialize_value<E, S>(value: &E, serializer: S) -> Result<S::Ok, S::Error>
where
    E: AutoNumber,
    E::Repr: Serialize,
    S: Serializer,
{
    value.value().serialize(serializer)
}

/// Deserializes a number into the variant that has it; any other number is
/// an error naming the enum and the valid values.
pub fn deserialize_value<'de, E, D>(deserializer: D) -> Result<E, D::Error>
where
    E: AutoNumber,
    E::Repr: Deserialize<'de>,
    D: Deserializer<'de>,
{
    let value = E::Repr::deserialize(deserializer)?;
    E::from_value(value).ok_or_else(|| de::Error::custom(TryFromValueError::<E>::new(value)))
}

/// Serializes `value` as its variant name (a string).
pub fn serialize_name<E, S>(value: &E, serializer: S) -> Result<S::Ok, S::Error>
where
    E: AutoNumber,
    S: Serializer,
{
    serializer.serialize_str(value.name())
}

/// Deserializes a variant name; an unknown name is serde's "unknown variant"
/// error listing the valid names.
pub fn deserialize_name<'de, E, D>(deserializer: D) -> Result<E, D::Error>
where
    E: AutoNumber,
    D: Deserializer<'de>,
{
    deserializer.deserialize_str(NameVisitor::<E>(PhantomData))
}

struct NameVisitor<E>(PhantomData<fn() -> E>);

impl<E: AutoNumber> Visitor<'_> for NameVisitor<E> {
    type Value = E;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the name of a variant of `{}`", E::ENUM_NAME)
    }

    fn visit_str<Err: de::Error>(self, name: &str) -> Result<E, Err> {
        E::from_name(name).ok_or_else(|| Err::unknown_variant(name, E::VARIANT_NAMES))
    }
}
