//! Errors of the resolver carried inside a [`DbErr`], so that they reach the
//! caller through any error type a managed body may use: those only promise
//! `From<DbErr>` and `From<CannotResolveDatabaseConflict>`.
//!
//! The error rides as the database error of a `sqlx::Error::Database`, the
//! one place a `DbErr` holds an error of any type; [`find`] gets it back out
//! of any error chain.

use std::error::Error as StdError;

use sea_orm::DbErr;

use super::driver_error::{Carrier, carrier, wrap};

/// `err` as a `DbErr`, to be found again with [`find`].
pub(crate) fn into_db_err<T: StdError + Send + Sync + 'static>(err: T) -> DbErr {
    wrap(Carrier::new(Box::new(err), None))
}

/// `err` as a `DbErr` that classifies as SQLite result code `code`.
#[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
pub(crate) fn into_sqlite_db_err<T: StdError + Send + Sync + 'static>(err: T, code: i32) -> DbErr {
    wrap(Carrier::new(Box::new(err), Some(code)))
}

/// The `T` in `err` or anywhere along its `source()` chain, carried in a
/// `DbErr` or not.
pub(crate) fn find<'a, T: StdError + Send + Sync + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e
            .downcast_ref::<T>()
            .or_else(|| carrier(e).and_then(|c| c.error().downcast_ref::<T>()))
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}
