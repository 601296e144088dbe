//! `FROM unnest(a) x`: PostgreSQL names the column of a one-column table function after its
//! alias (psql's `\d+` selects `'toast.' || x` from it); DataFusion names it `UNNEST(a)`. The
//! alias is given the column's name too, as `unnest(a) AS x(x)`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Statement, TableAliasColumnDef, TableFactor, VisitMut, VisitorMut};

/// Names the columns of `unnest`s in `statement`; whether it did.
pub fn rewrite(statement: &mut Statement) -> bool {
    let mut visitor = Name(false);
    let _ = statement.visit(&mut visitor);
    visitor.0
}

struct Name(bool);

impl VisitorMut for Name {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let alias = match factor {
            TableFactor::UNNEST {
                alias: Some(alias), array_exprs, with_offset: false, with_ordinality: false, ..
            } if array_exprs.len() == 1 => alias,
            TableFactor::Table { name, args: Some(args), alias: Some(alias), .. }
                if args.args.len() == 1
                    && name.0.last().is_some_and(|p| p.to_string().eq_ignore_ascii_case("unnest")) =>
            {
                alias
            }
            _ => return ControlFlow::Continue(()),
        };
        if alias.columns.is_empty() {
            alias.columns = vec![TableAliasColumnDef::from_name(alias.name.value.clone())];
            self.0 = true;
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn an_unnest_names_its_column_after_its_alias() {
        let sql = "SELECT 'toast.' || x FROM pg_catalog.unnest(tc.reloptions) x";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
        assert!(rewrite(&mut statement));
        assert!(statement.to_string().contains("x (x)") || statement.to_string().contains("x(x)"), "{statement}");
        let mut named =
            Parser::parse_sql(&PostgreSqlDialect {}, "SELECT v FROM unnest(a) AS t(v)").unwrap().pop().unwrap();
        assert!(!rewrite(&mut named));
    }
}
