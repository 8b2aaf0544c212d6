//! Functions whose result size is set by an argument (`repeat('x', n)`,
//! `lpad(s, n)`, `array_repeat(v, n)`, `range(a, b)`) can ask for gigabytes
//! in one call, before any row or memory limit sees a byte. In every
//! session they are replaced by the same function behind a size check.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, IntervalMonthDayNanoArray};
use arrow::compute::kernels::aggregate::{max, min};
use arrow::compute::{cast, kernels::length::length};
use arrow::datatypes::{DataType, FieldRef, IntervalUnit, TimeUnit};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;

/// Largest string one call may make (bytes).
pub const MAX_STRING_BYTES: i64 = 1 << 20;
/// Longest list one call may make (elements).
pub const MAX_LIST_ELEMENTS: i64 = 1 << 20;
/// Most one call may make for a whole batch of rows (8,192 by default):
/// values within the bounds above would otherwise still add up to
/// gigabytes in one batch, before any row or memory limit sees them.
pub const MAX_BATCH_BYTES: i64 = 64 << 20;
pub const MAX_BATCH_ELEMENTS: i64 = 8 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Size {
    /// `repeat(string, count)`: bytes = length × count.
    Repeat,
    /// `lpad`/`rpad(string, length[, fill])`: characters = length.
    Pad,
    /// `array_repeat(element, count)`.
    ListRepeat,
    /// `range`/`generate_series(start, stop[, step])` as a list.
    Series,
}

const BOUNDED: [(&str, Size); 6] = [
    ("repeat", Size::Repeat),
    ("lpad", Size::Pad),
    ("rpad", Size::Pad),
    ("array_repeat", Size::ListRepeat),
    ("range", Size::Series),
    ("generate_series", Size::Series),
];

