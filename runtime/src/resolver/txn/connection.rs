//! [`Txn`] as a SeaORM connection: every statement is checked (a `Txn`
//! left outside its transaction refuses it), passes the SQLite writer
//! queue, and its error is recorded.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, Statement};

use super::Txn;

#[async_trait::async_trait]
impl ConnectionTrait for Txn {
    fn get_database_backend(&self) -> DbBackend {
        self.state.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.usable()?;
        self.observe(self.state.writer.before_statement(&stmt.sql))?;
        self.observe_statement(self.state.inner.execute_raw(stmt).await)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.usable()?;
        self.observe(self.state.writer.before_statement(sql))?;
        self.observe_statement(self.state.inner.execute_unprepared(sql).await)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.usable()?;
        self.observe(self.state.writer.before_statement(&stmt.sql))?;
        self.observe_statement(self.state.inner.query_one_raw(stmt).await)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.usable()?;
        self.observe(self.state.writer.before_statement(&stmt.sql))?;
        self.observe_statement(self.state.inner.query_all_raw(stmt).await)
    }

    fn support_returning(&self) -> bool {
        self.state.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.state.inner.is_mock_connection()
    }
}
