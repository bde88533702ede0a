//! Errors of the resolver carried inside a [`DbErr`], so that they reach the
//! caller through any error type a managed body may use: those only promise
//! `From<DbErr>` and `From<CannotResolveDatabaseConflict>`.
//!
//! The error rides as the database error of a `sqlx::Error::Database`, the
//! one place a `DbErr` holds an error of any type; [`find`] gets it back out
//! of any error chain.

use std::error::Error as StdError;
use std::fmt;

use sea_orm::DbErr;

/// A resolver error wrapped so that it can travel as a driver error.
pub(crate) struct Carrier<T>(pub(crate) T);

impl<T: fmt::Debug> fmt::Debug for Carrier<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<T: fmt::Display> fmt::Display for Carrier<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl<T: StdError + 'static> StdError for Carrier<T> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
mod with_sqlx {
    use super::*;
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx;

    impl<T: StdError + Send + Sync + 'static> sqlx::error::DatabaseError for Carrier<T> {
        fn message(&self) -> &str {
            "an error of the conflictkit resolver"
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    /// `err` as a `DbErr`.
    pub(crate) fn into_db_err<T: StdError + Send + Sync + 'static>(err: T) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::Database(Box::new(Carrier(err))),
        )))
    }

    /// The `T` carried by one link of an error chain, if any.
    pub(crate) fn carried<'a, T: StdError + Send + Sync + 'static>(
        e: &'a (dyn StdError + 'static),
    ) -> Option<&'a T> {
        let sqlx::Error::Database(dbe) = crate::resolver::classify::sqlx_error(e)? else {
            return None;
        };
        dbe.try_downcast_ref::<Carrier<T>>().map(|c| &c.0)
    }
}

#[cfg(not(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
)))]
mod with_sqlx {
    use super::*;

    /// Without a driver no resolver error is ever made; the text survives.
    pub(crate) fn into_db_err<T: StdError + Send + Sync + 'static>(err: T) -> DbErr {
        DbErr::Custom(err.to_string())
    }

    pub(crate) fn carried<'a, T: StdError + Send + Sync + 'static>(
        _: &'a (dyn StdError + 'static),
    ) -> Option<&'a T> {
        None
    }
}

pub(crate) use with_sqlx::into_db_err;

/// The `T` in `err` or anywhere along its `source()` chain, carried in a
/// `DbErr` or not.
pub(crate) fn find<'a, T: StdError + Send + Sync + 'static>(
    err: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>().or_else(|| with_sqlx::carried::<T>(e)) {
            return Some(t);
        }
        cur = e.source();
    }
    None
}
