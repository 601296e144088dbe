//! Statements as BI tools send them that DataFusion cannot run as written, rewritten into ones
//! with the same answer before `datafusion-postgres` parses them (its own rules would otherwise
//! answer some of them with a made-up null):
//!
//! - a scalar subquery `(SELECT e FROM ... WHERE <correlated>)` becomes
//!   `((SELECT single_value(e) FROM ...))`: DataFusion plans a correlated subquery only when it
//!   is aggregated, and `single_value` answers like PostgreSQL (the one value, null for no row,
//!   an error for more than one). SQLAlchemy's inspector reads columns so.
//! - `x LIKE p ESCAPE 'c'` becomes `x LIKE like_escape(p, 'c')` (DataFusion takes only the
//!   backslash; SQLAlchemy escapes `_` with `/`).
//! - `unnest` and `generate_subscripts` over `pg_index`'s vectors (kept as text here) read
//!   their elements; `pg_get_viewdef(c.oid)` reads `c.relname`; `<pg_class>.reloptions` and
//!   `pg_get_serial_sequence(...)` are null (no storage options, no sequences here).
//! - `name::regclass` becomes `regclass_oid(name)` (`relations.rs`).
//! - `x = ANY(c.conkey)`, `x = ANY(ix.indkey)`, `c.conkey[n]` over the catalog's vectors (kept
//!   as text) read their elements.
//! - `information_schema.columns` and the constraint views read as PostgreSQL's
//!   (`information_schema.rs`).
//! - `SHOW timezone` is `SHOW TIME ZONE`; `SHOW max_identifier_length`, `server_encoding`, ...
//!   answer this server's fixed values (the catalog library answers an empty string).
//! - for psql's `\d` of a table: an oid quoted as text to a `pg_` function is the number,
//!   `array(SELECT ...)` an `array_agg`, `'d' = any(stxkind)` reads the letters, and the
//!   columns a publication takes are null (nothing is published here).
//! - `typinput = 'pg_catalog.array_in'::regproc` compares the function's name, as the catalog
//!   keeps `pg_type`'s.
//! - columns of one name in a projection (pgjdbc's `NULL, NULL, NULL`) are told apart
//!   (`projection_names.rs`).
//! - `to_timestamp(text, 'YYYY-MM-DD HH24:MI:SS.US')` and `to_date` read PostgreSQL's pattern
//!   (`datetime_format.rs`).
//! - `<catalog boolean column> = 'f'` compares with the boolean `false`, as PostgreSQL reads it.
//! - Grafana's search-path membership subquery is asked of the search path itself (the
//!   catalog library would replace it with an empty list, and no table would be on the path).
//!
//! A statement that needs none of these is passed on as the client wrote it.

use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, Statement, Value,
    VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CaseWhen, CastKind, DataType as SqlType, UnaryOperator,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;
use datafusion_postgres::pgwire::api::portal::Format;
use datafusion_postgres::pgwire::api::results::FieldInfo;
use datafusion_postgres::pgwire::api::stmt::QueryParser;
use datafusion_postgres::pgwire::api::{ClientInfo, Type};
use datafusion_postgres::pgwire::error::PgWireResult;
use datafusion_postgres::Parser;

use crate::expr::call;

/// The statement text to plan: `sql` rewritten, or `None` when it needs nothing (or does not
/// parse here; the engine's parser then reports the error).
pub fn rewrite_sql(sql: &str) -> Option<String> {
    if !may_need_rewriting(sql) {
        return None;
    }
    let mut statements = SqlParser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let mut changed = false;
    for statement in &mut statements {
        changed |= rewrite(statement);
    }
    changed.then(|| statements.iter().map(ToString::to_string).collect::<Vec<_>>().join(";\n"))
}

