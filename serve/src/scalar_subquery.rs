//! A plain scalar subquery, `(SELECT e FROM t WHERE ...)`, made into one DataFusion plans with
//! the same answer:
//! - its value becomes `single_value(e)` (DataFusion decorrelates only aggregated subqueries);
//! - a condition of its `WHERE` on the outer row alone (`WHERE a.atthasdef AND d.adrelid =
//!   a.attrelid`, as SQLAlchemy writes) moves out: `CASE WHEN a.atthasdef THEN (SELECT ...)
//!   END`, which is null where the condition does not hold, as the subquery's no row was;
//! - it is parenthesised once more, so `datafusion-pg-catalog`'s rule that answers every
//!   correlated subquery of a projection with a null no longer takes it for one.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, BinaryOperator, CaseWhen, Expr, GroupByExpr, Query, SelectItem, SetExpr,
    TableFactor, TableWithJoins, Value,
};

use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;

use crate::expr::call;

/// The most text of a subquery, and the most of its columns, copied into the value.
const MAX_COPIED: usize = 8 * 1024;
const MAX_COLUMNS: usize = 16;

/// The columns of the subquery's own relations `expr` names, each once.
fn own_columns(expr: &Expr, own: &[String]) -> Vec<Expr> {
    let mut columns = Vec::new();
    let _ = visit_expressions(expr, |e| {
        if let Expr::CompoundIdentifier(parts) = e {
            let qualifier = parts.len().checked_sub(2).map(|i| parts[i].value.to_ascii_lowercase());
            if qualifier.is_some_and(|q| own.contains(&q)) && !columns.contains(e) {
                columns.push(e.clone());
            }
        }
        ControlFlow::<()>::Continue(())
    });
    columns
}

