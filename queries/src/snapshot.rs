//! Which events a query sees: those that had happened by `as_of` (valid
//! time) and had been recorded by `known_at` (transaction time). Unset means
//! "everything there is" and follows the log as it grows.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Snapshot {
    pub as_of: Option<NaiveDate>,
    pub known_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    pub fn new(as_of: Option<NaiveDate>, known_at: Option<DateTime<Utc>>) -> Self {
        Self { as_of, known_at }
    }

    /// What to say when `program` has no report for this snapshot: unknown,
    /// or not yet defined at the as-of date or known-at time.
    pub fn no_programme(&self, program: &str) -> String {
        let mut message = format!("no programme named {program:?}");
        if let Some(as_of) = self.as_of {
            message += &format!(" had been defined as of {as_of}");
        }
        if let Some(known_at) = self.known_at {
            message += &format!(
                " {} known at {}",
                if self.as_of.is_some() { "and" } else { "was" },
                known_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
        message
    }

    /// The SQL condition on `occurred_on`; the date is ours, never raw input.
    pub(crate) fn valid_time(&self) -> String {
        match self.as_of {
            Some(d) => format!("occurred_on <= DATE '{d}'"),
            None => "TRUE".into(),
        }
    }

    /// The SQL condition on a version's `valid_from`/`valid_to` (`to`
    /// exclusive; null while open): in force on the as-of date.
    pub(crate) fn valid_interval(&self) -> String {
        match self.as_of {
            Some(d) => format!("valid_from <= DATE '{d}' AND (valid_to IS NULL OR valid_to > DATE '{d}')"),
            None => "valid_to IS NULL".into(),
        }
    }

    /// The SQL condition on a version's `recorded_from`/`recorded_to`: in
    /// the record at the known-at time.
    pub(crate) fn recorded_interval(&self) -> String {
        match self.known_at {
            Some(t) => {
                let t = timestamp(t);
                format!("recorded_from <= {t} AND (recorded_to IS NULL OR recorded_to > {t})")
            }
            None => "recorded_to IS NULL".into(),
        }
    }

    /// The SQL condition on `recorded_at`.
    pub(crate) fn transaction_time(&self) -> String {
        match self.known_at {
            Some(t) => format!("recorded_at <= {}", timestamp(t)),
            None => "TRUE".into(),
        }
    }

    /// The as-of date as SQL (today when unset).
    pub(crate) fn as_of_sql(&self) -> String {
        self.as_of.map_or("current_date()".into(), |d| format!("DATE '{d}'"))
    }

    /// The one-row `internal.snapshot` table: the as-of date and known-at
    /// time a query answers for (today and now when unset).
    pub(crate) fn table_sql(&self) -> String {
        let as_of = self.as_of_sql();
        let known_at = self
            .known_at
            .map_or(format!("arrow_cast(now(), '{MICROS_UTC}')"), timestamp);
        format!("SELECT {as_of} AS as_of, {known_at} AS known_at")
    }
}

/// The lake's `recorded_at` type.
const MICROS_UTC: &str = "Timestamp(Microsecond, Some(\"UTC\"))";

fn timestamp(t: DateTime<Utc>) -> String {
    format!(
        "arrow_cast('{}', '{MICROS_UTC}')",
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}
