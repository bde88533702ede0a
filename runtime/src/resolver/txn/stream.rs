//! `Txn` as a SeaORM [`StreamTrait`]: `Entity::find().stream(txn)` streams
//! rows inside the managed transaction. The statement goes through the
//! `Txn` as any other (refused after an error that ended the transaction on
//! the connection; on SQLite a write takes the writer queue's slot first),
//! and an error the stream yields is recorded, so one the body drops still
//! counts (see [`Txn`]).

use std::future::Future;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use sea_orm::{DbBackend, DbErr, QueryResult, Statement, StreamTrait};

use super::Txn;
use super::session::TxnSavepoint;

/// The rows of a statement streamed through a [`Txn`].
type Rows<'a> = Pin<Box<dyn Stream<Item = Result<QueryResult, DbErr>> + Send + 'a>>;

impl StreamTrait for Txn {
    type Stream<'a> = Rows<'a>;

    fn get_database_backend(&self) -> DbBackend {
        sea_orm::ConnectionTrait::get_database_backend(self)
    }

    fn stream_raw<'a>(
        &'a self,
        stmt: Statement,
    ) -> Pin<Box<dyn Future<Output = Result<Rows<'a>, DbErr>> + 'a + Send>> {
        Box::pin(async move {
            self.usable()?;
            self.observe(self.state.writer.before_statement(&stmt.sql))?;
            let rows = self.observe(self.state.inner.stream_raw(stmt).await)?;
            let rows: Rows<'a> = Box::pin(rows.map(move |row| self.observe_statement(row)));
            Ok(rows)
        })
    }
}

impl StreamTrait for TxnSavepoint {
    type Stream<'a> = Rows<'a>;

    fn get_database_backend(&self) -> DbBackend {
        sea_orm::ConnectionTrait::get_database_backend(self.txn())
    }

    fn stream_raw<'a>(
        &'a self,
        stmt: Statement,
    ) -> Pin<Box<dyn Future<Output = Result<Rows<'a>, DbErr>> + 'a + Send>> {
        self.txn().stream_raw(stmt)
    }
}
