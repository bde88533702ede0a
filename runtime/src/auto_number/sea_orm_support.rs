//! sea-orm column support for AutoNumber enums: stored as an integer column of
//! the enum's repr type. Called by the impls `sea_orm_impls!` emits.

use std::sync::Arc;

use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, ValueType, ValueTypeErr};
use sea_orm::{ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value};

use super::{AutoNumber, TryFromValueError};

/// The database value of `value`: its number.
pub fn into_sea_orm_value<E>(value: &E) -> Value
where
    E: AutoNumber,
    E::Repr: Into<Value>,
{
    value.value().into()
}

fn unknown_value<E: AutoNumber>(value: E::Repr) -> DbErr {
    DbErr::TryIntoErr {
        from: core::any::type_name::<E::Repr>(),
        into: E::ENUM_NAME,
        source: Arc::new(TryFromValueError::<E>::new(value)),
    }
}

/// Reads the number in column `index` and maps it to its variant; a number
/// that is no variant's is a `DbErr::TryIntoErr` whose source is a
/// [`TryFromValueError`]. `NULL` stays `TryGetError::Null`, so `Option<E>`
/// columns work.
pub fn try_get_by<E, I>(res: &QueryResult, index: I) -> Result<E, TryGetError>
where
    E: AutoNumber,
    E::Repr: TryGetable,
    I: ColIdx,
{
    let value = <E::Repr as TryGetable>::try_get_by(res, index)?;
    E::from_value(value).ok_or_else(|| TryGetError::DbErr(unknown_value::<E>(value)))
}

/// `ValueType::try_from` for an AutoNumber enum.
pub fn value_type_try_from<E>(value: Value) -> Result<E, ValueTypeErr>
where
    E: AutoNumber,
    E::Repr: ValueType,
{
    let value = <E::Repr as ValueType>::try_from(value)?;
    E::from_value(value).ok_or(ValueTypeErr)
}

/// The array type of the repr.
pub fn array_type<E>() -> ArrayType
where
    E: AutoNumber,
    E::Repr: ValueType,
{
    <E::Repr as ValueType>::array_type()
}

/// The column type of the repr (e.g. `Integer` for `i32`).
pub fn column_type<E>() -> ColumnType
where
    E: AutoNumber,
    E::Repr: ValueType,
{
    <E::Repr as ValueType>::column_type()
}

/// The `NULL` of the repr's column type.
pub fn null<E>() -> Value
where
    E: AutoNumber,
    E::Repr: Nullable,
{
    <E::Repr as Nullable>::null()
}

/// `TryFromU64` (used when the enum is a primary key).
pub fn try_from_u64<E>(n: u64) -> Result<E, DbErr>
where
    E: AutoNumber,
    E::Repr: TryFrom<u64>,
    <E::Repr as TryFrom<u64>>::Error: std::error::Error + Send + Sync + 'static,
{
    let value = E::Repr::try_from(n).map_err(|e| DbErr::TryIntoErr {
        from: "u64",
        into: E::ENUM_NAME,
        source: Arc::new(e),
    })?;
    E::from_value(value).ok_or_else(|| unknown_value::<E>(value))
}
