//! WITH queries read more than once: computed once within the budget and counted in the
//! memory pool while held, planned at each reference otherwise; the answer the same either way.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::config::Dialect;
use datafusion::error::Result;
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;

use super::{compute_shared, with_names, Held};

/// `c` read twice, under two names.
const TWICE: &str = "WITH c AS (SELECT x % 7 AS k, count(*) AS n, sum(x) AS s FROM t GROUP BY x % 7) \
     SELECT a.k, a.n, b.s FROM c AS a JOIN c AS b ON a.k = b.k + 1 ORDER BY a.k";

/// A session of 4 partitions over `t` (x = 1..10,000) with a pool of 64 MiB.
async fn session() -> Result<SessionContext> {
    let pool = Arc::new(GreedyMemoryPool::new(64 << 20));
    let runtime = RuntimeEnvBuilder::new().with_memory_pool(pool).build_arc()?;
    let ctx = SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(4), runtime);
    ctx.sql("CREATE TABLE t AS SELECT value AS x FROM generate_series(1, 10000)").await?.collect().await?;
    Ok(ctx)
}

/// `sql` planned, with its WITH queries computed within `budget`.
async fn plan(ctx: &SessionContext, sql: &str, budget: usize) -> Result<(LogicalPlan, Held)> {
    let statement = ctx.state().sql_to_statement(sql, &Dialect::PostgreSQL)?;
    let names = match &statement {
        DfStatement::Statement(s) => with_names(s),
        _ => HashSet::new(),
    };
    let plan = ctx.state().statement_to_plan(statement).await?;
    compute_shared(ctx, &names, plan, budget).await
}

/// `sql`'s answer with its WITH queries computed within `budget`, and what they hold.
async fn answer(ctx: &SessionContext, sql: &str, budget: usize) -> Result<(String, Held)> {
    let (plan, held) = plan(ctx, sql, budget).await?;
    let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
    Ok((pretty_format_batches(&batches)?.to_string(), held))
}

#[tokio::test]
async fn a_with_query_read_twice_is_computed_once_and_held_in_the_pool() -> Result<()> {
    let ctx = session().await?;
    let (planned, none) = answer(&ctx, TWICE, 0).await?;
    assert_eq!((none.count(), none.size()), (0, 0), "over a budget of 0 bytes: planned at each reference");
    let (computed, held) = answer(&ctx, TWICE, 1 << 20).await?;
    assert_eq!(held.count(), 1);
    assert!(held.size() > 0);
    assert_eq!(computed, planned);
    assert_eq!(computed.lines().count(), 6 + 4, "k 1..6 each with the k before it: {computed}");
    // Its rows are the pool's until the statement's rows are sent.
    assert!(ctx.runtime_env().memory_pool.reserved() >= held.size());
    drop(held);
    assert_eq!(ctx.runtime_env().memory_pool.reserved(), 0);
    Ok(())
}

#[tokio::test]
async fn with_queries_reading_each_other_are_computed_innermost_first() -> Result<()> {
    let ctx = session().await?;
    let sql = "WITH c AS (SELECT x % 5 AS k, count(*) AS n FROM t GROUP BY x % 5), \
                    d AS (SELECT a.k, a.n + b.n AS n FROM c AS a JOIN c AS b ON a.k = b.k) \
               SELECT d1.k, d1.n, d2.n AS m FROM d AS d1 JOIN d AS d2 ON d1.k = d2.k ORDER BY d1.k";
    let (planned, _) = answer(&ctx, sql, 0).await?;
    let (computed, held) = answer(&ctx, sql, 1 << 20).await?;
    assert_eq!(held.count(), 2, "c, then d over c's rows");
    assert_eq!(computed, planned);
    assert!(computed.contains("| 0 | 4000 | 4000 |"), "{computed}");
    Ok(())
}

#[tokio::test]
async fn read_once_recursive_parameters_and_explain_are_left_as_planned() -> Result<()> {
    let ctx = session().await?;
    let left = [
        "WITH c AS (SELECT x FROM t WHERE x < 10) SELECT count(*) FROM c",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) \
         SELECT a.n FROM r AS a JOIN r AS b ON a.n = b.n",
        "WITH c AS (SELECT x FROM t WHERE x < $1) SELECT a.x FROM c AS a JOIN c AS b ON a.x = b.x",
        &format!("EXPLAIN {TWICE}"),
        "SELECT c.x FROM (SELECT x FROM t) AS c JOIN (SELECT x FROM t) AS d ON c.x = d.x",
    ];
    for sql in left {
        let (_, held) = plan(&ctx, sql, 1 << 20).await?;
        assert_eq!(held.count(), 0, "{sql}");
    }
    Ok(())
}

#[tokio::test]
async fn a_volatile_with_query_reads_the_same_rows_at_each_reference_and_subqueries_alike_do_not() -> Result<()> {
    let ctx = session().await?;
    // As in PostgreSQL: a WITH query is one set of rows however often it is read...
    let (same, held) =
        answer(&ctx, "WITH c AS (SELECT random() AS r) SELECT a.r = b.r AS same FROM c AS a, c AS b", 1 << 20).await?;
    assert_eq!(held.count(), 1);
    assert!(same.contains("| true "), "{same}");
    // ...and two subqueries written alike are two.
    let sql = "WITH one AS (SELECT 1 AS n) SELECT a.r = b.r AS same \
               FROM (SELECT random() AS r) AS a, (SELECT random() AS r) AS b, one";
    let (differ, held) = answer(&ctx, sql, 1 << 20).await?;
    assert_eq!(held.count(), 0);
    assert!(differ.contains("| false "), "{differ}");
    Ok(())
}
