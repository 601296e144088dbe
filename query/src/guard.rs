//! The read-only guard that `connaudit query` and `connaudit serve` share: which statements
//! only read, and how to name a refused one.

use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement};

/// Queries (with no data-modifying part), EXPLAIN of those, DESCRIBE and SHOW.
pub fn reads_only(statement: &Statement) -> bool {
    match statement {
        Statement::Query(q) => query_reads_only(q),
        Statement::Explain { statement, .. } => reads_only(statement),
        Statement::ExplainTable { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowSchemas { .. } => true,
        _ => false,
    }
}

/// A query none of whose parts (common table expressions, set operations, subqueries in
/// FROM) is an INSERT, UPDATE, DELETE or MERGE.
fn query_reads_only(q: &Query) -> bool {
    q.with.as_ref().is_none_or(|w| w.cte_tables.iter().all(|c| query_reads_only(&c.query))) && body_reads_only(&q.body)
}

fn body_reads_only(body: &SetExpr) -> bool {
    match body {
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => true,
        SetExpr::Query(q) => query_reads_only(q),
        SetExpr::SetOperation { left, right, .. } => body_reads_only(left) && body_reads_only(right),
        _ => false,
    }
}

/// What to name in a read-only refusal: `CREATE VIEW`, `DROP TABLE`, `INSERT`, `COPY`, `SET`.
pub fn first_words(statement: &str) -> String {
    let words: Vec<String> = statement.split_whitespace().take(2).map(|w| w.to_ascii_uppercase()).collect();
    match words.first().map(String::as_str) {
        Some("CREATE" | "DROP" | "ALTER") => words.join(" "),
        Some("WITH") => "a data-modifying WITH".to_string(),
        Some(w) => w.to_string(),
        None => "this statement".into(),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    fn parse(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().remove(0)
    }

    #[test]
    fn reads_pass_and_writes_are_refused() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a UNION SELECT 2",
            "EXPLAIN SELECT * FROM events",
            "SHOW TABLES",
            "SHOW search_path",
        ] {
            assert!(reads_only(&parse(sql)), "{sql}");
        }
        for sql in [
            "INSERT INTO events VALUES (1)",
            "UPDATE events SET clientid = 'x'",
            "DELETE FROM events",
            "CREATE TABLE t AS SELECT 1",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE events",
            "ALTER TABLE events ADD COLUMN x INT",
            "COPY events TO '/tmp/x'",
            "EXPLAIN ANALYZE INSERT INTO events VALUES (1)",
            "WITH d AS (DELETE FROM events RETURNING *) SELECT * FROM d",
            "TRUNCATE events",
            "SET x = 1",
        ] {
            assert!(!reads_only(&parse(sql)), "{sql}");
        }
    }

    #[test]
    fn names_the_refused_statement() {
        assert_eq!(first_words("insert into events values (1)"), "INSERT");
        assert_eq!(first_words("SET datafusion.x = 1"), "SET");
        assert_eq!(first_words("create view v as select 1"), "CREATE VIEW");
    }
}
