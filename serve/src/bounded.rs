//! Functions whose result can be far larger than their arguments (`range(0, 400000000)` is a
//! 3 GB array from a 30-byte call) allocate outside DataFusion's memory pool. Each is wrapped:
//! before it runs, the size of what it would build for the batch is estimated from its
//! arguments, and past one query's share of memory the statement fails with SQLSTATE 54000
//! instead of allocating. They are volatile, so never folded into a constant at planning
//! (whose copies to every row of a batch no check would see).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::execution::registry::FunctionRegistry;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::prelude::SessionContext;

/// How a function's result grows with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `range`/`generate_series(start, stop[, step])`: (stop - start) / step elements of 8 bytes.
    Series,
    /// `repeat(s, n)`: s × n.
    Repeat,
    /// `lpad`/`rpad(s, n[, fill])`: n characters of up to 4 bytes.
    Pad,
    /// `array_repeat(v, n)`: v × n.
    ArrayRepeat,
    /// `array_resize(a, n[, v])`: n elements.
    Resize,
    /// `replace(s, from, to)`: every `from` in s becomes `to`.
    Replace,
    /// `regexp_replace(s, pattern, to[, flags])`: at worst every position of s becomes `to`.
    RegexpReplace,
    /// `concat`, `concat_ws`, `array_concat`: the sum of the arguments.
    Sum,
}

const WRAPPED: &[(&str, Growth)] = &[
    ("range", Growth::Series),
    ("generate_series", Growth::Series),
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("array_repeat", Growth::ArrayRepeat),
    ("array_resize", Growth::Resize),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("concat", Growth::Sum),
    ("concat_ws", Growth::Sum),
    ("array_concat", Growth::Sum),
];

/// Replaces each function above in `ctx` by its bounded form: a call may build at most
/// `limit` bytes, and holds what it builds in `server` (the server's pool) while it runs, so
/// calls of many queries at once cannot add up past the server's limit either.
pub fn register(ctx: &SessionContext, limit: usize, server: Arc<dyn MemoryPool>) {
    for (name, growth) in WRAPPED {
        if let Ok(inner) = ctx.udf(name) {
            let inner = inner.inner().clone();
            let server = server.clone();
            // Volatile: never folded into a constant at planning, where its result would be
            // copied to every row of a batch without passing through here again.
            let mut signature = inner.signature().clone();
            signature.volatility = Volatility::Volatile;
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded { inner, growth: *growth, limit, server, signature }));
        }
    }
}

#[derive(Debug)]
struct Bounded {
    inner: Arc<dyn ScalarUDFImpl>,
    growth: Growth,
    limit: usize,
    server: Arc<dyn MemoryPool>,
    signature: Signature,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name() == other.inner.name() && self.limit == other.limit
    }
}

impl Eq for Bounded {}

impl Hash for Bounded {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
        self.limit.hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn schema_name(&self, args: &[Expr]) -> DfResult<String> {
        self.inner.schema_name(args)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }
    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let bytes = match self.growth {
            Growth::Sum => args
                .args
                .iter()
                .map(|a| match a {
                    ColumnarValue::Array(a) => a.get_array_memory_size() as u128,
                    ColumnarValue::Scalar(v) => v.size() as u128 * args.number_rows as u128,
                })
                .sum(),
            growth => {
                let one = estimate(growth, &ColumnarValue::values_to_arrays(&args.args)?);
                // Constant arguments build one value, copied to every row of the batch.
                let scalars = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
                if scalars {
                    one.saturating_mul(args.number_rows.max(1) as u128)
                } else {
                    one
                }
            }
        };
        if bytes > self.limit as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would build about {bytes} bytes, more than a query's share of memory ({} bytes, \
                 connaudit serve --query-memory-limit); ask for less",
                self.inner.name(),
                self.limit
            )));
        }
        let held = MemoryConsumer::new(self.inner.name()).register(&self.server);
        held.try_grow(bytes as usize).map_err(|_| {
            DataFusionError::ResourcesExhausted(format!(
                "{}() would build about {bytes} bytes and the server's memory (--memory-limit) is taken by \
                 other queries; try again",
                self.inner.name()
            ))
        })?;
        self.inner.invoke_with_args(args)
    }
}

