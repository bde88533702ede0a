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

/// A resolver error wrapped so that it can travel as a driver error: the
/// one hand-written `sqlx::error::DatabaseError` of the crate (sqlx offers
/// no public constructor for a database error of its own drivers).
/// `sqlite_code` makes it read as a SQLite result code, so that a
/// synthetic conflict classifies as the driver's would.
pub(crate) struct Carrier {
    err: Box<dyn StdError + Send + Sync>,
    sqlite_code: Option<i32>,
}

impl Carrier {
    /// The SQLite result code this carrier stands for, if any.
    #[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
    pub(crate) fn sqlite_code(&self) -> Option<i32> {
        self.sqlite_code
    }
}

impl fmt::Debug for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.err, f)
    }
}

impl fmt::Display for Carrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.err, f)
    }
}

impl StdError for Carrier {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.err)
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

    impl sqlx::error::DatabaseError for Carrier {
        fn message(&self) -> &str {
            "an error of the conflictkit resolver"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            self.sqlite_code
                .map(|c| std::borrow::Cow::Owned(c.to_string()))
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

    /// `carrier` as a `DbErr`.
    pub(super) fn wrap(carrier: Carrier) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(std::sync::Arc::new(
            sqlx::Error::Database(Box::new(carrier)),
        )))
    }

    /// The carrier one link of an error chain holds, if any.
    pub(crate) fn carrier<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a Carrier> {
        let sqlx::Error::Database(dbe) = sqlx_error(e)? else {
            return None;
        };
        dbe.try_downcast_ref::<Carrier>()
    }

    /// The sqlx error one error of a chain is or wraps directly: a `DbErr`
    /// (`Exec`, `Query`, `Conn`), a `RuntimeErr` or a `sqlx::Error` itself.
    pub(crate) fn sqlx_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a sqlx::Error> {
        let rt = match e.downcast_ref::<DbErr>() {
            Some(DbErr::Exec(rt) | DbErr::Query(rt) | DbErr::Conn(rt)) => Some(rt),
            Some(_) => None,
            None => e.downcast_ref::<RuntimeErr>(),
        };
        match rt {
            Some(RuntimeErr::SqlxError(x)) => Some(&**x),
            Some(_) => None,
            None => e.downcast_ref::<sqlx::Error>(),
        }
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
    pub(super) fn wrap(carrier: Carrier) -> DbErr {
        DbErr::Custom(carrier.to_string())
    }

    pub(crate) fn carrier<'a>(_: &'a (dyn StdError + 'static)) -> Option<&'a Carrier> {
        None
    }
}

pub(crate) use with_sqlx::carrier;
#[cfg(any(
    feature = "sqlx-postgres",
    feature = "sqlx-mysql",
    feature = "sqlx-sqlite"
))]
pub(crate) use with_sqlx::sqlx_error;

/// `err` as a `DbErr`, to be found again with [`find`].
pub(crate) fn into_db_err<T: StdError + Send + Sync + 'static>(err: T) -> DbErr {
    with_sqlx::wrap(Carrier {
        err: Box::new(err),
        sqlite_code: None,
    })
}

/// `err` as a `DbErr` that classifies as SQLite result code `code`.
#[cfg_attr(not(feature = "sqlx-sqlite"), allow(dead_code))]
pub(crate) fn into_sqlite_db_err<T: StdError + Send + Sync + 'static>(err: T, code: i32) -> DbErr {
    with_sqlx::wrap(Carrier {
        err: Box::new(err),
        sqlite_code: Some(code),
    })
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
            .or_else(|| carrier(e).and_then(|c| c.err.downcast_ref::<T>()))
        {
            return Some(t);
        }
        cur = e.source();
    }
    None
}
