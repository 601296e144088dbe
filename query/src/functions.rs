//! `attr(attributes, name)`: one attribute of an event or session, from the JSON object of
//! strings in their `attributes` column (null when absent). Registered with the views, so
//! `connaudit query`, the audits and `connaudit serve` all have it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{create_udf, ColumnarValue, Volatility};
use datafusion::prelude::SessionContext;
use serde_json::Value;

pub fn register(ctx: &SessionContext) {
    let udf =
        create_udf("attr", vec![DataType::Utf8, DataType::Utf8], DataType::Utf8, Volatility::Immutable, Arc::new(attr));
    ctx.register_udf(udf);
}

fn attr(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let (attrs, names) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
    let mut out = StringBuilder::with_capacity(attrs.len(), attrs.len() * 8);
    for i in 0..attrs.len() {
        out.append_option(lookup(attrs, names, i));
    }
    let out: ArrayRef = Arc::new(out.finish());
    // All arguments scalar: a scalar back (DataFusion folds it).
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        return Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?));
    }
    Ok(ColumnarValue::Array(out))
}

fn lookup(attrs: &arrow::array::StringArray, names: &arrow::array::StringArray, i: usize) -> Option<String> {
    if attrs.is_null(i) || names.is_null(i) {
        return None;
    }
    let object: serde_json::Map<String, Value> = serde_json::from_str(attrs.value(i)).ok()?;
    match object.get(names.value(i))? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_one_attribute_or_null() {
        let ctx = SessionContext::new();
        register(&ctx);
        let sql = r#"SELECT attr(a, 'fw') AS fw FROM (VALUES ('{"fw":"2.4.1","hw":"b"}'), ('{"hw":"b"}'), (NULL), ('not json')) AS t(a)"#;
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let fw = batches[0].column(0).as_string::<i32>();
        let got: Vec<Option<&str>> = (0..fw.len()).map(|i| fw.is_valid(i).then(|| fw.value(i))).collect();
        assert_eq!(got, [Some("2.4.1"), None, None, None]);
    }
}