/// Bytes the call would build over every row of `args`; an argument that cannot be read as a
/// number counts as 0 (the function itself then refuses it).
fn estimate(growth: Growth, args: &[ArrayRef]) -> u128 {
    let rows = args.first().map_or(0, |a| a.len());
    let arg = |i: usize, row: usize| args.get(i).and_then(|a| ScalarValue::try_from_array(a, row).ok());
    let number = |i: usize, row: usize| arg(i, row).and_then(|v| units(&v)).unwrap_or(0).max(0) as u128;
    let text = |i: usize, row: usize| args.get(i).map_or(0, |a| text_len(a, row)) as u128;
    let row_values =
        |row: usize| args.iter().filter_map(|a| ScalarValue::try_from_array(a, row).ok()).collect::<Vec<_>>();
    let mut total: u128 = 0;
    for row in 0..rows {
        total = total.saturating_add(match growth {
            Growth::Series => series_len(&row_values(row)).saturating_mul(8),
            Growth::Repeat => text(0, row).saturating_mul(number(1, row)),
            Growth::Pad => number(1, row).saturating_mul(4),
            Growth::ArrayRepeat => element_size(&args[0]).saturating_mul(number(1, row)),
            Growth::Resize => number(1, row).saturating_mul(16),
            Growth::Replace => (text(0, row) / text(1, row).max(1) + 1).saturating_mul(text(2, row)) + text(0, row),
            Growth::RegexpReplace => (text(0, row) + 1).saturating_mul(text(2, row)) + text(0, row),
            Growth::Sum => args.iter().map(|a| a.get_array_memory_size() as u128).sum::<u128>() / rows.max(1) as u128,
        });
    }
    total
}

/// Elements of `range`/`generate_series` for one row's (start, stop[, step]) or (stop).
fn series_len(values: &[ScalarValue]) -> u128 {
    let numbers: Vec<i128> = values.iter().filter_map(units).collect();
    if numbers.len() != values.len() {
        return 0;
    }
    let (start, stop, step) = match numbers[..] {
        [stop] => (0, stop, 1),
        [start, stop] => (start, stop, 1),
        [start, stop, step, ..] => (start, stop, step),
        [] => return 0,
    };
    if step == 0 {
        return 0;
    }
    ((stop - start) / step).max(0) as u128 + 1
}

/// A number, or a date, time or interval in nanoseconds (an interval's month as 30 days).
fn units(value: &ScalarValue) -> Option<i128> {
    const DAY: i128 = 86_400_000_000_000;
    Some(match value {
        ScalarValue::Int8(Some(v)) => *v as i128,
        ScalarValue::Int16(Some(v)) => *v as i128,
        ScalarValue::Int32(Some(v)) => *v as i128,
        ScalarValue::Int64(Some(v)) => *v as i128,
        ScalarValue::UInt8(Some(v)) => *v as i128,
        ScalarValue::UInt16(Some(v)) => *v as i128,
        ScalarValue::UInt32(Some(v)) => *v as i128,
        ScalarValue::UInt64(Some(v)) => *v as i128,
        ScalarValue::Date32(Some(d)) => *d as i128 * DAY,
        ScalarValue::Date64(Some(ms)) => *ms as i128 * 1_000_000,
        ScalarValue::TimestampSecond(Some(t), _) => *t as i128 * 1_000_000_000,
        ScalarValue::TimestampMillisecond(Some(t), _) => *t as i128 * 1_000_000,
        ScalarValue::TimestampMicrosecond(Some(t), _) => *t as i128 * 1_000,
        ScalarValue::TimestampNanosecond(Some(t), _) => *t as i128,
        ScalarValue::IntervalYearMonth(Some(m)) => *m as i128 * 30 * DAY,
        ScalarValue::IntervalDayTime(Some(v)) => v.days as i128 * DAY + v.milliseconds as i128 * 1_000_000,
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            v.months as i128 * 30 * DAY + v.days as i128 * DAY + v.nanoseconds as i128
        }
        _ => return None,
    })
}

fn text_len(array: &ArrayRef, row: usize) -> usize {
    if array.is_null(row) {
        return 0;
    }
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).len(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).len(),
        DataType::Utf8View => array.as_string_view().value(row).len(),
        _ => 0,
    }
}

/// The average size of one value of `array`, at least 8 bytes.
fn element_size(array: &ArrayRef) -> u128 {
    (array.get_array_memory_size() / array.len().max(1)).max(8) as u128
}
