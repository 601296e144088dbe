//! `pg_catalog` tables answered truly where `datafusion-pg-catalog` has stubs: `pg_description`
//! holds each warehouse table's comment and its columns' (`warehouse/src/tables.rs`), beside
//! PostgreSQL's own rows; `pg_views` lists the views with their SQL (the library's is empty);
//! `pg_settings` also has `max_index_keys` (pgjdbc's foreign keys read it);
//! `pg_stat_user_tables` counts each table's rows (`table_stats.rs`). `col_description(oid,
//! n)` and `obj_description(oid [, 'pg_class'])` read the same comments. The library's
//! `pg_catalog` schema stays as it is underneath, with those tables laid over it.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use connaudit_warehouse::TABLES;
use datafusion::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::TypeSignature;
use datafusion::prelude::SessionContext;

use crate::relations::Relations;

/// One comment: the relation's oid, the column's number (0 for the relation), the text.
type Comment = (i32, i32, &'static str);

/// Lays `pg_description` and `pg_views` over `catalog`'s `pg_catalog`, and registers the
/// functions that read the comments. `views` are the views' names and SQL.
pub async fn register(
    ctx: &SessionContext,
    catalog: &str,
    relations: &Relations,
    views: &[(String, String)],
) -> DfResult<()> {
    let comments = contract_comments(ctx, catalog, relations).await?;
    let Some(catalog_provider) = ctx.catalog(catalog) else { return exec_err!("the catalog {catalog} is missing") };
    let Some(inner) = catalog_provider.schema("pg_catalog") else { return exec_err!("pg_catalog is missing") };
    let mut tables: HashMap<&'static str, Arc<dyn TableProvider>> = HashMap::new();
    // A comment's `classoid` is `pg_class`'s oid, as `'pg_class'::regclass` answers here.
    let classoid = relations.oid("pg_catalog", "pg_class").unwrap_or(1259);
    tables.insert("pg_description", Arc::new(description_table(ctx, inner.as_ref(), &comments, classoid).await?));
    tables.insert("pg_views", Arc::new(views_table(inner.as_ref(), views).await?));
    tables.insert("pg_settings", Arc::new(settings_table(ctx, inner.as_ref()).await?));
    tables.insert("pg_stat_user_tables", Arc::new(stats_table(ctx, catalog, inner.as_ref(), relations).await?));
    catalog_provider.register_schema("pg_catalog", Arc::new(Overlay { inner, tables }))?;
    register_functions(ctx, comments);
    Ok(())
}

/// The comments of every warehouse table, in `public` and in `warehouse`, numbered as
/// `pg_attribute` numbers the columns (from 1, in the table's order).
async fn contract_comments(ctx: &SessionContext, catalog: &str, relations: &Relations) -> DfResult<Vec<Comment>> {
    let mut comments = Vec::new();
    let Some(catalog_provider) = ctx.catalog(catalog) else { return Ok(comments) };
    for schema in ["public", connaudit_query::RAW_SCHEMA] {
        let Some(schema_provider) = catalog_provider.schema(schema) else { continue };
        for table in TABLES {
            let (Some(oid), Some(provider)) =
                (relations.oid(schema, table.name), schema_provider.table(table.name).await?)
            else {
                continue;
            };
            comments.push((oid, 0, table.about));
            let columns = table.columns();
            for (i, field) in provider.schema().fields().iter().enumerate() {
                if let Some(column) = columns.iter().find(|c| c.field.name() == field.name()) {
                    comments.push((oid, i as i32 + 1, column.comment));
                }
            }
        }
    }
    Ok(comments)
}

/// PostgreSQL's own descriptions (of its functions, types, ...), then the contract's.
async fn description_table(
    ctx: &SessionContext,
    inner: &dyn SchemaProvider,
    comments: &[Comment],
    classoid: i32,
) -> DfResult<MemTable> {
    let Some(base) = inner.table("pg_description").await? else { return exec_err!("pg_description is missing") };
    let schema = base.schema();
    let mut batches = ctx.read_table(base)?.collect().await?;
    let column = |f: fn(&Comment) -> i32| -> ArrayRef { Arc::new(comments.iter().map(f).collect::<Int32Array>()) };
    batches.push(RecordBatch::try_new(
        schema.clone(),
        vec![
            column(|c| c.0),
            Arc::new(Int32Array::from(vec![classoid; comments.len()])),
            column(|c| c.1),
            Arc::new(comments.iter().map(|c| Some(c.2)).collect::<StringArray>()),
        ],
    )?);
    MemTable::try_new(schema, vec![batches])
}

/// `pg_views`: each view of `public` with its SQL.
async fn views_table(inner: &dyn SchemaProvider, views: &[(String, String)]) -> DfResult<MemTable> {
    let Some(base) = inner.table("pg_views").await? else { return exec_err!("pg_views is missing") };
    let schema = base.schema();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some("public"); views.len()])),
            Arc::new(views.iter().map(|(name, _)| Some(name.as_str())).collect::<StringArray>()),
            Arc::new(StringArray::from(vec![None::<&str>; views.len()])),
            Arc::new(views.iter().map(|(_, sql)| Some(sql.as_str())).collect::<StringArray>()),
        ],
    )?;
    MemTable::try_new(schema, vec![vec![batch]])
}

