//! Functions over the warehouse's columns, registered with the views, so `connaudit query`,
//! the audits and `connaudit serve` all have them:
//! - `attr(attributes, name)`: one attribute of an event or session, from the JSON object of
//!   strings in their `attributes` column (null when absent);
//! - `attr_entries(attributes, prefix)`: every attribute as `<prefix>name=value`, to group by
//!   any of them;
//! - `net_prefix(peer_ip)`: the network of an address, its /24 (IPv4) or /48 (IPv6).

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
    let list = DataType::List(Arc::new(arrow::datatypes::Field::new_list_field(DataType::Utf8, true)));
    let (args, immutable) = (vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable);
    ctx.register_udf(create_udf("attr_entries", args, list, immutable, Arc::new(entries)));
    ctx.register_udf(create_udf(
        "net_prefix",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(net_prefix),
    ));
}

fn entries(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let (attrs, prefixes) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
    let mut out = arrow::array::ListBuilder::new(StringBuilder::new());
    for i in 0..attrs.len() {
        let prefix = if prefixes.is_valid(i) { prefixes.value(i) } else { "" };
        let object: Option<serde_json::Map<String, Value>> =
            attrs.is_valid(i).then(|| serde_json::from_str(attrs.value(i)).ok()).flatten();
        for (name, value) in object.iter().flatten() {
            match value {
                Value::String(s) => out.values().append_value(format!("{prefix}{name}={s}")),
                Value::Null => {}
                other => out.values().append_value(format!("{prefix}{name}={other}")),
            }
        }
        out.append(true);
    }
    scalar_if_all_scalar(args, Arc::new(out.finish()))
}

fn net_prefix(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let ips = arrays[0].as_string::<i32>();
    let mut out = StringBuilder::with_capacity(ips.len(), ips.len() * 16);
    for i in 0..ips.len() {
        out.append_option(ips.is_valid(i).then(|| network(ips.value(i))).flatten());
    }
    scalar_if_all_scalar(args, Arc::new(out.finish()))
}

/// The /24 of an IPv4 address, the /48 of an IPv6 one.
fn network(text: &str) -> Option<String> {
    match connaudit_model::peer_address(text)?.0 {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{}/48", std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)))
        }
    }
}

/// All arguments scalar: a scalar back (DataFusion folds it).
fn scalar_if_all_scalar(args: &[ColumnarValue], out: ArrayRef) -> Result<ColumnarValue> {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        return Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&out, 0)?));
    }
    Ok(ColumnarValue::Array(out))
}

fn attr(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let (attrs, names) = (arrays[0].as_string::<i32>(), arrays[1].as_string::<i32>());
    let mut out = StringBuilder::with_capacity(attrs.len(), attrs.len() * 8);
    for i in 0..attrs.len() {
        out.append_option(lookup(attrs, names, i));
    }
    scalar_if_all_scalar(args, Arc::new(out.finish()))
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

    #[tokio::test]
    async fn entries_and_networks() {
        let ctx = SessionContext::new();
        register(&ctx);
        let sql = r#"SELECT array_to_string(attr_entries(a, 'attr.'), ';') AS e, net_prefix(ip) AS n
            FROM (VALUES ('{"fw":"2.4.1","n":3}', '10.1.2.3'), (NULL, '2001:db8:1:2::9'), ('x', 'nope')) AS t(a, ip)"#;
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let (e, n) = (batches[0].column(0).as_string::<i32>(), batches[0].column(1).as_string::<i32>());
        assert_eq!((e.value(0), n.value(0)), ("attr.fw=2.4.1;attr.n=3", "10.1.2.0/24"));
        assert_eq!((e.value(1), n.value(1)), ("", "2001:db8:1::/48"));
        assert!(n.is_null(2));
    }
}
