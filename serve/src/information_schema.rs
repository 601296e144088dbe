//! `information_schema` as PostgreSQL answers it, where DataFusion's differs, by rewriting a
//! reference to a view into a derived table under the reference's alias (or the view's name):
//!
//! - `columns` is read from `pg_attribute` and `pg_type`: PostgreSQL's 44 columns, `data_type`
//!   in PostgreSQL's words (`timestamp with time zone`, `bigint`, not Arrow's), `udt_name`,
//!   `is_identity`, `is_generated`, ... (Metabase reads `udt_name`, Grafana picks a time
//!   column by `data_type`).
//! - the constraint views DataFusion lacks (`table_constraints`, `key_column_usage`,
//!   `referential_constraints`, `constraint_column_usage`) are empty with PostgreSQL's columns:
//!   a Delta table has no primary, unique or foreign keys and no checks.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Ident, Statement, TableAlias, TableFactor, VisitMut, VisitorMut};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Each view, its text columns and its integer columns.
const VIEWS: &[(&str, &[&str], &[&str])] = &[
    (
        "table_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "constraint_type",
            "is_deferrable",
            "initially_deferred",
            "enforced",
            "nulls_distinct",
        ],
        &[],
    ),
    (
        "key_column_usage",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
        ],
        &["ordinal_position", "position_in_unique_constraint"],
    ),
    (
        "referential_constraints",
        &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "unique_constraint_catalog",
            "unique_constraint_schema",
            "unique_constraint_name",
            "match_option",
            "update_rule",
            "delete_rule",
        ],
        &[],
    ),
    (
        "constraint_column_usage",
        &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
        ],
        &[],
    ),
];

/// The words whose presence in a statement's text means it may need this rewrite.
pub const WORDS: &[&str] = &["information_schema"];

/// `information_schema.columns` over the catalog, with PostgreSQL's columns in its order.
const COLUMNS: &str = "SELECT current_database() AS table_catalog, n.nspname AS table_schema, \
    c.relname AS table_name, a.attname AS column_name, CAST(a.attnum AS INT) AS ordinal_position, \
    CAST(NULL AS TEXT) AS column_default, CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable, \
    CASE WHEN t.typcategory = 'A' THEN 'ARRAY' ELSE format_type(t.oid, NULL) END AS data_type, \
    CAST(NULL AS INT) AS character_maximum_length, \
    CASE WHEN t.typname IN ('text', 'varchar', 'bpchar') THEN 1073741824 END AS character_octet_length, \
    CASE t.typname WHEN 'int2' THEN 16 WHEN 'int4' THEN 32 WHEN 'int8' THEN 64 WHEN 'float4' THEN 24 \
        WHEN 'float8' THEN 53 END AS numeric_precision, \
    CASE WHEN t.typname IN ('int2', 'int4', 'int8', 'float4', 'float8') THEN 2 END AS numeric_precision_radix, \
    CASE WHEN t.typname IN ('int2', 'int4', 'int8') THEN 0 END AS numeric_scale, \
    CASE WHEN t.typname IN ('timestamp', 'timestamptz', 'time', 'timetz', 'interval') THEN 6 \
        WHEN t.typname = 'date' THEN 0 END AS datetime_precision, \
    CAST(NULL AS TEXT) AS interval_type, CAST(NULL AS INT) AS interval_precision, \
    CAST(NULL AS TEXT) AS character_set_catalog, CAST(NULL AS TEXT) AS character_set_schema, \
    CAST(NULL AS TEXT) AS character_set_name, CAST(NULL AS TEXT) AS collation_catalog, \
    CAST(NULL AS TEXT) AS collation_schema, CAST(NULL AS TEXT) AS collation_name, \
    CAST(NULL AS TEXT) AS domain_catalog, CAST(NULL AS TEXT) AS domain_schema, CAST(NULL AS TEXT) AS domain_name, \
    current_database() AS udt_catalog, 'pg_catalog' AS udt_schema, t.typname AS udt_name, \
    CAST(NULL AS TEXT) AS scope_catalog, CAST(NULL AS TEXT) AS scope_schema, CAST(NULL AS TEXT) AS scope_name, \
    CAST(NULL AS INT) AS maximum_cardinality, CAST(a.attnum AS TEXT) AS dtd_identifier, \
    'NO' AS is_self_referencing, 'NO' AS is_identity, CAST(NULL AS TEXT) AS identity_generation, \
    CAST(NULL AS TEXT) AS identity_start, CAST(NULL AS TEXT) AS identity_increment, \
    CAST(NULL AS TEXT) AS identity_maximum, CAST(NULL AS TEXT) AS identity_minimum, 'NO' AS identity_cycle, \
    'NEVER' AS is_generated, CAST(NULL AS TEXT) AS generation_expression, 'NO' AS is_updatable \
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON a.attrelid = c.oid \
    JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid JOIN pg_catalog.pg_type t ON a.atttypid = t.oid \
    WHERE a.attnum > 0 AND c.relkind IN ('r', 'v', 'm', 'f', 'p')";

