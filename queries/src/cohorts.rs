//! Enrolment cohorts: participants split by when they enrolled (calendar
//! year, quarter, or at dates a funder chooses), so each cohort's shares
//! can be set beside the first one's. The metric SQL files are run
//! unchanged over `participants` with the cohort folded into `program`,
//! so a cohort's figures are counted exactly as a programme's are.

use std::str::FromStr;

use chrono::NaiveDate;

/// Splits a report by when participants enrolled.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cohorts {
    Year,
    Quarter,
    /// Cohorts start at these dates (ascending); those before the first
    /// form a cohort of their own.
    Split(Vec<NaiveDate>),
}

/// Most split dates one report takes.
const MAX_SPLITS: usize = 50;

/// Between a programme and its cohort in the programme column: programme
/// names never hold it.
pub(crate) const SEPARATOR: char = '/';

impl FromStr for Cohorts {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "cohorts are `year`, `quarter` or ascending dates (`2021-01-01,2022-07-01`)";
        match text.trim() {
            "year" => Ok(Cohorts::Year),
            "quarter" => Ok(Cohorts::Quarter),
            dates => {
                let dates: Vec<NaiveDate> = dates
                    .split(',')
                    .map(|d| d.trim().parse::<NaiveDate>().map_err(|_| format!("{d:?}: {usage}")))
                    .collect::<Result<_, _>>()?;
                if dates.len() > MAX_SPLITS || !dates.windows(2).all(|w| w[0] < w[1]) {
                    return Err(format!("{text:?}: {usage}, at most {MAX_SPLITS}"));
                }
                Ok(Cohorts::Split(dates))
            }
        }
    }
}

impl Cohorts {
    /// The cohort of a participant, as SQL over `enrolled_on`.
    fn label_sql(&self) -> String {
        let year = "CAST(date_part('year', enrolled_on) AS VARCHAR)";
        match self {
            Cohorts::Year => year.into(),
            Cohorts::Quarter => format!(
                "concat({year}, 'Q', CAST((CAST(date_part('month', enrolled_on) AS BIGINT) - 1) / 3 + 1 AS VARCHAR))"
            ),
            Cohorts::Split(dates) => {
                let mut cases = String::from("CASE");
                if let Some(first) = dates.first() {
                    cases += &format!(" WHEN enrolled_on < DATE '{first}' THEN 'before {first}'");
                }
                for pair in dates.windows(2) {
                    let last_day = pair[1].pred_opt().unwrap_or(pair[1]);
                    cases += &format!(
                        " WHEN enrolled_on < DATE '{}' THEN '{} to {last_day}'",
                        pair[1], pair[0]
                    );
                }
                if let Some(last) = dates.last() {
                    cases += &format!(" ELSE 'from {last}'");
                }
                cases + " END"
            }
        }
    }

    /// A participant's `<programme>/<cohort>`, as SQL over `participants`.
    pub(crate) fn group_sql(&self) -> String {
        format!("concat(program, '{SEPARATOR}', {})", self.label_sql())
    }

    /// `sql` (a metric file over `participants`, or at a horizon over
    /// `{horizons}`, before [`crate::Horizon::fill`]) counted per programme
    /// and cohort: its `program` column reads `<programme>/<cohort>`.
    pub(crate) fn fill(&self, sql: &str) -> String {
        let folded = |table: &str, alias: &str| {
            format!(
                "FROM (SELECT * EXCLUDE (program), {} AS program FROM {table}) {alias}",
                self.group_sql()
            )
        };
        sql.replace("FROM participants", &folded("participants", "participants"))
            .replace("FROM {horizons}", &folded("{horizons}", "horizons"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cohorts_are_years_quarters_or_ascending_dates() {
        assert_eq!("year".parse(), Ok(Cohorts::Year));
        let split: Cohorts = "2021-01-01, 2022-07-01".parse().expect("dates");
        assert_eq!(split, Cohorts::Split(vec!["2021-01-01".parse().expect("date"), "2022-07-01".parse().expect("date")]));
        assert!(split.label_sql().contains("'2021-01-01 to 2022-06-30'"));
        for bad in ["month", "2022-07-01,2021-01-01", "2021-02-30", ""] {
            assert!(bad.parse::<Cohorts>().is_err(), "{bad}");
        }
    }

    /// A metric file is split by cohort only where it reads its rows: each
    /// must read `FROM participants` (at a horizon, `FROM {horizons}`).
    #[test]
    fn every_share_metric_reads_where_cohorts_fold_in() {
        let folded = |sql: &str| Cohorts::Year.fill(sql) != sql;
        for metric in crate::metrics::SHARES {
            assert!(folded(metric.sql), "{}", metric.name);
            assert!(folded(metric.at_horizon), "{} at a horizon", metric.name);
        }
        assert!(folded(crate::metrics::HORIZON_POPULATION));
    }
}