/// Whether `query` holds a subquery of its own.
fn holds_subquery(query: &Query) -> bool {
    let mut found = false;
    let _ = visit_expressions(query, |e| {
        found |= matches!(e, Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. });
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The expression to put in place of `(query)`, or `None` when it needs nothing (aggregated,
/// grouped, limited, or not a single `SELECT` of one value).
pub fn single_valued(query: &mut Query) -> Option<Expr> {
    if query.limit_clause.is_some() || query.fetch.is_some() {
        return None;
    }
    let small = query.to_string().len() <= MAX_COPIED && !holds_subquery(query);
    let SetExpr::Select(select) = query.body.as_mut() else { return None };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.distinct.is_some() || select.having.is_some() || select.projection.len() != 1 {
        return None;
    }
    let value = match &mut select.projection[0] {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    if aggregated(value) {
        return None;
    }
    let own = names(&select.from);
    // The conditions of the WHERE on the outer row alone move out of the subquery. One that
    // compares an outer and an own column other than by `=` is left to the engine as written:
    // DataFusion cannot decorrelate it, and moving it into the value would make it group the
    // cross product of the relations (psql's collation lookup: 540,000 groups, a gigabyte).
    let mut outer = None;
    if let (Some(own), Some(selection)) = (&own, select.selection.take()) {
        let conditions = conjuncts(selection);
        let unplannable = |c: &Expr| reads_own(c, own) && !outer_free(c, own) && !equi_join(c, own);
        if conditions.iter().any(unplannable) {
            select.selection = all(conditions);
            return None;
        }
        let (hoisted, kept): (Vec<Expr>, Vec<Expr>) = conditions.into_iter().partition(|c| !reads_own(c, own));
        select.selection = all(kept);
        outer = all(hoisted);
    }
    // A value that reads the outer row too: the subquery gives its own columns as a struct,
    // and the value is computed outside from the struct's fields and the outer row. The
    // subquery is copied once per column, so only a small one without subqueries of its own
    // (a hostile client cannot make a statement grow past a few times its size).
    let outside = match &own {
        Some(own) if small && !outer_free(value, own) && qualified(value) => {
            let columns = own_columns(value, own);
            if columns.len() > MAX_COLUMNS {
                None
            } else {
                let mut fields = vec![text("present"), Expr::value(Value::Boolean(true))];
                for (i, column) in columns.iter().enumerate() {
                    fields.extend([text(&format!("c{i}")), column.clone()]);
                }
                let computed = std::mem::replace(value, call("named_struct", fields));
                Some((computed, columns))
            }
        }
        _ => None,
    };
    let inner = std::mem::replace(value, Expr::value(Value::Null));
    *value = call("single_value", vec![inner]);
    let subquery = Expr::Nested(Box::new(Expr::Subquery(Box::new(query.clone()))));
    let result = match outside {
        None => subquery,
        Some((mut computed, columns)) => {
            let _ = visit_expressions_mut(&mut computed, |e| {
                if let Some(i) = columns.iter().position(|c| c == e) {
                    *e = call("get_field", vec![subquery.clone(), text(&format!("c{i}"))]);
                }
                ControlFlow::<()>::Continue(())
            });
            when(Expr::IsNotNull(Box::new(subquery.clone())), computed)
        }
    };
    Some(match outer {
        Some(condition) => when(condition, result),
        None => result,
    })
}

fn when(condition: Expr, result: Expr) -> Expr {
    Expr::Case {
        case_token: AttachedToken::empty(),
        end_token: AttachedToken::empty(),
        operand: None,
        conditions: vec![CaseWhen { condition, result }],
        else_result: None,
    }
}

fn text(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}

/// Whether `expr` calls an aggregate (then the subquery is one row already).
fn aggregated(expr: &Expr) -> bool {
    const AGGREGATES: &[&str] = &[
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "array_agg",
        "string_agg",
        "bool_and",
        "bool_or",
        "every",
        "json_agg",
        "single_value",
    ];
    let mut found = false;
    let _ = visit_expressions(expr, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.0.last().map(|p| p.to_string().to_ascii_lowercase()).unwrap_or_default();
            found |= AGGREGATES.contains(&name.as_str()) && f.over.is_none();
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// The names the subquery's own relations go by (alias, else the table's name), or `None`
/// when one of them has no name to tell its columns by.
fn names(from: &[TableWithJoins]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for table in from {
        for factor in std::iter::once(&table.relation).chain(table.joins.iter().map(|j| &j.relation)) {
            let name = match factor {
                TableFactor::Table { alias: Some(alias), .. } | TableFactor::Derived { alias: Some(alias), .. } => {
                    alias.name.value.clone()
                }
                TableFactor::Table { name, alias: None, .. } => name.0.last()?.to_string(),
                _ => return None,
            };
            names.push(name.to_ascii_lowercase());
        }
    }
    Some(names)
}

fn conjuncts(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        Expr::Nested(inner) if matches!(*inner, Expr::BinaryOp { op: BinaryOperator::And, .. }) => conjuncts(*inner),
        other => vec![other],
    }
}

fn all(conditions: Vec<Expr>) -> Option<Expr> {
    conditions.into_iter().reduce(|left, right| Expr::BinaryOp {
        left: Box::new(left),
        op: BinaryOperator::And,
        right: Box::new(right),
    })
}

/// Whether every column `expr` names is qualified (so its scope is known) and it holds no
/// subquery.
fn qualified(expr: &Expr) -> bool {
    all_columns(expr, |qualifier| qualifier.is_some())
}

/// Whether `condition` is `own = outer` (either way round), which DataFusion decorrelates.
fn equi_join(condition: &Expr, own: &[String]) -> bool {
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = condition else { return false };
    let outer_side = |e: &Expr| !reads_own(e, own);
    (outer_free(left, own) && outer_side(right)) || (outer_free(right, own) && outer_side(left))
}

/// Whether `expr` reads no column of the outer row: every column it names is qualified by one
/// of the subquery's own relations, and it holds no subquery of its own.
fn outer_free(expr: &Expr, own: &[String]) -> bool {
    all_columns(expr, |qualifier| qualifier.is_some_and(|q| own.contains(&q)))
}

/// Whether `expr` names a column of the subquery's own relations (or one it cannot tell).
fn reads_own(expr: &Expr, own: &[String]) -> bool {
    !all_columns(expr, |qualifier| qualifier.is_some_and(|q| !own.contains(&q)))
}

/// Whether every column `expr` names passes `check` (given its qualifier, lower-cased), and it
/// holds no subquery.
fn all_columns(expr: &Expr, check: impl Fn(Option<String>) -> bool) -> bool {
    let mut pass = true;
    let _ = visit_expressions(expr, |e| {
        match e {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => pass = false,
            Expr::Identifier(_) => pass &= check(None),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                pass &= check(Some(parts[parts.len() - 2].value.to_ascii_lowercase()));
            }
            _ => {}
        }
        if pass {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    pass
}
