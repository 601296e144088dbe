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

use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArguments, Ident, Statement, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::ast::{BinaryOperator, UnaryOperator};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;

use crate::catalog_literals::{
    array_of_subquery, boolean_literal, catalog_function, is_boolean_column, is_key_vector, is_named, is_placeholder,
    is_regclass, is_regproc_column, is_search_path_list, mentions_unpublished, quoted_oids, regproc_literal,
    typed_null, vector_access, BOOLEAN_COLUMNS,
};
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
