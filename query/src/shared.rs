//! WITH queries read more than once, computed once. DataFusion plans a WITH query anew at each
//! place that reads it (apache/datafusion#8777): the dashboard's "What changed" statement,
//! whose WITH queries read each other, scanned the events about a dozen times. PostgreSQL
//! computes a WITH query read more than once a single time and reads its rows at each
//! reference; so do `query` and `serve`, within a memory budget:
//!
//! - innermost first, each such WITH query is run on its own and its rows are kept in memory,
//!   counted in the session's memory pool until the statement's rows are sent ([`Held`]);
//!   every reference then reads those rows;
//! - one whose rows pass what is left of the budget (or that fails on its own, e.g. on a row
//!   a reference's filter would have skipped) is dropped and planned at each reference as
//!   before: the answer is the same either way, only the work differs;
//! - left as written: a WITH query that reads an outer query's columns or holds a parameter
//!   placeholder, any WITH of a recursive statement, and `EXPLAIN` (which must not run them).
//!
//! A reference is a `SubqueryAlias` named as a WITH query of the statement over that query's
//! plan ([`with_names`]), so two subqueries alike are not taken for one. A volatile function
//! (`random()`) in a WITH query computed once gives every reference the same rows, as in
//! PostgreSQL (planned at each reference, each drew its own).

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, MemTable};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, SubqueryAlias};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Query, Statement, Visit, Visitor};
use futures::StreamExt;
use tracing::debug;

/// The memory of a statement's computed WITH queries: keep it until the statement's rows are
/// sent (dropping it returns the memory to the pool).
#[derive(Debug, Default)]
pub struct Held {
    computed: Vec<MemoryReservation>,
    left: usize,
}

impl Held {
    /// The bytes held.
    pub fn size(&self) -> usize {
        self.computed.iter().map(MemoryReservation::size).sum()
    }

    /// How many WITH queries were computed once.
    pub fn count(&self) -> usize {
        self.computed.len()
    }

    /// How many WITH queries read more than once were left to each reference (over budget, or
    /// failing on their own).
    pub fn left(&self) -> usize {
        self.left
    }
}

/// The memory a statement's computed WITH queries may hold: a quarter of the session's memory
/// limit (256 MiB without one).
pub fn budget(ctx: &SessionContext) -> usize {
    match ctx.runtime_env().memory_pool.memory_limit() {
        MemoryLimit::Finite(limit) => limit / 4,
        _ => 256 << 20,
    }
}

