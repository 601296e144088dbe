//! The `||` operator on strings, planned as a function that is bounded like the others of
//! `bounded.rs`: as an operator it builds its result outside the memory pool, and a chain of
//! CTEs each doubling a string with `s || s` grows it 2^k times in a short statement.

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::concat_elements::concat_elements_dyn;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{DFSchema, DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

/// Plans `string || string` as [`ConcatOp`].
#[derive(Debug)]
pub struct Planner {
    udf: Arc<ScalarUDF>,
}

impl Planner {
    pub fn new(limit: usize, server: Arc<dyn MemoryPool>) -> Self {
        let op = ConcatOp { signature: Signature::any(2, Volatility::Volatile), limit, server };
        Planner { udf: Arc::new(ScalarUDF::new_from_impl(op)) }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl ExprPlanner for Planner {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> DfResult<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::StringConcat {
            return Ok(PlannerResult::Original(expr));
        }
        let (left, right) = (expr.left.get_type(schema)?, expr.right.get_type(schema)?);
        if !(is_text(&left) && is_text(&right)) {
            return Ok(PlannerResult::Original(expr));
        }
        Ok(PlannerResult::Planned(self.udf.call(vec![expr.left, expr.right])))
    }
}

/// `a || b` of two strings: NULL if either is, else the two joined; refused past `limit`.
#[derive(Debug)]
struct ConcatOp {
    signature: Signature,
    limit: usize,
    server: Arc<dyn MemoryPool>,
}

impl PartialEq for ConcatOp {
    fn eq(&self, other: &Self) -> bool {
        self.limit == other.limit
    }
}

impl Eq for ConcatOp {}

impl std::hash::Hash for ConcatOp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.limit.hash(state);
    }
}

impl ScalarUDFImpl for ConcatOp {
    fn name(&self) -> &str {
        "string_concat"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(if args.contains(&DataType::LargeUtf8) {
            DataType::LargeUtf8
        } else if args.contains(&DataType::Utf8View) {
            DataType::Utf8View
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalars = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let to = args.return_field.data_type().clone();
        let mut bytes: u128 = arrays.iter().map(|a| a.get_array_memory_size() as u128).sum();
        if scalars {
            bytes = bytes.saturating_mul(args.number_rows.max(1) as u128);
        }
        if bytes > self.limit as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "|| would build about {bytes} bytes, more than a query's share of memory ({} bytes, \
                 connaudit serve --query-memory-limit); ask for less",
                self.limit
            )));
        }
        let held = MemoryConsumer::new("string_concat").register(&self.server);
        held.try_grow(bytes as usize).map_err(|_| {
            DataFusionError::ResourcesExhausted(
                "|| and the server's memory (--memory-limit) is taken by other queries; try again".into(),
            )
        })?;
        let (left, right) = (cast(&arrays[0], &to)?, cast(&arrays[1], &to)?);
        let joined = concat_elements_dyn(&left, &right)?;
        Ok(if scalars {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&joined, 0)?)
        } else {
            ColumnarValue::Array(joined)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn strings_join_with_nulls_as_the_operator_does_and_doubling_stops_at_the_limit() {
        let mut state = SessionContext::new().state();
        datafusion::execution::registry::FunctionRegistry::register_expr_planner(
            &mut state,
            Arc::new(Planner::new(1 << 20, Arc::new(GreedyMemoryPool::new(1 << 30)))),
        )
        .unwrap();
        let ctx = SessionContext::new_with_state(state);
        let batches = ctx
            .sql("SELECT 'a' || s AS j, s || NULL AS n, 'x' || 1 AS mixed FROM (VALUES ('b'), ('c')) t(s)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let j = batches[0].column(0);
        let j = datafusion::arrow::compute::cast(j, &DataType::Utf8).unwrap();
        assert_eq!(j.as_string::<i32>().iter().collect::<Vec<_>>(), [Some("ab"), Some("ac")]);
        assert_eq!(batches[0].column(1).null_count(), 2);
        let doubling = "WITH a0 AS (SELECT repeat('x', 100000) AS s), a1 AS (SELECT s || s AS s FROM a0), \
             a2 AS (SELECT s || s AS s FROM a1), a3 AS (SELECT s || s AS s FROM a2), \
             a4 AS (SELECT s || s AS s FROM a3) SELECT length(s) FROM a4";
        let err = ctx.sql(doubling).await.unwrap().collect().await.unwrap_err();
        assert!(err.to_string().contains("query-memory-limit"), "{err}");
    }
}
