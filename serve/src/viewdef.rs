//! `pg_get_viewdef(view [, pretty])`: a view's query, as PostgreSQL answers, by the view's name
//! or its oid in `pg_class`. The views are the ones the session holds (`connaudit query`'s).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Registers the function over the views of `schema` in `catalog`, as they are now; returns
/// their names and SQL.
pub async fn register(
    ctx: &SessionContext,
    catalog: &str,
    schema: &str,
    relations: &crate::relations::Relations,
) -> DfResult<Vec<(String, String)>> {
    let mut listed = Vec::new();
    let mut views = HashMap::new();
    if let Some(provider) = ctx.catalog(catalog).and_then(|c| c.schema(schema)) {
        for name in provider.table_names() {
            let Some(table) = provider.table(&name).await? else { continue };
            let Some(definition) = table.get_table_definition() else { continue };
            let query = match Parser::parse_sql(&PostgreSqlDialect {}, definition).ok().and_then(|mut s| s.pop()) {
                Some(Statement::CreateView(view)) => view.query.to_string(),
                _ => definition.to_string(),
            };
            views.insert(name.clone(), query.clone());
            views.insert(format!("{schema}.{name}"), query.clone());
            // psql asks by oid (`pg_get_viewdef('16387'::oid, true)`).
            if let Some(oid) = relations.oid(schema, &name) {
                views.insert(oid.to_string(), query.clone());
            }
            listed.push((name, query));
        }
    }
    listed.sort();
    ctx.register_udf(ScalarUDF::new_from_impl(ViewDef {
        views: Arc::new(views),
        signature: Signature::variadic_any(Volatility::Stable),
    }));
    Ok(listed)
}

#[derive(Debug)]
struct ViewDef {
    views: Arc<HashMap<String, String>>,
    signature: Signature,
}

impl PartialEq for ViewDef {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ViewDef {}

impl std::hash::Hash for ViewDef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "pg_get_viewdef".hash(state);
    }
}

impl ScalarUDFImpl for ViewDef {
    fn name(&self) -> &str {
        "pg_get_viewdef"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if !matches!(args.args.len(), 1 | 2) {
            return exec_err!("pg_get_viewdef takes a view and an optional pretty flag");
        }
        let names = args.args[0].to_array(args.number_rows)?;
        let Some(names) = (match names.data_type() {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                Some(datafusion::arrow::compute::cast(&names, &DataType::Utf8)?)
            }
            // An oid: the views are kept by its decimal text too.
            t if t.is_integer() => Some(datafusion::arrow::compute::cast(&names, &DataType::Utf8)?),
            _ => None,
        }) else {
            return exec_err!("pg_get_viewdef: give the view's name or oid");
        };
        let names = names.as_string::<i32>();
        let out: StringArray = (0..names.len())
            .map(|i| names.is_valid(i).then(|| names.value(i)).and_then(|n| self.views.get(n).cloned()))
            .collect();
        if args.number_rows == 1 && args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