/// Whether `sql` can hold anything rewritten, judged on its text without parsing it (a
/// dashboard's statement without a subquery is not parsed twice): a subquery needs a second
/// `SELECT`, and every other rewrite names its word.
fn may_need_rewriting(sql: &str) -> bool {
    const WORDS: &[&str] = &[
        "escape",
        "indkey",
        "indclass",
        "indoption",
        "indcollation",
        "generate_subscripts",
        "reloptions",
        "pg_get_viewdef",
        "pg_get_serial_sequence",
        "regclass",
        "conkey",
        "confkey",
        "timezone",
        "show ",
        "search_path",
        "to_timestamp",
        "to_date",
        "relacl",
        "regproc",
        "null, null",
        "stxkind",
        "prattrs",
        "polroles",
        "pg_relation_is_publishable",
        "array(",
        "unnest",
    ];
    let lower = sql.to_ascii_lowercase();
    lower.matches("select").count() > 1
        || WORDS.iter().chain(crate::information_schema::WORDS).chain(BOOLEAN_COLUMNS).any(|w| lower.contains(w))
}

/// Settings `SHOW` answers with this server's fixed value.
const SETTINGS: &[(&str, &str)] = &[
    ("max_identifier_length", "63"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
];

/// The most scalar subqueries a statement may have for them to be rewritten: a catalog query
/// has a few. Each one rewritten becomes a join DataFusion plans and decorrelates, and 2,000
/// of them (a 237 KB statement) took 9 minutes of one core, then overflowed a worker's stack.
/// Past it the statement goes as written (the catalog library answers such a subquery with a
/// null, as before).
const MAX_SUBQUERIES: usize = 32;

fn rewrite(statement: &mut Statement) -> bool {
    if let Statement::ShowVariable { variable } = statement {
        if variable.len() == 1 && variable[0].value.eq_ignore_ascii_case("timezone") {
            *variable = vec![Ident::new("time"), Ident::new("zone")];
            return true;
        }
        // What psqlODBC (Tableau, Power BI) and JDBC tools ask on connect and the catalog
        // library answers with an empty string: this server's fixed values.
        if let [name] = variable.as_slice() {
            let name = name.value.to_ascii_lowercase();
            if let Some((_, value)) = SETTINGS.iter().find(|(n, _)| *n == name) {
                let sql = format!("SELECT '{value}' AS {name}");
                if let Some(select) = SqlParser::parse_sql(&PostgreSqlDialect {}, &sql).ok().and_then(|mut s| s.pop()) {
                    *statement = select;
                    return true;
                }
            }
        }
    }
    let mut sequences = NoSequences(false);
    let _ = statement.visit(&mut sequences);
    let mut duplicates = crate::projection_names::Unique(false);
    let _ = statement.visit(&mut duplicates);
    sequences.0 |= duplicates.0;
    let mut changed =
        sequences.0 | crate::information_schema::rewrite(statement) | crate::table_functions::rewrite(statement);
    let mut subqueries = 0;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(&*statement, |e| {
        subqueries += usize::from(matches!(e, Expr::Subquery(_)));
        ControlFlow::<()>::Continue(())
    });
    let rewrite_subqueries = subqueries <= MAX_SUBQUERIES;
    let _ = visit_expressions_mut(statement, |expr| {
        match expr {
            Expr::Like { pattern, escape_char, .. } | Expr::ILike { pattern, escape_char, .. } => {
                let other = escape_char.as_ref().is_some_and(|e| e.value != Value::SingleQuotedString("\\".into()));
                if let (true, Some(escape)) = (other, escape_char.take()) {
                    let original = std::mem::replace(pattern.as_mut(), Expr::value(Value::Null));
                    **pattern = call("like_escape", vec![original, Expr::value(escape.value)]);
                    changed = true;
                }
            }
            // psql's `\d` of a table lists the columns each publication takes of it, and the
            // roles of each row-level policy, by correlated subqueries DataFusion cannot plan
            // (`generate_series(0, array_upper(pr.prattrs, 1))`, `array(... any(pol.polroles))`);
            // `pg_publication_rel` and `pg_policy` are empty here (nothing is published, no row
            // is hidden), so their answer is null for every row there is.
            Expr::Subquery(query) if mentions_unpublished(query) => {
                *expr = Expr::value(Value::Null);
                changed = true;
            }
            Expr::Subquery(query) if rewrite_subqueries => {
                if let Some(single) = crate::scalar_subquery::single_valued(query) {
                    *expr = single;
                    changed = true;
                }
            }
            // `pg_class.reloptions`, `i.reloptions` (SQLAlchemy's indexes), `c.relacl` (pgjdbc's
            // privileges): no relation here has storage options, and each has the default
            // privileges, which PostgreSQL writes as a null ACL; `datafusion-pg-catalog`'s
            // `pg_class` lacks both columns (no other catalog table has one of those names).
            Expr::CompoundIdentifier(parts)
                if parts.last().is_some_and(|p| {
                    p.value.eq_ignore_ascii_case("reloptions") || p.value.eq_ignore_ascii_case("relacl")
                }) =>
            {
                *expr = typed_null("TEXT[]");
                changed = true;
            }
            // `name::regclass` (Metabase's `format('%I.%I', s, t)::regclass::oid`, and
            // `'pg_class'::regclass`): the relation looked up by its name; a bound parameter's
            // is the catalog library's.
            Expr::Cast { expr: name, data_type, .. } if is_regclass(data_type) && !is_placeholder(name) => {
                let name = std::mem::replace(name.as_mut(), Expr::value(Value::Null));
                *expr = call("regclass_oid", vec![name]);
                changed = true;
            }
            // `attnum = ANY(c.conkey)`, `a.attnum = ANY(ix.indkey)` (SQLAlchemy 1.4's indexes):
            // the elements of `pg_constraint`'s and `pg_index`'s vectors.
            Expr::AnyOp { right, .. } if is_key_vector(right) => {
                let vector = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
                **right = call("vector_elements", vec![vector]);
                changed = true;
            }
            // `'d' = any(stxkind)` (psql's `\d` of a table): `pg_statistic_ext`'s `char[]`, kept as
            // text, read as its letters.
            Expr::AnyOp { right, .. } if is_named(right, "stxkind") => {
                let text = std::mem::replace(right.as_mut(), Expr::value(Value::Null));
                let quote = |s: &str| Expr::value(Value::SingleQuotedString(s.into()));
                **right = call("string_to_array", vec![call("btrim", vec![text, quote("{}[]")]), quote(",")]);
                changed = true;
            }
            // Grafana's `quote_ident(table_schema) IN (SELECT ... FROM generate_series(...),
            // string_to_array(current_setting('search_path'), ',') s)`: whether the schema is
            // on the search path, asked of the path itself (`"$user"` names no schema here).
            Expr::InSubquery { expr: schema, subquery, negated } if is_search_path_list(subquery) => {
                let schema = std::mem::replace(schema.as_mut(), Expr::value(Value::Null));
                let path = call(
                    "string_to_array",
                    vec![
                        call(
                            "replace",
                            vec![
                                call(
                                    "current_setting",
                                    vec![Expr::value(Value::SingleQuotedString("search_path".into()))],
                                ),
                                Expr::value(Value::SingleQuotedString(" ".into())),
                                Expr::value(Value::SingleQuotedString(String::new())),
                            ],
                        ),
                        Expr::value(Value::SingleQuotedString(",".into())),
                    ],
                );
                let on_path = call("array_has", vec![path, schema]);
                *expr =
                    if *negated { Expr::UnaryOp { op: UnaryOperator::Not, expr: Box::new(on_path) } } else { on_path };
                changed = true;
            }
            // `ix.indisprimary = 'f'` (SQLAlchemy 1.4's indexes): PostgreSQL reads the literal as a
            // boolean; DataFusion compares a boolean with text only after a cast.
            Expr::BinaryOp { left, op: BinaryOperator::Eq | BinaryOperator::NotEq, right } => {
                // `typinput = 'pg_catalog.array_in'::regproc` (pgjdbc's type cache): the catalog
                // keeps `pg_type`'s functions by name, so the function is compared by its name.
                if is_regproc_column(left) {
                    if let Some(name) = regproc_literal(right) {
                        **right = Expr::value(Value::SingleQuotedString(name));
                        changed = true;
                    }
                } else if is_regproc_column(right) {
                    if let Some(name) = regproc_literal(left) {
                        **left = Expr::value(Value::SingleQuotedString(name));
                        changed = true;
                    }
                }
                if is_boolean_column(left) {
                    if let Some(b) = boolean_literal(right) {
                        **right = Expr::value(Value::Boolean(b));
                        changed = true;
                    }
                } else if is_boolean_column(right) {
                    if let Some(b) = boolean_literal(left) {
                        **left = Expr::value(Value::Boolean(b));
                        changed = true;
                    }
                }
            }
            // `con.conkey[pos.n]` (pgjdbc's foreign keys): an element of the vector. The parser
            // reads it as `con` with `.conkey` and `[pos.n]` accessed in turn.
            Expr::CompoundFieldAccess { root, access_chain } => {
                if let Some(vector) = vector_access(root, access_chain) {
                    **root = call("vector_elements", vec![vector]);
                    changed = true;
                }
            }
            // `array(SELECT e FROM ...)` (psql's `\d+`): the subquery's values as an array.
            Expr::Function(f)
                if matches!(&f.args, FunctionArguments::Subquery(_))
                    && f.name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("array")) =>
            {
                if matches!(&f.args, FunctionArguments::Subquery(q) if mentions_unpublished(q)) {
                    *expr = Expr::value(Value::Null);
                    changed = true;
                } else if let Some(aggregated) = array_of_subquery(f) {
                    *expr = aggregated;
                    changed = true;
                }
            }
            Expr::Function(f) => {
                quoted_oids(f, &mut changed);
                if let Some(replaced) = catalog_function(f) {
                    *expr = replaced;
                    changed = true;
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    changed
}

/// The catalog's boolean columns that clients compare with `'t'` or `'f'`.
const BOOLEAN_COLUMNS: &[&str] = &[
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

fn is_boolean_column(e: &Expr) -> bool {
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(p) => match p.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    BOOLEAN_COLUMNS.contains(&name.to_ascii_lowercase().as_str())
}

/// `pg_type`'s function columns, which the catalog keeps as the functions' names.
fn is_regproc_column(e: &Expr) -> bool {
    const COLUMNS: &[&str] = &["typinput", "typoutput", "typreceive", "typsend", "typmodin", "typmodout", "typanalyze"];
    COLUMNS.iter().any(|c| is_named(e, c))
}

/// `'pg_catalog.array_in'::regproc` as the function's bare name.
fn regproc_literal(e: &Expr) -> Option<String> {
    let Expr::Cast { expr, data_type: SqlType::Custom(t, _), .. } = e else { return None };
    if !t.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("regproc")) {
        return None;
    }
    let Expr::Value(v) = expr.as_ref() else { return None };
    let Value::SingleQuotedString(text) = &v.value else { return None };
    Some(text.strip_prefix("pg_catalog.").unwrap_or(text).to_string())
}

/// `'t'`, `'false'`, ... as PostgreSQL reads a boolean literal.
fn boolean_literal(e: &Expr) -> Option<bool> {
    let Expr::Value(v) = e else { return None };
    let Value::SingleQuotedString(text) = &v.value else { return None };
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "on" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

fn is_search_path_list(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    let text = query.to_string().to_ascii_lowercase();
    text.contains("current_setting('search_path')") && text.contains("generate_series")
}

/// The vector `root` and `chain` access (`con` then `.conkey`, or `conkey` itself) before a
/// subscript; the chain is left with the subscripts.
fn vector_access(root: &Expr, chain: &mut Vec<AccessExpr>) -> Option<Expr> {
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
fn array_of_subquery(f: &Function) -> Option<Expr> {
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
fn quoted_oids(f: &mut Function, changed: &mut bool) {
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

fn mentions_unpublished(query: &datafusion::sql::sqlparser::ast::Query) -> bool {
    let text = query.to_string().to_ascii_lowercase();
    text.contains("prattrs") || text.contains("polroles")
}

/// `CAST(NULL AS <t>)`.
fn typed_null(t: &str) -> Expr {
    typed(&format!("CAST(NULL AS {t})"))
}

/// The expression `sql` spells (one of the constants above; null if it did not parse).
fn typed(sql: &str) -> Expr {
    SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .unwrap_or_else(|_| Expr::value(Value::Null))
}

fn is_named(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case(column),
        Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| i.value.eq_ignore_ascii_case(column)),
        _ => false,
    }
}

fn is_key_vector(e: &Expr) -> bool {
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(p) => match p.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    let name = name.to_ascii_lowercase();
    name == "conkey" || name == "confkey" || VECTOR_COLUMNS.contains(&name.as_str())
}

fn is_regclass(t: &SqlType) -> bool {
    match t {
        SqlType::Regclass => true,
        SqlType::Custom(name, _) => name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("regclass")),
        _ => false,
    }
}

/// A bound parameter (`$1`), which the catalog library's own rule casts.
fn is_placeholder(e: &Expr) -> bool {
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
fn catalog_function(f: &Function) -> Option<Expr> {
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

/// `pg_get_serial_sequence(...)`, with the casts around it, is null: this server has no
/// sequences. Folded before planning, because the casts of its arguments to `regclass` become
/// subqueries inside SQLAlchemy's correlated one, which DataFusion cannot plan.
struct NoSequences(bool);

impl VisitorMut for NoSequences {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let mut core = &*expr;
        while let Expr::Cast { expr: inner, .. } | Expr::Nested(inner) = core {
            core = inner;
        }
        if let Expr::Function(f) = core {
            if f.name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("pg_get_serial_sequence")) {
                *expr = Expr::value(Value::Null);
                self.0 = true;
            }
        }
        ControlFlow::Continue(())
    }
}

/// `datafusion-postgres`'s parser of the extended protocol, given the rewritten statement.
pub struct Rewriting(pub Arc<Parser>);

#[async_trait]
impl QueryParser for Rewriting {
    type Statement = <Parser as QueryParser>::Statement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        match rewrite_sql(sql) {
            Some(sql) => self.0.parse_sql(client, &sql, types).await,
            None => self.0.parse_sql(client, sql, types).await,
        }
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.0.get_parameter_types(stmt)
    }

    fn get_result_schema(&self, stmt: &Self::Statement, format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        self.0.get_result_schema(stmt, format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_like_with_another_escape_character_goes_through_like_escape() {
        assert_eq!(
            rewrite_sql("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg/_' || '%' ESCAPE '/'").unwrap(),
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE like_escape('pg/_' || '%', '/')"
        );
        assert_eq!(rewrite_sql("SELECT 1 WHERE 'a' LIKE 'a'"), None);
        assert_eq!(rewrite_sql("SELECT 1 WHERE 'a' LIKE 'a' ESCAPE '\\'"), None);
    }

    #[test]
    fn a_plain_scalar_subquery_takes_its_single_value_and_an_aggregated_one_is_kept() {
        assert_eq!(
            rewrite_sql("SELECT a.x, (SELECT t.n AS n FROM t WHERE t.id = a.id) FROM a").unwrap(),
            "SELECT a.x, ((SELECT single_value(t.n) AS n FROM t WHERE t.id = a.id)) FROM a"
        );
        assert_eq!(
            rewrite_sql(
                "SELECT (SELECT d.v FROM pg_catalog.pg_attrdef AS d WHERE a.has AND d.id = a.id AND a.n > 0) FROM a"
            )
            .unwrap(),
            "SELECT CASE WHEN a.has AND a.n > 0 THEN ((SELECT single_value(d.v) FROM pg_catalog.pg_attrdef AS d \
             WHERE d.id = a.id)) END FROM a"
        );
        assert_eq!(
            rewrite_sql("SELECT (SELECT pg_attrdef.v FROM pg_catalog.pg_attrdef WHERE pg_attribute.has) FROM a").unwrap(),
            "SELECT CASE WHEN pg_attribute.has THEN ((SELECT single_value(pg_attrdef.v) FROM pg_catalog.pg_attrdef)) END \
             FROM a"
        );
        assert_eq!(
            rewrite_sql("SELECT (SELECT json_build_object('always', a.i = 'a', 'start', s.start) FROM s WHERE s.id = a.id) FROM a")
                .unwrap(),
            "SELECT CASE WHEN ((SELECT single_value(named_struct('present', true, 'c0', s.start)) FROM s WHERE s.id = a.id)) \
             IS NOT NULL THEN json_build_object('always', a.i = 'a', 'start', get_field(((SELECT single_value(named_struct(\
             'present', true, 'c0', s.start)) FROM s WHERE s.id = a.id)), 'c0')) END FROM a"
        );
        // psql's `\\d`: a collation only where it differs from the type's (a non-equality
        // between an outer and an own column) is left as it is.
        let collation = "SELECT (SELECT c.collname FROM pg_collation c, pg_type t WHERE c.oid = a.attcollation \
                         AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) FROM pg_attribute a";
        assert_eq!(rewrite_sql(collation), None);
        assert_eq!(rewrite_sql("SELECT (SELECT max(t.n) FROM t WHERE t.id = a.id) FROM a"), None);
        assert_eq!(rewrite_sql("SELECT (SELECT t.n FROM t LIMIT 1) FROM a"), None);
        assert_eq!(rewrite_sql("SELECT 1 WHERE EXISTS (SELECT t.n FROM t)"), None);
        assert_eq!(rewrite_sql("not sql at all"), None);
    }

    #[test]
    fn a_statement_with_more_subqueries_than_a_catalog_query_is_left_as_it_is() {
        let columns =
            |n: usize| (0..n).map(|i| format!("(SELECT t.n FROM t WHERE t.id = a.id) AS c{i}")).collect::<Vec<_>>();
        let sql = format!("SELECT {} FROM a", columns(MAX_SUBQUERIES + 1).join(", "));
        assert_eq!(rewrite_sql(&sql), None);
        let sql = format!("SELECT {} FROM a", columns(MAX_SUBQUERIES).join(", "));
        assert!(rewrite_sql(&sql).is_some());
    }

    #[test]
    fn a_regproc_is_compared_by_name_only_against_pg_types_function_columns() {
        let pgjdbc = "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype FROM pg_catalog.pg_type";
        let out = rewrite_sql(pgjdbc).expect("rewritten");
        assert!(out.contains("typinput = 'array_in'"), "{out}");
        assert_eq!(rewrite_sql("SELECT oid FROM pg_proc WHERE oid = 'array_in'::regproc"), None);
        let flags = rewrite_sql("SELECT 1 FROM pg_index ix WHERE ix.indisprimary = 'f'").expect("rewritten");
        assert!(flags.contains("ix.indisprimary = false"), "{flags}");
    }

    #[test]
    fn nested_subqueries_reading_the_outer_row_grow_a_statement_a_few_times_at_most() {
        let mut sql = "a.v".to_string();
        for level in 0..12 {
            sql = format!("(SELECT coalesce(t{level}.v, a.v, {sql}) FROM t t{level} WHERE t{level}.id = a.id)");
        }
        let sql = format!("SELECT {sql} FROM a");
        let rewritten = rewrite_sql(&sql).unwrap();
        assert!(rewritten.len() < 4 * sql.len(), "{} bytes from {}", rewritten.len(), sql.len());
    }
}