/// The most references a statement may have for them to be replaced: each one grows by up to
/// 2.5 KB of SQL, and a catalog query has a few. Past it the statement goes as written (to
/// DataFusion's own `information_schema`), so a 1 MB statement of references cannot become a
/// 100 MB one.
pub const MAX_REFERENCES: usize = 16;

/// Replaces the references in `statement`; whether it did.
pub fn rewrite(statement: &mut Statement) -> bool {
    let mut count = Count(0);
    let _ = statement.visit(&mut count);
    if count.0 == 0 || count.0 > MAX_REFERENCES {
        return false;
    }
    let mut visitor = Replace(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

/// The view a table factor names, when it is one of those replaced here.
fn replaced_view(factor: &TableFactor) -> Option<String> {
    let TableFactor::Table { name, .. } = factor else { return None };
    let parts: Vec<String> = name.0.iter().map(|p| p.to_string().trim_matches('"').to_ascii_lowercase()).collect();
    let view = match parts.as_slice() {
        [schema, view] | [_, schema, view] if schema == "information_schema" => view.clone(),
        _ => return None,
    };
    (view == "columns" || VIEWS.iter().any(|(v, _, _)| *v == view)).then_some(view)
}

struct Count(usize);

impl VisitorMut for Count {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        self.0 += usize::from(replaced_view(factor).is_some());
        ControlFlow::Continue(())
    }
}

struct Replace(bool);

impl VisitorMut for Replace {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let Some(view) = replaced_view(factor) else { return ControlFlow::Continue(()) };
        let TableFactor::Table { alias, .. } = factor else { return ControlFlow::Continue(()) };
        let sql = if view == "columns" {
            COLUMNS.to_string()
        } else if let Some((_, text, int)) = VIEWS.iter().find(|(v, _, _)| *v == view) {
            let columns: Vec<String> = text
                .iter()
                .map(|c| format!("CAST(NULL AS TEXT) AS {c}"))
                .chain(int.iter().map(|c| format!("CAST(NULL AS INT) AS {c}")))
                .collect();
            format!("SELECT {} WHERE false", columns.join(", "))
        } else {
            return ControlFlow::Continue(());
        };
        let Ok(Some(Statement::Query(subquery))) = Parser::parse_sql(&PostgreSqlDialect {}, &sql).map(|mut s| s.pop())
        else {
            return ControlFlow::Continue(());
        };
        let alias =
            alias.take().unwrap_or(TableAlias { explicit: true, name: Ident::new(view), columns: vec![], at: None });
        *factor = TableFactor::Derived { lateral: false, subquery, alias: Some(alias), sample: None };
        self.0 = true;
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constraint_view_is_an_empty_table_under_its_alias() {
        let sql = "SELECT tc.table_name FROM information_schema.table_constraints AS tc \
                   JOIN information_schema.tables t ON t.table_name = tc.table_name";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
        assert!(rewrite(&mut statement));
        let text = statement.to_string();
        assert!(text.contains("WHERE false) AS tc"), "{text}");
        assert!(text.contains("information_schema.tables"), "{text}");
        let mut other = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT * FROM information_schema.tables").unwrap();
        assert!(!rewrite(&mut other[0]));
    }

    #[test]
    fn a_statement_of_many_references_is_left_as_written() {
        let union = |n: usize| vec!["SELECT column_name FROM information_schema.columns"; n].join(" UNION ALL ");
        let mut few = Parser::parse_sql(&PostgreSqlDialect {}, &union(MAX_REFERENCES)).unwrap();
        assert!(rewrite(&mut few[0]));
        let mut many = Parser::parse_sql(&PostgreSqlDialect {}, &union(MAX_REFERENCES + 1)).unwrap();
        assert!(!rewrite(&mut many[0]));
    }
}
