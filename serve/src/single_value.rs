//! `single_value(e)`: the value of a group of one row, null for no row, and PostgreSQL's error
//! for more, as a scalar subquery answers. DataFusion plans a correlated scalar subquery only
//! when it is aggregated; `rewrite.rs` wraps a plain one's value in this aggregate so it runs
//! with the same answer instead of failing (or being answered with a null).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, TypeSignature, Volatility};
use datafusion::prelude::SessionContext;

pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(SingleValue {
        signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
    }));
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleValue {
    signature: Signature,
}

impl AggregateUDFImpl for SingleValue {
    fn name(&self) -> &str {
        "single_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        Ok(args[0].clone())
    }

    fn return_field(&self, args: &[FieldRef]) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(self.name(), args[0].data_type().clone(), true)))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        let empty = ScalarValue::try_from(args.return_field.data_type())?;
        Ok(Box::new(One { value: empty, rows: 0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> DfResult<Vec<FieldRef>> {
        let value = args.return_field.as_ref().clone().with_name(format_state_name(args.name, "value"));
        let rows = Field::new(format_state_name(args.name, "rows"), DataType::UInt64, true);
        Ok(vec![Arc::new(value.with_nullable(true)), Arc::new(rows)])
    }
}

#[derive(Debug)]
struct One {
    value: ScalarValue,
    rows: u64,
}

impl One {
    fn add(&mut self, values: &ArrayRef, rows: &[u64]) -> DfResult<()> {
        for (i, &n) in rows.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if self.rows == 0 {
                self.value = ScalarValue::try_from_array(values, i)?;
            }
            self.rows += n;
        }
        if self.rows > 1 {
            return exec_err!("more than one row returned by a subquery used as an expression");
        }
        Ok(())
    }
}

impl Accumulator for One {
    fn update_batch(&mut self, values: &[ArrayRef]) -> DfResult<()> {
        let ones = vec![1; values[0].len()];
        self.add(&values[0], &ones)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> DfResult<()> {
        let Some(rows) = states[1].as_any().downcast_ref::<UInt64Array>() else {
            return exec_err!("single_value: its state's row count is not UInt64");
        };
        let rows: Vec<u64> = (0..rows.len()).map(|i| if rows.is_valid(i) { rows.value(i) } else { 0 }).collect();
        self.add(&states[0], &rows)
    }

    fn state(&mut self) -> DfResult<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), ScalarValue::UInt64(Some(self.rows))])
    }

    fn evaluate(&mut self) -> DfResult<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() - std::mem::size_of_val(&self.value)
    }
}
