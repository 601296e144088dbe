//! The extended protocol's parser: `datafusion-postgres`'s, given each statement as
//! `rewrite::rewrite_sql` rewrites it for DataFusion.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::FieldInfo;
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::{ClientInfo, Type};
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::Parser;
use futures::future::BoxFuture;

use crate::erased::Erased;
use crate::rewrite::rewrite_sql;

/// `datafusion-postgres`'s parser of the extended protocol, given the rewritten statement.
pub struct Rewriting(pub Arc<Parser>);

fn erased(parser: &Parser) -> &dyn Erased<Parser> {
    parser
}

#[async_trait]
impl QueryParser for Rewriting {
    type Statement = <Parser as QueryParser>::Statement;

    // `#[async_trait]`'s desugaring written out (see "Compile time" in lib.rs): the parser's own
    // future, or one holding the rewritten text and the parser behind `dyn Erased`.
    fn parse_sql<'life0, 'life1, 'life2, 'life3, 'async_trait, C>(
        &'life0 self,
        client: &'life1 C,
        sql: &'life2 str,
        types: &'life3 [Option<Type>],
    ) -> BoxFuture<'async_trait, PgWireResult<Option<Self::Statement>>>
    where
        C: ClientInfo + Unpin + Send + Sync + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        let Some(sql) = rewrite_sql(sql) else {
            return self.0.parse_sql(client, sql, types);
        };
        let parser = erased(&self.0);
        Box::pin(async move {
            let parsed = parser.get().parse_sql(client, &sql, types);
            parsed.await
        })
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.0.get_parameter_types(stmt)
    }

    fn get_result_schema(&self, stmt: &Self::Statement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.0.get_result_schema(stmt, format)
    }
}