/// The names of the WITH queries `statement` defines, anywhere in it, as the planner names
/// them (unquoted names in lower case).
pub fn with_names(statement: &Statement) -> HashSet<String> {
    struct Names(HashSet<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            for cte in query.with.iter().flat_map(|with| &with.cte_tables) {
                let name = &cte.alias.name;
                self.0.insert(if name.quote_style.is_some() { name.value.clone() } else { name.value.to_lowercase() });
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(HashSet::new());
    let _ = statement.visit(&mut names);
    names.0
}

/// `plan` with each WITH query it reads more than once (named in `names`, see [`with_names`])
/// computed once, as far as `budget` bytes hold their rows.
pub async fn compute_shared(
    ctx: &SessionContext,
    names: &HashSet<String>,
    plan: LogicalPlan,
    budget: usize,
) -> Result<(LogicalPlan, Held)> {
    let mut held = Held::default();
    if names.is_empty() || matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return Ok((plan, held));
    }
    // The WITH queries left to each reference, and those computed (now reading their rows).
    let mut settled: HashSet<Key> = HashSet::new();
    let mut plan = plan;
    loop {
        let ctes = references(&plan, names)?;
        if ctes.recursive {
            break;
        }
        let next = ctes.order.iter().find(|key| {
            let seen = &ctes.seen[*key];
            seen.count > 1 && seen.computable && !settled.contains(*key)
        });
        let Some((name, cte)) = next.cloned() else { break };
        match compute(ctx, &cte, budget.saturating_sub(held.size())).await {
            Some((scan, reservation)) => {
                debug!(name, bytes = reservation.size(), "A WITH query read more than once is computed once.");
                held.computed.push(reservation);
                let scan = Arc::new(scan);
                plan = replace(plan, &name, &cte, &scan)?.data;
                settled.insert((name, scan));
            }
            None => {
                debug!(
                    name,
                    "A WITH query read more than once is left to each reference (over budget, or failing on its own)."
                );
                held.left += 1;
                settled.insert((name, cte));
            }
        }
    }
    Ok((plan, held))
}

/// A WITH query: its name and its plan (the planner copies it to each reference).
type Key = (String, Arc<LogicalPlan>);

/// How often a WITH query is read, and whether it can be run on its own.
struct Cte {
    count: usize,
    computable: bool,
}

/// The plan's WITH queries (each reference a `SubqueryAlias` of the WITH query's name over its
/// plan), innermost first in `order`.
struct References {
    seen: HashMap<Key, Cte>,
    order: Vec<Key>,
    recursive: bool,
}

fn references(plan: &LogicalPlan, names: &HashSet<String>) -> Result<References> {
    let mut refs = References { seen: HashMap::new(), order: Vec::new(), recursive: false };
    walk(plan, names, &mut refs)?;
    Ok(refs)
}

/// Whether `plan` can run on its own (no outer column, no placeholder), counting references.
/// A WITH query read again is not walked again: what it reads is read once more only if the
/// WITH query is left to each reference, and then it is not computed on its own either.
fn walk(plan: &LogicalPlan, names: &HashSet<String>, refs: &mut References) -> Result<bool> {
    if let LogicalPlan::SubqueryAlias(alias) = plan {
        // `leaders AS la` is `la` over `leaders`: the reference is the inner one.
        if names.contains(alias.alias.table()) && !matches!(alias.input.as_ref(), LogicalPlan::SubqueryAlias(_)) {
            let key = (alias.alias.table().to_string(), alias.input.clone());
            if let Some(cte) = refs.seen.get_mut(&key) {
                cte.count += 1;
                return Ok(cte.computable);
            }
            refs.seen.insert(key.clone(), Cte { count: 1, computable: false });
            let computable = walk(&alias.input, names, refs)?;
            if let Some(cte) = refs.seen.get_mut(&key) {
                cte.computable = computable;
            }
            refs.order.push(key);
            return Ok(computable);
        }
    }
    refs.recursive |= matches!(plan, LogicalPlan::RecursiveQuery(_));
    let mut computable = !plan.contains_outer_reference();
    plan.apply_expressions(|e| {
        computable &= !e.exists(|e| Ok(matches!(e, Expr::Placeholder(_))))?;
        Ok(TreeNodeRecursion::Continue)
    })?;
    let mut subqueries = Vec::new();
    plan.apply_subqueries(|s| {
        subqueries.push(s.clone());
        Ok(TreeNodeRecursion::Jump)
    })?;
    for child in subqueries.iter().chain(plan.inputs()) {
        computable &= walk(child, names, refs)?;
    }
    Ok(computable)
}

/// Runs `cte` and keeps its rows, each output partition as a partition of the table the
/// references read (the order of their rows, and so of sums over them, as when planned at each
/// reference), or `None` when they pass `budget` (or the pool's room) or it fails on its own.
async fn compute(
    ctx: &SessionContext,
    cte: &Arc<LogicalPlan>,
    budget: usize,
) -> Option<(LogicalPlan, MemoryReservation)> {
    let schema = Arc::new(cte.schema().as_arrow().clone());
    let reservation = MemoryConsumer::new("WITH query computed once").register(&ctx.runtime_env().memory_pool);
    let streams = ctx.execute_logical_plan(cte.as_ref().clone()).await.ok()?.execute_stream_partitioned().await.ok()?;
    let keep = |mut stream: SendableRecordBatchStream| {
        let (schema, reservation) = (schema.clone(), &reservation);
        async move {
            let mut batches = Vec::new();
            while let Some(batch) = stream.next().await {
                let batch = batch?.with_schema(schema.clone())?;
                let size = batch.get_array_memory_size();
                if reservation.size() + size > budget {
                    return Err(DataFusionError::ResourcesExhausted("over the WITH queries' budget".into()));
                }
                reservation.try_grow(size)?;
                batches.push(batch);
            }
            Ok::<_, DataFusionError>(batches)
        }
    };
    // Every partition at once: a repartitioned plan feeds them all from the same inputs.
    let partitions = futures::future::try_join_all(streams.into_iter().map(keep)).await.ok()?;
    let table = MemTable::try_new(schema, partitions).ok()?;
    let scan = LogicalPlanBuilder::scan("with_query", provider_as_source(Arc::new(table)), None).ok()?.build().ok()?;
    Some((scan, reservation))
}

/// `plan` with every reference to the WITH query `name` over `cte` reading `scan`.
fn replace(
    plan: LogicalPlan,
    name: &str,
    cte: &LogicalPlan,
    scan: &Arc<LogicalPlan>,
) -> Result<Transformed<LogicalPlan>> {
    if let LogicalPlan::SubqueryAlias(alias) = &plan {
        if alias.alias.table() == name && alias.input.as_ref() == cte {
            // The reference keeps the schema it was planned with (the columns' functional
            // dependencies too, which the planner may have grouped by).
            let mut computed = SubqueryAlias::try_new(scan.clone(), alias.alias.clone())?;
            computed.schema = alias.schema.clone();
            return Ok(Transformed::yes(LogicalPlan::SubqueryAlias(computed)));
        }
    }
    plan.map_subqueries(|s| replace(s, name, cte, scan))?
        .transform_sibling(|p| p.map_children(|c| replace(c, name, cte, scan)))
}

#[cfg(test)]
mod tests;