/// Replaces each size-setting function of `ctx` by its bounded form.
pub fn install(ctx: &SessionContext) {
    for (name, size) in BOUNDED {
        if let Some(inner) = ctx.state().scalar_functions().get(name).cloned() {
            // Volatile, so that a call on constants is not folded into one
            // value at planning and then copied into every row of a batch
            // unchecked (a 1 MiB value in 8,192 rows overflows a string array).
            let signature = Signature {
                volatility: Volatility::Volatile,
                ..inner.signature().clone()
            };
            ctx.register_udf(ScalarUDF::new_from_impl(Bounded { inner, size, signature }));
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Bounded {
    inner: Arc<ScalarUDF>,
    size: Size,
    signature: Signature,
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (asked, limit, batch_limit, unit) = match self.size {
            Size::Repeat => {
                let count = largest(args.args.get(1))?.unwrap_or(0);
                let text = longest_string(args.args.first())?;
                (count.saturating_mul(text), MAX_STRING_BYTES, MAX_BATCH_BYTES, "bytes")
            }
            Size::Pad => (
                largest(args.args.get(1))?.unwrap_or(0),
                MAX_STRING_BYTES,
                MAX_BATCH_BYTES,
                "characters",
            ),
            Size::ListRepeat => (
                largest(args.args.get(1))?.unwrap_or(0),
                MAX_LIST_ELEMENTS,
                MAX_BATCH_ELEMENTS,
                "elements",
            ),
            Size::Series => (
                series_length(&args.args)?,
                MAX_LIST_ELEMENTS,
                MAX_BATCH_ELEMENTS,
                "elements",
            ),
        };
        let name = self.inner.name();
        if asked > limit {
            return plan_err!("{name}() would make {asked} {unit} in one value; at most {limit} are allowed");
        }
        let rows = i64::try_from(args.number_rows).unwrap_or(i64::MAX);
        let batch = asked.saturating_mul(rows);
        if batch > batch_limit {
            return plan_err!(
                "{name}() would make up to {batch} {unit} for {rows} rows at once; at most {batch_limit} are allowed"
            );
        }
        self.inner.invoke_with_args(args)
    }
}

fn as_array(value: &ColumnarValue) -> Result<ArrayRef> {
    Ok(match value {
        ColumnarValue::Array(a) => a.clone(),
        ColumnarValue::Scalar(s) => s.to_array()?,
    })
}

/// The largest value of an integer (or integer-like) argument.
fn largest(value: Option<&ColumnarValue>) -> Result<Option<i64>> {
    extreme(value, true)
}

fn extreme(value: Option<&ColumnarValue>, highest: bool) -> Result<Option<i64>> {
    let Some(value) = value else { return Ok(None) };
    let array = as_array(value)?;
    let numbers = match array.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => cast(&array, &DataType::Int64)?,
        t if t.is_integer() => cast(&array, &DataType::Int64)?,
        _ => return Ok(None),
    };
    let Some(numbers) = numbers.as_any().downcast_ref::<Int64Array>() else {
        return Ok(None);
    };
    Ok(if highest { max(numbers) } else { min(numbers) })
}

fn longest_string(value: Option<&ColumnarValue>) -> Result<i64> {
    let Some(value) = value else { return Ok(0) };
    let array = cast(&as_array(value)?, &DataType::Utf8)?;
    let lengths = cast(&length(&array)?, &DataType::Int64)?;
    Ok(lengths.as_any().downcast_ref::<Int64Array>().and_then(max).unwrap_or(0))
}

/// An upper bound on the elements `range`/`generate_series` would make:
/// the widest span over the smallest step.
fn series_length(args: &[ColumnarValue]) -> Result<i64> {
    let (start, stop) = match args {
        [stop] => (Some(0), largest(Some(stop))?),
        [start, stop, ..] => (extreme(Some(start), false)?, largest(Some(stop))?),
        [] => return Ok(0),
    };
    let (low, high) = match (start, stop) {
        (Some(a), Some(b)) => (a.min(b), a.max(b)),
        _ => return Ok(0),
    };
    let span = i128::from(high) - i128::from(low);
    let step = match args.get(2) {
        None => default_step(args.first().map(ColumnarValue::data_type)),
        Some(step) => smallest_step(step, &args[0].data_type())?,
    };
    Ok(i64::try_from(span / step.max(1)).unwrap_or(i64::MAX))
}

/// A list's default step, in the unit of its start value.
fn default_step(start: Option<DataType>) -> i128 {
    match start {
        Some(DataType::Timestamp(unit, _)) => per_day(unit),
        _ => 1,
    }
}

fn per_day(unit: TimeUnit) -> i128 {
    let seconds = 86_400i128;
    match unit {
        TimeUnit::Second => seconds,
        TimeUnit::Millisecond => seconds * 1_000,
        TimeUnit::Microsecond => seconds * 1_000_000,
        TimeUnit::Nanosecond => seconds * 1_000_000_000,
    }
}

/// The smallest absolute step, in the unit of the start value (days for
/// `Date32`, milliseconds for `Date64`); a month counts as 28 days.
fn smallest_step(step: &ColumnarValue, start: &DataType) -> Result<i128> {
    let array = as_array(step)?;
    if let DataType::Interval(_) = array.data_type() {
        let steps = cast(&array, &DataType::Interval(IntervalUnit::MonthDayNano))?;
        let Some(steps) = steps.as_any().downcast_ref::<IntervalMonthDayNanoArray>() else {
            return Ok(1);
        };
        let nanos_per_day = 86_400_000_000_000i128;
        let smallest = steps
            .iter()
            .flatten()
            .map(|i| {
                (i128::from(i.months) * 28 * nanos_per_day
                    + i128::from(i.days) * nanos_per_day
                    + i128::from(i.nanoseconds))
                .abs()
            })
            .min()
            .unwrap_or(0);
        return Ok(match start {
            DataType::Timestamp(unit, _) => smallest * per_day(*unit) / nanos_per_day,
            DataType::Date64 => smallest / 1_000_000,
            _ => smallest / nanos_per_day,
        });
    }
    let low = extreme(Some(step), false)?.map_or(1, i128::from);
    let high = largest(Some(step))?.map_or(1, i128::from);
    Ok(if low > 0 {
        low
    } else if high < 0 {
        -high
    } else {
        1
    })
}
