//! Outcomes at a horizon: the status some calendar months after a
//! participant's enrolment or exit, rather than "ever, up to the as-of
//! date". A participant counts once their horizon day has come by the
//! as-of date; the rest are "not yet due". The same rows are SQL's
//! `horizons(months, 'enrolment' | 'exit')` (queries/sql/catalog/horizons.sql),
//! over whatever the session's catalog lets its user see, and `add_months`
//! is there for anyone's own horizons.

use std::fmt;
use std::str::FromStr;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, Date32Array, Int64Array};
use arrow::datatypes::DataType;
use chrono::NaiveDate;
use datafusion::catalog::TableFunctionImpl;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

use crate::computed_once::ComputedOnce;
use crate::{QueryError, Snapshot};

/// The rows behind every horizon metric, as a prepared statement of the
/// months and the anchor.
const HORIZONS: &str = include_str!("../sql/catalog/horizons.sql");

/// Longest horizon asked for: 50 years.
pub const MAX_MONTHS: u32 = 600;

/// What a horizon is counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    Enrolment,
    Exit,
}

impl FromStr for Anchor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "enrolment" => Ok(Anchor::Enrolment),
            "exit" => Ok(Anchor::Exit),
            _ => Err(format!("{text:?} is not an anchor: `enrolment` or `exit`")),
        }
    }
}

impl Anchor {
    pub fn as_str(self) -> &'static str {
        match self {
            Anchor::Enrolment => "enrolment",
            Anchor::Exit => "exit",
        }
    }
}

/// A horizon: `months` after the anchor, with participants who moved
/// away or died before their horizon day left out (`censor`) or counted
/// as not reaching the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Horizon {
    pub months: u32,
    pub from: Anchor,
    pub censor: bool,
}

/// The exit reasons a censored horizon leaves out.
pub const CENSORED_EXITS: [&str; 2] = ["moved", "deceased"];

/// A number of months, written `6m`, `6` or `2y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Months(pub u32);

impl FromStr for Months {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (number, per) = match text.strip_suffix('y') {
            Some(years) => (years, 12),
            None => (text.strip_suffix('m').unwrap_or(text), 1),
        };
        match number.parse::<u32>().ok().and_then(|n| n.checked_mul(per)) {
            Some(months) if (1..=MAX_MONTHS).contains(&months) => Ok(Months(months)),
            _ => Err(format!(
                "{text:?} is not a horizon: write months (`6m`, `6`) or years (`2y`), from 1 month to {} years",
                MAX_MONTHS / 12
            )),
        }
    }
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} months after {}", self.months, self.from.as_str())
    }
}

impl Horizon {
    /// A metric file at this horizon: `{horizons}` becomes the table
    /// function's call and `{censored}` the rule for who is left out.
    pub(crate) fn fill(&self, sql: &str) -> String {
        let censored = if self.censor {
            let reasons: Vec<String> = CENSORED_EXITS.iter().map(|r| format!("'{r}'")).collect();
            // Not exited: not censored (rather than unknown, which would drop the row).
            format!(
                "coalesce(exit_reason IN ({}) AND exited_on <= horizon_on, FALSE)",
                reasons.join(", ")
            )
        } else {
            "FALSE".into()
        };
        sql.replace(
            "{horizons}",
            &format!("horizons({}, '{}')", self.months, self.from.as_str()),
        )
        .replace("{censored}", &censored)
    }
}

/// Registers `horizons(months, anchor)` in `ctx`, planned over `ctx`'s own
/// `participants` and `status_spells` (an evaluator's session gets theirs,
/// pseudonymised), as `snapshot` sees them.
pub(crate) async fn register(ctx: &SessionContext, snapshot: &Snapshot) -> Result<(), QueryError> {
    let sql = HORIZONS.replace("{as_of}", &snapshot.as_of_sql());
    let prepared = ctx.state().create_logical_plan(&sql).await?;
    ctx.register_udtf(
        "horizons",
        Arc::new(Horizons {
            prepared,
            computed: Mutex::default(),
        }),
    );
    Ok(())
}

/// Most horizons kept computed in one catalog, the least recently asked
/// going first: each holds a row per participant.
const KEPT: usize = 4;

#[derive(Debug)]
struct Horizons {
    prepared: LogicalPlan,
    /// The rows of the horizons asked for lately, computed once each: a
    /// report reads the same horizon once per metric and cohort split. The
    /// catalog answers for one commit and snapshot, so they stay exact.
    computed: Mutex<VecDeque<((i64, String), Arc<ComputedOnce>)>>,
}

