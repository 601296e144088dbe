//! PostgreSQL's catalog functions that BI tools call while they reflect the schema and that
//! `datafusion-pg-catalog` lacks, answered truly for this server: it has no sequences, no
//! indexes and no collations of its own, and every type and collation is in
//! `pg_catalog`, which is on every search path.
//!
//! - `format(fmt, ...)` with `%s`, `%I`, `%L` and `%%` (Metabase's column descriptions)
//! - `json_build_object(k, v, ...)`, `like_escape(pattern, escape)` (SQLAlchemy's inspector)
//! - `pg_type_is_visible`, `pg_collation_is_visible`: true; `pg_client_encoding()`: UTF8
//! - `vector_elements(v)`: the numbers of an `int2vector` or `oidvector` kept as text (`"1 2"`,
//!   `"[1, 2]"`)
//! - `pg_get_serial_sequence`, `pg_get_indexdef`, `pg_get_function_result`: null (nothing of
//!   the kind exists here)
//!
//! `col_description` and `obj_description` are in `catalog_tables.rs`: they read the contract.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

type Body = Arc<dyn Fn(&[ScalarValue]) -> DfResult<ScalarValue> + Send + Sync>;

/// A function evaluated row by row on scalars: catalog queries are a few hundred rows.
struct RowFn {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    body: Body,
}

impl std::fmt::Debug for RowFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowFn").field("name", &self.name).finish()
    }
}

impl PartialEq for RowFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowFn {}

impl std::hash::Hash for RowFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
            let scalars: Vec<ScalarValue> = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(_) => unreachable!("all scalars"),
                })
                .collect();
            return Ok(ColumnarValue::Scalar((self.body)(&scalars)?.cast_to(&self.returns)?));
        }
        let rows = args.number_rows;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let scalars = args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Scalar(s) => Ok(s.clone()),
                    ColumnarValue::Array(array) => ScalarValue::try_from_array(array, row),
                })
                .collect::<DfResult<Vec<_>>>()?;
            out.push((self.body)(&scalars)?.cast_to(&self.returns)?);
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

/// Registers `name`, evaluated by `body` on each row's arguments.
pub fn register(
    ctx: &SessionContext,
    name: &'static str,
    signature: TypeSignature,
    returns: DataType,
    body: impl Fn(&[ScalarValue]) -> DfResult<ScalarValue> + Send + Sync + 'static,
) {
    let signature = Signature::new(signature, Volatility::Stable);
    ctx.register_udf(ScalarUDF::new_from_impl(RowFn { name, signature, returns, body: Arc::new(body) }));
}

pub fn register_all(ctx: &SessionContext) {
    use DataType::{Boolean, Utf8};
    use TypeSignature::{Any, OneOf, VariadicAny};
    let null = |_: &[ScalarValue]| Ok(ScalarValue::Null);
    let visible = |a: &[ScalarValue]| Ok(ScalarValue::Boolean((!a[0].is_null()).then_some(true)));
    register(ctx, "format", VariadicAny, Utf8, format);
    register(ctx, "json_build_object", OneOf(vec![Any(0), VariadicAny]), Utf8, json_build_object);
    register(ctx, "like_escape", Any(2), Utf8, like_escape);
    register(ctx, "pg_type_is_visible", Any(1), Boolean, visible);
    // psqlODBC asks on connect; serve speaks UTF-8 only.
    register(ctx, "pg_client_encoding", TypeSignature::Nullary, Utf8, |_: &[ScalarValue]| {
        Ok(ScalarValue::Utf8(Some("UTF8".into())))
    });
    register(ctx, "pg_collation_is_visible", Any(1), Boolean, visible);
    register(ctx, "pg_get_serial_sequence", Any(2), Utf8, null);
    register(ctx, "pg_get_indexdef", OneOf(vec![Any(1), Any(3)]), Utf8, null);
    register(ctx, "pg_get_function_result", Any(1), Utf8, null);
    let element = Arc::new(datafusion::arrow::datatypes::Field::new_list_field(DataType::Int64, true));
    register(ctx, "vector_elements", Any(1), DataType::List(element), vector_elements);
}

fn vector_elements(args: &[ScalarValue]) -> DfResult<ScalarValue> {
    let Some(vector) = text(&args[0]) else { return Ok(ScalarValue::Null) };
    // `"1 2"` as PostgreSQL prints an int2vector; `"[1, 2]"` as the catalog library keeps
    // `pg_constraint`'s key columns.
    let elements = vector
        .trim_matches(|c| matches!(c, '[' | ']' | '{' | '}'))
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(|n| match n.parse::<i64>() {
            Ok(n) => Ok(ScalarValue::Int64(Some(n))),
            Err(_) => exec_err!("invalid input syntax for a vector: \"{vector}\""),
        })
        .collect::<DfResult<Vec<_>>>()?;
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(&elements, &DataType::Int64)))
}

/// A value as PostgreSQL prints it in text; `None` for null.
fn text(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return None;
    }
    Some(match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Boolean(Some(b)) => if *b { "t" } else { "f" }.to_string(),
        other => other.to_string(),
    })
}

