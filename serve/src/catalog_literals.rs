//! What the catalog keeps differently from PostgreSQL, and how a statement's expressions are
//! read against it: boolean columns compared with `'f'`, `pg_index`'s and `pg_constraint`'s
//! vectors kept as text, `pg_type`'s functions kept by name, oids psql quotes, `regclass`
//! casts, Grafana's search-path subquery, `array(SELECT ...)`, and the catalog functions
//! `rewrite.rs` turns into ones DataFusion runs.

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CaseWhen, CastKind, DataType as SqlType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;

use crate::expr::call;

/// The catalog's boolean columns that clients compare with `'t'` or `'f'`.
pub(crate) const BOOLEAN_COLUMNS: &[&str] = &[
    "indisunique",
    "indisprimary",
    "indisexclusion",
    "indimmediate",
    "indisclustered",
    "indisvalid",
    "indisready",
    "indislive",
    "attnotnull",
    "atthasdef",
    "attisdropped",
    "attislocal",
    "relhasindex",
    "relisshared",
    "relispartition",
    "relhasrules",
    "relhastriggers",
    "condeferrable",
    "condeferred",
    "convalidated",
    "typnotnull",
    "typisdefined",
    "proretset",
    "prosecdef",
];

pub(crate) fn is_boolean_column(e: &Expr) -> bool {
    column_name(e).is_some_and(|name| BOOLEAN_COLUMNS.contains(&name.as_str()))
}

/// `pg_type`'s function columns, which the catalog keeps as the functions' names.
pub(crate) fn is_regproc_column(e: &Expr) -> bool {
    const COLUMNS: &[&str] = &["typinput", "typoutput", "typreceive", "typsend", "typmodin", "typmodout", "typanalyze"];
    COLUMNS.iter().any(|c| is_named(e, c))
}

/// `'pg_catalog.array_in'::regproc` as the function's bare name.
pub(crate) fn regproc_literal(e: &Expr) -> Option<String> {
    let Expr::Cast { expr, data_type: SqlType::Custom(t, _), .. } = e else { return None };
    if !t.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("regproc")) {
        return None;
    }
    let Expr::Value(v) = expr.as_ref() else { return None };
    let Value::SingleQuotedString(text) = &v.value else { return None };
    Some(text.strip_prefix("pg_catalog.").unwrap_or(text).to_string())
}

/// `'t'`, `'false'`, ... as PostgreSQL reads a boolean literal.
pub(crate) fn boolean_literal(e: &Expr) -> Option<bool> {
    let Expr::Value(v) = e else { return None };
    let Value::SingleQuotedString(text) = &v.value else { return None };
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

pub(crate) fn is_search_path_list(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    let text = query.to_string().to_ascii_lowercase();
    text.contains("current_setting('search_path')") && text.contains("generate_series")
}

/// The vector `root` and `chain` access (`con` then `.conkey`, or `conkey` itself) before a
/// subscript; the chain is left with the subscripts.
pub(crate) fn vector_access(root: &Expr, chain: &mut Vec<AccessExpr>) -> Option<Expr> {
    if is_key_vector(root) {
        return Some(root.clone());
    }
    let (Expr::Identifier(table), Some(AccessExpr::Dot(Expr::Identifier(column)))) = (root, chain.first()) else {
        return None;
    };
    let vector = Expr::CompoundIdentifier(vec![table.clone(), column.clone()]);
    if !is_key_vector(&vector) || !matches!(chain.get(1), Some(AccessExpr::Subscript(_))) {
        return None;
    }
    chain.remove(0);
    Some(vector)
}

/// `array(SELECT e FROM ...)` as `(SELECT array_agg(e) FROM ...)`; `None` for another shape.
pub(crate) fn array_of_subquery(f: &Function) -> Option<Expr> {
    use datafusion::sql::sqlparser::ast::{SelectItem, SetExpr};
    let FunctionArguments::Subquery(query) = &f.args else { return None };
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    let [item] = select.projection.as_mut_slice() else { return None };
    let value = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return None,
    };
    *item = SelectItem::UnnamedExpr(call("array_agg", vec![value]));
    Some(Expr::Subquery(query))
}

/// psql passes oids to the catalog's functions quoted (`pg_relation_is_publishable('16404')`),
/// which PostgreSQL reads as the oid they spell.
pub(crate) fn quoted_oids(f: &mut Function, changed: &mut bool) {
    if !f.name.0.last().is_some_and(|p| p.to_string().to_ascii_lowercase().starts_with("pg_")) {
        return;
    }
    let FunctionArguments::List(list) = &mut f.args else { return };
    for arg in &mut list.args {
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg else { continue };
        let Expr::Value(v) = &*e else { continue };
        let Value::SingleQuotedString(text) = &v.value else { continue };
        if !text.is_empty() && text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()) {
            // An oid is 32 bits, as the catalog library's functions take it.
            *e = typed(&format!("CAST({text} AS INT)"));
            *changed = true;
        }
    }
}

pub(crate) fn mentions_unpublished(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    let text = query.to_string().to_ascii_lowercase();
    text.contains("prattrs") || text.contains("polroles")
}

/// `CAST(NULL AS <t>)`.
pub(crate) fn typed_null(t: &str) -> Expr {
    typed(&format!("CAST(NULL AS {t})"))
}

