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
    let mut last = Last::default();
    for i in 0..attrs.len() {
        let prefix = if prefixes.is_valid(i) { prefixes.value(i) } else { "" };
        let attributes = attrs.is_valid(i).then(|| attrs.value(i));
        let listed = last.get(attributes, prefix, || {
            let object: Option<serde_json::Map<String, Value>> = attributes.and_then(|a| serde_json::from_str(a).ok());
            let entries = object.iter().flatten().filter_map(|(name, value)| match value {
                Value::String(s) => Some(format!("{prefix}{name}={s}")),
                Value::Null => None,
                other => Some(format!("{prefix}{name}={other}")),
            });
            entries.collect::<Vec<_>>()
        });
        listed.iter().for_each(|e| out.values().append_value(e));
        out.append(true);
    }
    scalar_if_all_scalar(args, Arc::new(out.finish()))
}

/// The last input of a function and what it gave. The events come sorted by type then client,
/// so runs of rows holding the same address or attributes (one client's) are computed once per
/// run.
struct Last<'a, T> {
    input: Option<(Option<&'a str>, &'a str)>,
    output: T,
}

impl<T: Default> Default for Last<'_, T> {
    fn default() -> Self {
        Last { input: None, output: T::default() }
    }
}

impl<'a, T> Last<'a, T> {
    /// What `compute` gives for `(value, argument)`, computed again only when they change.
    fn get(&mut self, value: Option<&'a str>, argument: &'a str, compute: impl FnOnce() -> T) -> &T {
        if self.input != Some((value, argument)) {
            self.output = compute();
            self.input = Some((value, argument));
        }
        &self.output
    }
}

fn net_prefix(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let ips = arrays[0].as_string::<i32>();
    let mut out = StringBuilder::with_capacity(ips.len(), ips.len() * 16);
    let mut last = Last::default();
    for i in 0..ips.len() {
        let ip = ips.is_valid(i).then(|| ips.value(i));
        out.append_option(last.get(ip, "", || ip.and_then(network)).as_deref());
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
    let mut last = Last::default();
    for i in 0..attrs.len() {
        let (value, name) = (attrs.is_valid(i).then(|| attrs.value(i)), names.is_valid(i).then(|| names.value(i)));
        let Some(name) = name else {
            out.append_null();
            continue;
        };
        out.append_option(last.get(value, name, || value.and_then(|v| lookup(v, name))).as_deref());
    }
    scalar_if_all_scalar(args, Arc::new(out.finish()))
}

fn lookup(attributes: &str, name: &str) -> Option<String> {
    let object: serde_json::Map<String, Value> = serde_json::from_str(attributes).ok()?;
    match object.get(name)? {
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

    /// Runs of equal inputs (one client's rows) are computed once; what each row gets is what
    /// it would get alone.
    #[test]
    fn runs_of_equal_inputs_give_what_each_row_gives_alone() {
        use arrow::array::StringArray;
        let attrs = StringArray::from(vec![
            Some(r#"{"fw":"1","hw":"a"}"#),
            Some(r#"{"fw":"1","hw":"a"}"#),
            Some(r#"{"fw":"2"}"#),
            None,
            None,
            Some(r#"{"fw":"2"}"#),
            Some("not json"),
            Some(r#"{"fw":"2"}"#),
        ]);
        let names =
            StringArray::from(vec![Some("fw"), Some("hw"), Some("fw"), Some("fw"), None, None, Some("fw"), Some("fw")]);
        let ips = StringArray::from(vec![
            Some("10.1.2.3"),
            Some("10.1.2.3"),
            Some("10.1.2.9"),
            None,
            None,
            Some("2001:db8::1"),
            Some("nope"),
            Some("10.1.2.3"),
        ]);
        let column = |a: &StringArray| ColumnarValue::Array(Arc::new(a.clone()));
        let whole = |f: fn(&[ColumnarValue]) -> Result<ColumnarValue>, args: &[&StringArray]| {
            let args: Vec<_> = args.iter().map(|a| column(a)).collect();
            match f(&args).unwrap() {
                ColumnarValue::Array(a) => a,
                ColumnarValue::Scalar(_) => unreachable!("array arguments"),
            }
        };
        let alone = |f: fn(&[ColumnarValue]) -> Result<ColumnarValue>, args: &[&StringArray], i: usize| {
            let args: Vec<_> = args.iter().map(|a| column(&StringArray::slice(a, i, 1))).collect();
            match f(&args).unwrap() {
                ColumnarValue::Array(a) => a,
                ColumnarValue::Scalar(_) => unreachable!("array arguments"),
            }
        };
        let prefixes = StringArray::from(vec!["attr."; attrs.len()]);
        let cases: [(fn(&[ColumnarValue]) -> Result<ColumnarValue>, Vec<&StringArray>); 3] =
            [(attr, vec![&attrs, &names]), (entries, vec![&attrs, &prefixes]), (net_prefix, vec![&ips])];
        for (f, args) in cases {
            let all = whole(f, &args);
            for i in 0..attrs.len() {
                assert_eq!(all.slice(i, 1).to_data(), alone(f, &args, i).to_data(), "row {i}");
            }
        }
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
