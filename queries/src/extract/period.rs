//! The reporting period of a funder extract: a quarter (`2022Q4`), a year
//! (`2022`), a month (`2022-06`) or a range (`2022-01-01..2022-06-30`). The
//! extract is as of the period's last day.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, Months, NaiveDate};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeriodKind {
    Month,
    Quarter,
    Year,
    Range,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub kind: PeriodKind,
    pub first: NaiveDate,
    pub last: NaiveDate,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("period {text:?}: {why} (use 2022Q4, 2022, 2022-06 or 2022-01-01..2022-06-30)")]
pub struct PeriodError {
    pub text: String,
    pub why: String,
}

impl Period {
    fn spanning(kind: PeriodKind, first: NaiveDate, months: u32) -> Option<Self> {
        let last = first.checked_add_months(Months::new(months))?.pred_opt()?;
        Some(Self { kind, first, last })
    }

    /// The period of `kind` holding `day`.
    pub fn containing(kind: PeriodKind, day: NaiveDate) -> Option<Self> {
        let (month, months) = match kind {
            PeriodKind::Month => (day.month(), 1),
            PeriodKind::Quarter => ((day.month0() / 3) * 3 + 1, 3),
            PeriodKind::Year | PeriodKind::Range => (1, 12),
        };
        Self::spanning(kind, NaiveDate::from_ymd_opt(day.year(), month, 1)?, months)
    }

    /// The period of the same kind just after this one.
    pub fn next(&self) -> Option<Self> {
        Self::containing(self.kind, self.last.succ_opt()?)
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why: &str| PeriodError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| error("not a date"));
        let year = |s: &str| {
            s.parse::<i32>()
                .ok()
                .filter(|y| (1900..=9999).contains(y) && s.len() == 4)
                .ok_or_else(|| error("not a year"))
        };
        let period = if let Some((first, last)) = text.split_once("..") {
            let (first, last) = (date(first)?, date(last)?);
            if first > last {
                return Err(error("the range ends before it starts"));
            }
            Some(Self {
                kind: PeriodKind::Range,
                first,
                last,
            })
        } else if let Some((y, q)) = text.split_once('Q') {
            let quarter: u32 = q
                .parse()
                .ok()
                .filter(|q| (1..=4).contains(q))
                .ok_or_else(|| error("no such quarter"))?;
            Self::spanning(
                PeriodKind::Quarter,
                NaiveDate::from_ymd_opt(year(y)?, quarter * 3 - 2, 1).ok_or_else(|| error("no such quarter"))?,
                3,
            )
        } else if let Some((y, m)) = text.split_once('-') {
            let month = Some(m)
                .filter(|m| m.len() == 2)
                .and_then(|m| m.parse::<u32>().ok())
                .filter(|m| (1..=12).contains(m))
                .ok_or_else(|| error("no such month"))?;
            Self::spanning(
                PeriodKind::Month,
                NaiveDate::from_ymd_opt(year(y)?, month, 1).ok_or_else(|| error("no such month"))?,
                1,
            )
        } else {
            Self::spanning(
                PeriodKind::Year,
                NaiveDate::from_ymd_opt(year(text)?, 1, 1).ok_or_else(|| error("not a year"))?,
                12,
            )
        };
        period.ok_or_else(|| error("out of range"))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Month => write!(f, "{}", self.first.format("%Y-%m")),
            PeriodKind::Quarter => write!(f, "{}Q{}", self.first.year(), self.first.month0() / 3 + 1),
            PeriodKind::Year => write!(f, "{}", self.first.year()),
            PeriodKind::Range => write!(f, "{}..{}", self.first, self.last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("a date")
    }

    #[test]
    fn every_form_parses_to_its_days_and_prints_back() {
        for (text, first, last) in [
            ("2022Q4", "2022-10-01", "2022-12-31"),
            ("2024Q1", "2024-01-01", "2024-03-31"),
            ("2022", "2022-01-01", "2022-12-31"),
            ("2024-02", "2024-02-01", "2024-02-29"),
            ("2022-01-01..2022-06-30", "2022-01-01", "2022-06-30"),
        ] {
            let p: Period = text.parse().expect(text);
            assert_eq!((p.first, p.last), (d(first), d(last)), "{text}");
            assert_eq!(p.to_string(), text);
        }
    }

    #[test]
    fn malformed_periods_say_why() {
        for (text, why) in [
            ("2022Q5", "no such quarter"),
            ("2022-13", "no such month"),
            ("22", "not a year"),
            ("2022-06-31..2022-07-01", "not a date"),
            ("2022-07-01..2022-06-01", "ends before it starts"),
            ("next year", "not a year"),
        ] {
            let e = text.parse::<Period>().expect_err(text);
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn the_next_quarter_and_the_one_holding_a_day() {
        let q: Period = "2022Q4".parse().expect("quarter");
        assert_eq!(q.next().map(|p| p.to_string()), Some("2023Q1".into()));
        let m = Period::containing(PeriodKind::Month, d("2022-03-15")).expect("month");
        assert_eq!(m.to_string(), "2022-03");
    }
}