/// The expression `sql` spells (one of the constants above; null if it did not parse).
fn typed(sql: &str) -> Expr {
    SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .unwrap_or_else(|_| Expr::value(Value::Null))
}

pub(crate) fn is_named(e: &Expr, column: &str) -> bool {
    column_name(e).is_some_and(|name| name.eq_ignore_ascii_case(column))
}

/// The column a bare or qualified identifier names, in lower case.
fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(i) => Some(i.value.to_ascii_lowercase()),
        Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.to_ascii_lowercase()),
        _ => None,
    }
}

pub(crate) fn is_key_vector(e: &Expr) -> bool {
    let Some(name) = column_name(e) else { return false };
    name == "conkey" || name == "confkey" || VECTOR_COLUMNS.contains(&name.as_str())
}

pub(crate) fn is_regclass(t: &SqlType) -> bool {
    match t {
        SqlType::Regclass => true,
        SqlType::Custom(name, _) => name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("regclass")),
        _ => false,
    }
}

/// A bound parameter (`$1`), which the catalog library's own rule casts.
pub(crate) fn is_placeholder(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, Value::Placeholder(_)),
        Expr::Nested(inner) => is_placeholder(inner),
        _ => false,
    }
}

/// `pg_index`'s `int2vector` and `oidvector` columns, which `datafusion-pg-catalog` keeps as
/// text (`"1 2"`).
const VECTOR_COLUMNS: &[&str] = &["indkey", "indclass", "indoption", "indcollation"];

/// `pg_get_viewdef(c.oid)` as `pg_get_viewdef(c.relname)`; `unnest(v)` and
/// `generate_subscripts(v, 1)` over a vector column of `pg_index` (SQLAlchemy
/// reads index and key columns so): its elements, and their subscripts from 0 as PostgreSQL
/// numbers a vector's; `generate_subscripts` over an array as `unnest(range(1, n + 1))`.
pub(crate) fn catalog_function(f: &Function) -> Option<Expr> {
    let name = f.name.0.last()?.to_string().to_ascii_lowercase();
    let FunctionArguments::List(list) = &f.args else { return None };
    let args: Vec<&Expr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let vector = |e: &Expr| match e {
        Expr::Identifier(i) => VECTOR_COLUMNS.contains(&i.value.to_ascii_lowercase().as_str()),
        Expr::CompoundIdentifier(p) => {
            p.last().is_some_and(|i| VECTOR_COLUMNS.contains(&i.value.to_ascii_lowercase().as_str()))
        }
        _ => false,
    };
    let number = |n: i64| Expr::value(Value::Number(n.to_string(), false));
    match (name.as_str(), args.as_slice()) {
        // pg_class's oid is the catalog library's own: the view is found by its name.
        ("pg_get_viewdef", [Expr::CompoundIdentifier(parts), rest @ ..])
            if parts.last().is_some_and(|p| p.value.eq_ignore_ascii_case("oid")) =>
        {
            let mut relname = parts.clone();
            *relname.last_mut()? = Ident::new("relname");
            let mut args = vec![Expr::CompoundIdentifier(relname)];
            args.extend(rest.iter().map(|e| (*e).clone()));
            Some(call("pg_get_viewdef", args))
        }
        // Superset's time filters: `TO_TIMESTAMP('2026-12-04 00:00:00.000000', 'YYYY-MM-DD
        // HH24:MI:SS.US')`; DataFusion reads the pattern in chrono's words.
        ("to_timestamp" | "to_date", [value, Expr::Value(v)]) => {
            let Value::SingleQuotedString(pattern) = &v.value else { return None };
            let chrono = crate::datetime_format::chrono_pattern(pattern)?;
            Some(call(&name, vec![(*value).clone(), Expr::value(Value::SingleQuotedString(chrono))]))
        }
        ("unnest", [v]) if vector(v) => Some(call("unnest", vec![call("vector_elements", vec![(*v).clone()])])),
        ("generate_subscripts", [v, dim]) if vector(v) => {
            let count = call("cardinality", vec![call("vector_elements", vec![(*v).clone()])]);
            Some(call("unnest", vec![call("range", vec![number(0), first_dimension(dim, count, 0)])]))
        }
        ("generate_subscripts", [a, dim]) => {
            let end = Expr::BinaryOp {
                left: Box::new(call("cardinality", vec![(*a).clone()])),
                op: BinaryOperator::Plus,
                right: Box::new(number(1)),
            };
            Some(call("unnest", vec![call("range", vec![number(1), first_dimension(dim, end, 1)])]))
        }
        _ => None,
    }
}

/// `CASE WHEN dim = 1 THEN end ELSE start END`: an array here has one dimension, so another
/// has no subscripts. The dimension stays in the statement (a bound parameter keeps its place).
fn first_dimension(dim: &Expr, end: Expr, start: i64) -> Expr {
    let is_first = Expr::BinaryOp {
        left: Box::new(dim.clone()),
        op: BinaryOperator::Eq,
        right: Box::new(Expr::value(Value::Number("1".into(), false))),
    };
    let end = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(end),
        data_type: SqlType::BigInt(None),
        array: false,
        format: None,
    };
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen { condition: is_first, result: end }],
        else_result: Some(Box::new(Expr::value(Value::Number(start.to_string(), false)))),
    }
}