impl Horizons {
    fn computed(&self, months: i64, anchor: String) -> Result<Arc<ComputedOnce>> {
        let mut kept = self.computed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let key = (months, anchor);
        if let Some(at) = kept.iter().position(|(k, _)| *k == key)
            && let Some(found) = kept.remove(at)
        {
            let rows = found.1.clone();
            kept.push_back(found);
            return Ok(rows);
        }
        // The statement's VARCHAR is a Utf8View.
        let plan = self.prepared.clone().with_param_values(vec![
            ScalarValue::Int64(Some(key.0)),
            ScalarValue::Utf8View(Some(key.1.clone())),
        ])?;
        let rows = Arc::new(ComputedOnce::new(Arc::new(ViewTable::new(plan, None))));
        if kept.len() >= KEPT {
            kept.pop_front();
        }
        kept.push_back((key, rows.clone()));
        Ok(rows)
    }
}

impl TableFunctionImpl for Horizons {
    fn call_with_args(&self, args: datafusion::catalog::TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let usage = "horizons(months, 'enrolment' | 'exit'), months from 1 to 600";
        let (months, anchor) = match args.exprs() {
            [Expr::Literal(months, _), Expr::Literal(anchor, _)] => (months, anchor),
            _ => return plan_err!("{usage}"),
        };
        let months = match months {
            ScalarValue::Int64(Some(m)) if (1..=i64::from(MAX_MONTHS)).contains(m) => *m,
            _ => return plan_err!("{usage}"),
        };
        let anchor = match anchor.try_as_str().flatten() {
            Some(a) if a == "enrolment" || a == "exit" => a.to_string(),
            _ => return plan_err!("{usage}"),
        };
        Ok(self.computed(months, anchor)?)
    }
}

/// `add_months(date, months)`: the same day `months` calendar months
/// later (earlier when negative), or the month's last day when it has
/// fewer days.
pub(crate) fn add_months() -> ScalarUDF {
    ScalarUDF::new_from_impl(AddMonths {
        signature: Signature::exact(vec![DataType::Date32, DataType::Int64], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct AddMonths {
    signature: Signature,
}

/// Day 0 of Arrow's Date32.
const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");

fn shifted(days: i32, months: i64) -> Option<i32> {
    let date = EPOCH.checked_add_signed(chrono::Duration::days(i64::from(days)))?;
    let by = chrono::Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let moved = if months >= 0 {
        date.checked_add_months(by)
    } else {
        date.checked_sub_months(by)
    }?;
    i32::try_from((moved - EPOCH).num_days()).ok()
}

impl ScalarUDFImpl for AddMonths {
    fn name(&self) -> &str {
        "add_months"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args.args.iter().map(|a| a.to_array(rows)).collect::<Result<_>>()?;
        let (Some(dates), Some(months)) = (
            arrays[0].as_any().downcast_ref::<Date32Array>(),
            arrays[1].as_any().downcast_ref::<Int64Array>(),
        ) else {
            return plan_err!("add_months(date, months)");
        };
        let shifted: Date32Array = dates.iter().zip(months.iter()).map(|(d, m)| shifted(d?, m?)).collect();
        Ok(ColumnarValue::Array(Arc::new(shifted)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> i32 {
        let date: NaiveDate = text.parse().expect("date");
        (date - EPOCH).num_days() as i32
    }

    #[test]
    fn months_land_on_the_same_day_or_the_months_last() {
        assert_eq!(shifted(day("2024-01-15"), 6), Some(day("2024-07-15")));
        assert_eq!(shifted(day("2024-08-31"), 6), Some(day("2025-02-28")));
        assert_eq!(shifted(day("2023-08-31"), 6), Some(day("2024-02-29")));
        assert_eq!(shifted(day("2024-03-31"), -1), Some(day("2024-02-29")));
    }

    #[test]
    fn horizons_are_written_in_months_or_years() {
        assert_eq!("6m".parse(), Ok(Months(6)));
        assert_eq!("18".parse(), Ok(Months(18)));
        assert_eq!("2y".parse(), Ok(Months(24)));
        for bad in ["0m", "6w", "", "51y", "-3m"] {
            assert!(bad.parse::<Months>().is_err(), "{bad}");
        }
    }
}
