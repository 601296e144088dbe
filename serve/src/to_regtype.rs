//! `to_regtype(name)`: the oid of the type `name` spells (`integer`, `int4`, `text[]`,
//! `pg_catalog.timestamptz`), or null when there is none, as PostgreSQL answers; psycopg 3 asks
//! it on connect for `hstore` (null here). The names and oids are `pg_type`'s own rows.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;

/// Reads `pg_type` and registers the function over its names.
pub async fn register(ctx: &SessionContext) -> DfResult<()> {
    let batches = ctx.sql("SELECT typname, CAST(oid AS INT) AS oid FROM pg_catalog.pg_type").await?.collect().await?;
    let mut oids = HashMap::new();
    for batch in &batches {
        let names = datafusion::arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let (names, values) = (names.as_string::<i32>(), batch.column(1).as_primitive::<Int32Type>());
        for i in 0..batch.num_rows() {
            if names.is_valid(i) && values.is_valid(i) {
                oids.insert(names.value(i).to_string(), values.value(i));
            }
        }
    }
    let oids = Arc::new(oids);
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(move |args: &[ColumnarValue]| {
            let lookup = |name: Option<&str>| name.and_then(|n| oid(&oids, n));
            Ok(match &args[0] {
                ColumnarValue::Scalar(s) => {
                    let name = match s {
                        ScalarValue::Utf8(n) | ScalarValue::LargeUtf8(n) | ScalarValue::Utf8View(n) => n.as_deref(),
                        _ => None,
                    };
                    ColumnarValue::Scalar(ScalarValue::Int32(lookup(name)))
                }
                ColumnarValue::Array(a) => {
                    let names = datafusion::arrow::compute::cast(a, &DataType::Utf8)?;
                    let names = names.as_string::<i32>();
                    let out: datafusion::arrow::array::Int32Array =
                        (0..names.len()).map(|i| lookup(names.is_valid(i).then(|| names.value(i)))).collect();
                    ColumnarValue::Array(Arc::new(out))
                }
            })
        }),
    ));
    Ok(())
}

/// SQL's spellings of the built-in types, by their `pg_type` names.
const ALIASES: &[(&str, &str)] = &[
    ("integer", "int4"),
    ("int", "int4"),
    ("smallint", "int2"),
    ("bigint", "int8"),
    ("real", "float4"),
    ("double precision", "float8"),
    ("boolean", "bool"),
    ("character varying", "varchar"),
    ("character", "bpchar"),
    ("char", "bpchar"),
    ("decimal", "numeric"),
    ("timestamp without time zone", "timestamp"),
    ("timestamp with time zone", "timestamptz"),
    ("time without time zone", "time"),
    ("time with time zone", "timetz"),
];

fn oid(oids: &HashMap<String, i32>, name: &str) -> Option<i32> {
    let name = name.trim().to_ascii_lowercase();
    let name = name.strip_prefix("pg_catalog.").unwrap_or(&name).trim_matches('"');
    let (base, array) = match name.strip_suffix("[]") {
        Some(base) => (base.trim(), true),
        None => (name, false),
    };
    let base = ALIASES.iter().find(|(alias, _)| *alias == base).map_or(base, |(_, name)| *name);
    let typname = if array { format!("_{base}") } else { base.to_string() };
    oids.get(&typname).copied()
}