/// PostgreSQL's `quote_ident`: as is when it is a plain lower-case identifier.
fn quote_ident(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn quote_literal(value: &str) -> String {
    if value.contains('\\') {
        format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

fn format(args: &[ScalarValue]) -> DfResult<ScalarValue> {
    let Some(fmt) = text(&args[0]) else { return Ok(ScalarValue::Utf8(None)) };
    let mut values = args[1..].iter();
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let kind = chars.next();
        if kind == Some('%') {
            out.push('%');
            continue;
        }
        let Some(value) = values.next() else { return exec_err!("too few arguments for format()") };
        match (kind, text(value)) {
            (Some('s'), v) => out.push_str(&v.unwrap_or_default()),
            (Some('I'), Some(v)) => out.push_str(&quote_ident(&v)),
            (Some('I'), None) => return exec_err!("null values cannot be formatted as an SQL identifier"),
            (Some('L'), v) => out.push_str(&v.map_or_else(|| "NULL".to_string(), |v| quote_literal(&v))),
            (Some(other), _) => return exec_err!("unrecognized format() type specifier \"{other}\""),
            (None, _) => return exec_err!("unterminated format() type specifier"),
        }
    }
    Ok(ScalarValue::Utf8(Some(out)))
}

fn json_value(value: &ScalarValue) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        v if v.is_null() => J::Null,
        ScalarValue::Boolean(Some(b)) => J::Bool(*b),
        ScalarValue::Int8(Some(n)) => J::from(*n),
        ScalarValue::Int16(Some(n)) => J::from(*n),
        ScalarValue::Int32(Some(n)) => J::from(*n),
        ScalarValue::Int64(Some(n)) => J::from(*n),
        ScalarValue::UInt8(Some(n)) => J::from(*n),
        ScalarValue::UInt16(Some(n)) => J::from(*n),
        ScalarValue::UInt32(Some(n)) => J::from(*n),
        ScalarValue::UInt64(Some(n)) => J::from(*n),
        ScalarValue::Float32(Some(n)) => J::from(*n),
        ScalarValue::Float64(Some(n)) => J::from(*n),
        other => J::String(text(other).unwrap_or_default()),
    }
}

fn json_build_object(args: &[ScalarValue]) -> DfResult<ScalarValue> {
    if args.len() % 2 != 0 {
        return exec_err!("argument list must have even number of elements");
    }
    let mut object = serde_json::Map::new();
    for pair in args.chunks(2) {
        let Some(key) = text(&pair[0]) else { return exec_err!("null value not allowed for object key") };
        object.insert(key, json_value(&pair[1]));
    }
    Ok(ScalarValue::Utf8(Some(serde_json::Value::Object(object).to_string())))
}

/// PostgreSQL's `like_escape`: a pattern with its escape character turned into backslashes.
fn like_escape(args: &[ScalarValue]) -> DfResult<ScalarValue> {
    let (Some(pattern), Some(escape)) = (text(&args[0]), text(&args[1])) else { return Ok(ScalarValue::Utf8(None)) };
    let mut escape_chars = escape.chars();
    let escape = match (escape_chars.next(), escape_chars.next()) {
        (None, _) => {
            // No escape character: every character stands for itself.
            return Ok(ScalarValue::Utf8(Some(pattern.replace('\\', "\\\\"))));
        }
        (Some(c), None) => c,
        _ => return exec_err!("invalid escape string: it must be empty or one character"),
    };
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            match chars.next() {
                Some('\\') => out.push_str("\\\\"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => return exec_err!("LIKE pattern must not end with escape character"),
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(ScalarValue::Utf8(Some(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(v.into()))
    }

    #[test]
    fn format_quotes_identifiers_and_literals_as_postgresql_does() {
        let out =
            format(&[s("%I.%I is %L, %s%%"), s("public"), s("Region Rates"), s("it's"), ScalarValue::Int32(Some(5))]);
        assert_eq!(out.unwrap(), s("public.\"Region Rates\" is 'it''s', 5%"));
        assert!(format(&[s("%I"), ScalarValue::Utf8(None)]).is_err());
        assert!(format(&[s("%s %s"), s("one")]).is_err());
    }

    #[test]
    fn json_build_object_keeps_types_and_nulls() {
        let out = json_build_object(&[
            s("always"),
            ScalarValue::Boolean(Some(false)),
            s("start"),
            ScalarValue::Int64(Some(1)),
            s("name"),
            ScalarValue::Utf8(None),
        ]);
        let ScalarValue::Utf8(Some(json)) = out.unwrap() else { panic!("not text") };
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, serde_json::json!({"always": false, "start": 1, "name": null}));
        assert!(json_build_object(&[s("odd")]).is_err());
    }

    #[test]
    fn like_escape_turns_any_escape_character_into_backslashes() {
        assert_eq!(like_escape(&[s("pg/_%"), s("/")]).unwrap(), s("pg\\_%"));
        assert_eq!(like_escape(&[s("a\\b//c"), s("/")]).unwrap(), s("a\\\\b\\/c"));
        assert_eq!(like_escape(&[s("a_b"), s("")]).unwrap(), s("a_b"));
        assert!(like_escape(&[s("ab/"), s("/")]).is_err());
    }
}
