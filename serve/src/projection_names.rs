//! A projection that names two columns alike (pgjdbc's `getProcedures` selects
//! `NULL, NULL, NULL` unaliased): PostgreSQL answers with both, DataFusion refuses to plan it.
//! Each later column of a name already taken gets an alias of its own (`"?column?"`, as
//! PostgreSQL names an unnamed column, then `"?column?2"`, ...); a client reads such columns by
//! position, if at all.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, VisitorMut};

/// Gives the repeated columns of every projection their own names; `.0` says whether it did.
pub struct Unique(pub bool);

impl VisitorMut for Unique {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.0 |= unique(&mut query.body);
        ControlFlow::Continue(())
    }
}

fn unique(body: &mut SetExpr) -> bool {
    match body {
        SetExpr::Select(select) => {
            let mut taken = HashSet::new();
            let mut changed = false;
            for item in &mut select.projection {
                let name = match item {
                    SelectItem::UnnamedExpr(Expr::Identifier(i)) => i.value.clone(),
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                        p.last().map(|i| i.value.clone()).unwrap_or_default()
                    }
                    SelectItem::UnnamedExpr(e) => e.to_string(),
                    SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
                    _ => continue,
                };
                if taken.insert(name) {
                    continue;
                }
                if let SelectItem::UnnamedExpr(e) = item {
                    let alias = (1..).map(|n| if n == 1 { "?column?".to_string() } else { format!("?column?{n}") });
                    let alias = alias.into_iter().find(|a| !taken.contains(a)).unwrap_or_default();
                    taken.insert(alias.clone());
                    let expr = std::mem::replace(e, Expr::value(datafusion::sql::sqlparser::ast::Value::Null));
                    *item = SelectItem::ExprWithAlias { expr, alias: Ident::with_quote('"', alias) };
                    changed = true;
                }
            }
            changed
        }
        SetExpr::SetOperation { left, right, .. } => unique(left) | unique(right),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::ast::VisitMut;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    use super::*;

    #[test]
    fn repeated_columns_get_names_of_their_own() {
        let sql = "SELECT NULL AS a, n.nspname, NULL, NULL, NULL, x FROM t";
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap().pop().unwrap();
        let mut visitor = Unique(false);
        let _ = statement.visit(&mut visitor);
        assert!(visitor.0);
        assert_eq!(
            statement.to_string(),
            "SELECT NULL AS a, n.nspname, NULL, NULL AS \"?column?\", NULL AS \"?column?2\", x FROM t"
        );
        let mut plain = Parser::parse_sql(&PostgreSqlDialect {}, "SELECT a, b FROM t").unwrap().pop().unwrap();
        let mut visitor = Unique(false);
        let _ = plain.visit(&mut visitor);
        assert!(!visitor.0);
    }
}