/// The library's settings, and `max_index_keys`: PostgreSQL's compile-time 32.
async fn settings_table(ctx: &SessionContext, inner: &dyn SchemaProvider) -> DfResult<MemTable> {
    let Some(base) = inner.table("pg_settings").await? else { return exec_err!("pg_settings is missing") };
    let schema = base.schema();
    let mut batches = ctx.read_table(base)?.collect().await?;
    let known = [
        ("name", "max_index_keys"),
        ("setting", "32"),
        ("category", "Preset Options"),
        ("short_desc", "Shows the maximum number of index keys."),
        ("context", "internal"),
        ("vartype", "integer"),
        ("source", "default"),
        ("min_val", "32"),
        ("max_val", "32"),
        ("reset_val", "32"),
    ];
    let columns = schema
        .fields()
        .iter()
        .map(|f| match known.iter().find(|(name, _)| name == f.name()) {
            Some((_, value)) => ScalarValue::Utf8(Some(value.to_string())).to_array_of_size(1),
            None => ScalarValue::try_from(f.data_type())?.to_array_of_size(1),
        })
        .collect::<DfResult<Vec<_>>>()?;
    batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    MemTable::try_new(schema, vec![batches])
}

/// Every warehouse table in `public` and `warehouse`, counted from `warehouse.<table>`'s files
/// (serve's `public` tables are the same rows).
async fn stats_table(
    ctx: &SessionContext,
    catalog: &str,
    inner: &dyn SchemaProvider,
    relations: &Relations,
) -> DfResult<crate::table_stats::TableStats> {
    let Some(base) = inner.table("pg_stat_user_tables").await? else {
        return exec_err!("pg_stat_user_tables is missing");
    };
    let mut listed = Vec::new();
    for table in TABLES {
        let name = format!("{catalog}.{}.{}", connaudit_query::RAW_SCHEMA, table.name);
        let provider = ctx.table_provider(name.as_str()).await?;
        for schema in ["public", connaudit_query::RAW_SCHEMA] {
            if let Some(oid) = relations.oid(schema, table.name) {
                listed.push((oid, schema.to_string(), table.name, provider.clone()));
            }
        }
    }
    Ok(crate::table_stats::TableStats::new(base.schema(), listed))
}

fn register_functions(ctx: &SessionContext, comments: Vec<Comment>) {
    let by_key: Arc<HashMap<(i32, i32), &'static str>> =
        Arc::new(comments.into_iter().map(|(oid, n, text)| ((oid, n), text)).collect());
    let int = |v: &ScalarValue| -> Option<i32> {
        match v.cast_to(&DataType::Int64).ok()? {
            ScalarValue::Int64(Some(n)) => i32::try_from(n).ok(),
            _ => None,
        }
    };
    let columns = by_key.clone();
    let col_description = move |a: &[ScalarValue]| {
        let text = int(&a[0]).zip(int(&a[1])).and_then(|key| columns.get(&key));
        Ok(ScalarValue::Utf8(text.map(|t| t.to_string())))
    };
    // `obj_description(oid)` and `obj_description(oid, 'pg_class')`: a relation's comment; no
    // other kind of object has one here.
    let obj_description = move |a: &[ScalarValue]| {
        let of_relation = match a.get(1) {
            None => true,
            Some(ScalarValue::Utf8(c) | ScalarValue::Utf8View(c) | ScalarValue::LargeUtf8(c)) => {
                c.as_deref() == Some("pg_class")
            }
            Some(_) => false,
        };
        let text = int(&a[0]).filter(|_| of_relation).and_then(|oid| by_key.get(&(oid, 0)));
        Ok(ScalarValue::Utf8(text.map(|t| t.to_string())))
    };
    use TypeSignature::{Any, OneOf};
    crate::catalog_functions::register(ctx, "col_description", Any(2), DataType::Utf8, col_description);
    crate::catalog_functions::register(
        ctx,
        "obj_description",
        OneOf(vec![Any(1), Any(2)]),
        DataType::Utf8,
        obj_description,
    );
}

/// The library's `pg_catalog` with some of its tables replaced.
#[derive(Debug)]
struct Overlay {
    inner: Arc<dyn SchemaProvider>,
    tables: HashMap<&'static str, Arc<dyn TableProvider>>,
}

#[async_trait]
impl SchemaProvider for Overlay {
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.tables.get(name.to_ascii_lowercase().as_str()) {
            Some(table) => Ok(Some(table.clone())),
            None => self.inner.table(name).await,
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}
