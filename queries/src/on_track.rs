//! Whether a programme is on track to meet each of its targets by its end
//! date (`ends_on`), said with its uncertainty: the trajectory so far (the
//! share at each quarter's end; for time-to-event targets also the
//! Kaplan–Meier curve by days since enrolment), the share expected at the
//! end with a 95 % interval, and a verdict that is `uncertain` whenever
//! the interval holds the target.
//!
//! For the time-to-event targets (`job_share`, `education_share`,
//! `never_psychiatric_treatment_share`, `retained_share`) the expected
//! share is projected: everyone who had the event counts as having it,
//! everyone who left without it as not, and each participant still in the
//! programme has the event by `ends_on` with the Kaplan–Meier probability
//! of having it between their follow-up now and their follow-up then. The
//! other targets (`clarified_share`, a programme's own indicators) and
//! programmes without an end to come are judged on their share now.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::QueryError;
use crate::engine::run;
use crate::metrics::ON_TRACK;
use crate::outcomes::{MetricValue, Outcomes, Target, quarter_end};
use crate::statistics::{SurvivalStep, Z_95, kaplan_meier, wilson, wilson_of};
use crate::values::{bools, dates, strings};

/// One target's course and verdict.
#[derive(Clone, Debug, Serialize)]
pub struct TargetTrack {
    pub metric: String,
    pub target: Target,
    /// The end the verdict looks to; none when the programme set none.
    pub ends_on: Option<NaiveDate>,
    /// The share at the end of each calendar quarter so far, the last one
    /// at the as-of date (empty for a programme's own indicators).
    pub over_time: Vec<TrackPoint>,
    /// Time-to-event targets: Kaplan–Meier by days since enrolment (the
    /// event: the first job, the first education, psychiatric treatment,
    /// dropping out), censored at exit or the as-of date.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kaplan_meier: Vec<SurvivalStep>,
    pub expected: Expected,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrackPoint {
    /// `2022Q1`.
    pub quarter: String,
    /// The quarter's last day, or the as-of date for the quarter holding it.
    pub on: NaiveDate,
    pub numerator: u64,
    pub denominator: u64,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

/// The share expected when the programme ends, with its 95 % interval.
#[derive(Clone, Debug, Serialize)]
pub struct Expected {
    /// `projected` to `ends_on`, or `current`: the share now, when nothing
    /// is projected.
    pub basis: Basis,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Projected,
    Current,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Projected => "projected",
            Basis::Current => "current",
        }
    }
}

/// `on_track`: the interval lies on the target's side; `off_track`: it
/// lies wholly on the other; `uncertain`: it holds the target (or there is
/// nobody to count).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    OnTrack,
    OffTrack,
    Uncertain,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::OnTrack => "on_track",
            Verdict::OffTrack => "off_track",
            Verdict::Uncertain => "uncertain",
        }
    }

    fn of(target: &Target, low: Option<f64>, high: Option<f64>) -> Self {
        let (Some(low), Some(high)) = (low, high) else {
            return Verdict::Uncertain;
        };
        let (meets, misses) = match target.op.as_str() {
            "<=" => (high <= target.value, low > target.value),
            _ => (low >= target.value, high < target.value),
        };
        match (meets, misses) {
            (true, _) => Verdict::OnTrack,
            (_, true) => Verdict::OffTrack,
            _ => Verdict::Uncertain,
        }
    }
}

/// A participant as the verdicts see them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Person {
    pub enrolled: NaiveDate,
    pub exited: Option<NaiveDate>,
    pub job: Option<NaiveDate>,
    pub education: Option<NaiveDate>,
    pub treatment: Option<NaiveDate>,
    pub dropped_out: bool,
    pub clarified: bool,
}

/// How a target's share is counted over time.
enum Course {
    /// A time to an event; the share counts those who had it.
    Had(fn(&Person) -> Option<NaiveDate>),
    /// A time to an event; the share counts those who did not have it.
    Without(fn(&Person) -> Option<NaiveDate>),
    /// Among those exited by then, the clarified ones.
    Clarified,
}

fn course(metric: &str) -> Option<Course> {
    Some(match metric {
        "job_share" => Course::Had(|p| p.job),
        "education_share" => Course::Had(|p| p.education),
        "never_psychiatric_treatment_share" => Course::Without(|p| p.treatment),
        "retained_share" => Course::Without(|p| p.exited.filter(|_| p.dropped_out)),
        "clarified_share" => Course::Clarified,
        _ => return None,
    })
}

/// Adds `on_track` to every report: one entry per metric with a target.
pub(crate) async fn add(ctx: &SessionContext, reports: &mut BTreeMap<String, Outcomes>) -> Result<(), QueryError> {
    let batches = run(ctx, ON_TRACK).await?.batches;
    let date = |column: &str| dates(&batches, column);
    let (programs, enrolled, exited) = (strings(&batches, "program")?, date("enrolled_on")?, date("exited_on")?);
    let (job, education, treatment) = (
        date("first_job_on")?,
        date("first_education_on")?,
        date("psychiatric_treatment_on")?,
    );
    let (dropped_out, clarified, ends_on) = (
        bools(&batches, "dropped_out")?,
        bools(&batches, "clarified")?,
        date("ends_on")?,
    );
    let mut people: BTreeMap<String, (Option<NaiveDate>, Vec<Person>)> = BTreeMap::new();
    for i in 0..programs.len() {
        let (Some(program), Some(enrolled)) = (programs[i].clone(), enrolled[i]) else {
            continue;
        };
        let entry = people.entry(program).or_insert((ends_on[i], Vec::new()));
        entry.1.push(Person {
            enrolled,
            exited: exited[i],
            job: job[i],
            education: education[i],
            treatment: treatment[i],
            dropped_out: dropped_out[i].unwrap_or(false),
            clarified: clarified[i].unwrap_or(false),
        });
    }
    for (program, report) in reports.iter_mut() {
        let (ends_on, people) = people.remove(program).unwrap_or_default();
        let tracks = report
            .metrics
            .iter()
            .filter_map(|m| Some(track(m, m.target.clone()?, &people, ends_on, report.as_of)))
            .collect();
        report.on_track = Some(tracks);
    }
    Ok(())
}

/// One target's trajectory, expected share and verdict.
pub fn track(
    metric: &MetricValue,
    target: Target,
    people: &[Person],
    ends_on: Option<NaiveDate>,
    as_of: NaiveDate,
) -> TargetTrack {
    let course = course(&metric.metric);
    let over_time = course.as_ref().map_or_else(Vec::new, |c| over_time(c, people, as_of));
    let event = match course {
        Some(Course::Had(event)) => Some((event, false)),
        Some(Course::Without(event)) => Some((event, true)),
        _ => None,
    };
    let kaplan_meier = event.map_or_else(Vec::new, |(event, _)| kaplan_meier(&times(people, event, as_of)));
    let to_come = ends_on.filter(|end| *end > as_of);
    let expected = match (event, to_come) {
        (Some((event, counts_without)), Some(end)) if !people.is_empty() => {
            projected(people, event, counts_without, &kaplan_meier, as_of, end)
        }
        _ => Expected {
            basis: Basis::Current,
            value: metric.value,
            ci_low: metric.ci_low,
            ci_high: metric.ci_high,
        },
    };
    TargetTrack {
        metric: metric.metric.clone(),
        verdict: Verdict::of(&target, expected.ci_low, expected.ci_high),
        target,
        ends_on,
        over_time,
        kaplan_meier,
        expected,
    }
}

/// Days from enrolment to the event, or to the exit or the as-of date
/// (censored) for those without it.
fn times(people: &[Person], event: fn(&Person) -> Option<NaiveDate>, as_of: NaiveDate) -> Vec<(i64, bool)> {
    people
        .iter()
        .map(|p| match event(p) {
            Some(on) => ((on - p.enrolled).num_days(), true),
            None => ((p.exited.unwrap_or(as_of) - p.enrolled).num_days(), false),
        })
        .collect()
}

/// The share of the event's course expected at `end`: those who had the
/// event count, those who left without it do not, and each one still in
/// the programme adds the Kaplan–Meier chance of the event between their
/// follow-up at `as_of` and at `end`. The interval adds that chance's
/// variance to the share's binomial one.
fn projected(
    people: &[Person],
    event: fn(&Person) -> Option<NaiveDate>,
    counts_without: bool,
    curve: &[SurvivalStep],
    as_of: NaiveDate,
    end: NaiveDate,
) -> Expected {
    let survival = |day: i64| {
        curve
            .iter()
            .take_while(|s| s.day <= day)
            .last()
            .map_or(1.0, |s| s.survival)
    };
    let (mut events, mut unknown_variance) = (0.0, 0.0);
    for p in people {
        if event(p).is_some() {
            events += 1.0;
        } else if p.exited.is_none() {
            let now = survival((as_of - p.enrolled).num_days());
            let then = survival((end - p.enrolled).num_days());
            let chance = if now > 0.0 { 1.0 - then / now } else { 0.0 };
            events += chance;
            unknown_variance += chance * (1.0 - chance);
        }
    }
    let n = people.len() as f64;
    let share = if counts_without { 1.0 - events / n } else { events / n };
    // The Wilson interval of the expected share, widened by the spread of
    // the outcomes still to come (the two combined as Newcombe combines
    // two shares' intervals).
    let (low, high) = wilson_of(share, n);
    let to_come = Z_95 * Z_95 * unknown_variance / (n * n);
    Expected {
        basis: Basis::Projected,
        value: Some(share),
        ci_low: Some((share - ((share - low).powi(2) + to_come).sqrt()).max(0.0)),
        ci_high: Some((share + ((high - share).powi(2) + to_come).sqrt()).min(1.0)),
    }
}

/// The share at the end of each quarter from the first enrolment's to the
/// as-of date's (the last one at the as-of date).
fn over_time(course: &Course, people: &[Person], as_of: NaiveDate) -> Vec<TrackPoint> {
    let Some(first) = people.iter().map(|p| p.enrolled).min() else {
        return Vec::new();
    };
    let mut points = Vec::new();
    let mut day = quarter_end(first);
    loop {
        let on = day.min(as_of);
        let by = |d: Option<NaiveDate>| d.is_some_and(|d| d <= on);
        let enrolled = people.iter().filter(|p| p.enrolled <= on);
        let (k, n) = match course {
            Course::Had(event) => (enrolled.clone().filter(|p| by(event(p))).count(), enrolled.count()),
            Course::Without(event) => (enrolled.clone().filter(|p| !by(event(p))).count(), enrolled.count()),
            Course::Clarified => {
                let exited: Vec<&Person> = enrolled.filter(|p| by(p.exited)).collect();
                (exited.iter().filter(|p| p.clarified).count(), exited.len())
            }
        };
        let (k, n) = (k as u64, n as u64);
        let interval = wilson(k, n);
        points.push(TrackPoint {
            quarter: format!("{}Q{}", on.year(), on.month0() / 3 + 1),
            on,
            numerator: k,
            denominator: n,
            value: (n > 0).then(|| k as f64 / n as f64),
            ci_low: interval.map(|i| i.0),
            ci_high: interval.map(|i| i.1),
        });
        match day.succ_opt() {
            Some(next) if on < as_of => day = quarter_end(next),
            _ => return points,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn person(enrolled: &str, exited: Option<&str>, job: Option<&str>) -> Person {
        Person {
            enrolled: day(enrolled),
            exited: exited.map(day),
            job: job.map(day),
            ..Person::default()
        }
    }

    fn job_share(people: &[Person]) -> MetricValue {
        let k = people.iter().filter(|p| p.job.is_some()).count() as u64;
        let n = people.len() as u64;
        let interval = wilson(k, n);
        MetricValue {
            metric: "job_share".into(),
            numerator: k,
            denominator: n,
            value: Some(k as f64 / n as f64),
            ci_low: interval.map(|i| i.0),
            ci_high: interval.map(|i| i.1),
            target: None,
            met: None,
            description: None,
            error: None,
        }
    }

    /// Four enrolled on 1 January 2024, as of 1 July 2024 (182 days):
    /// a job on day 91, a job on day 182, one left without a job on day 91,
    /// one still looking. Kaplan–Meier: S(91) = 3/4, S(182) = 3/4 · 1/2 =
    /// 3/8 (at risk: 2). The one still looking, followed 182 days now and
    /// 365 days at the end (31 December), adds 1 − S(365)/S(182) = 0: the
    /// curve stays flat past its last step. Expected: 2/4.
    #[test]
    fn a_projection_counts_events_exits_and_the_chances_of_those_still_in() {
        let as_of = day("2024-07-01");
        let people = [
            person("2024-01-01", None, Some("2024-04-01")),
            person("2024-01-01", None, Some("2024-07-01")),
            person("2024-01-01", Some("2024-04-01"), None),
            person("2024-01-01", None, None),
        ];
        let target = Target {
            op: ">=".into(),
            value: 0.2,
        };
        let t = track(
            &job_share(&people),
            target.clone(),
            &people,
            Some(day("2024-12-31")),
            as_of,
        );
        let survival: Vec<(i64, f64)> = t.kaplan_meier.iter().map(|s| (s.day, s.survival)).collect();
        assert_eq!(survival, [(91, 0.75), (182, 0.375)]);
        assert_eq!((t.expected.basis, t.expected.value), (Basis::Projected, Some(0.5)));
        // Nothing left to come: the Wilson interval of 2 of 4.
        assert_eq!(
            (t.expected.ci_low, t.expected.ci_high),
            (wilson(2, 4).map(|i| i.0), wilson(2, 4).map(|i| i.1))
        );
        assert_eq!(t.verdict, Verdict::Uncertain, "0.2 lies within 0.15 to 0.85");
        let quarters: Vec<(&str, u64, u64)> = t
            .over_time
            .iter()
            .map(|p| (p.quarter.as_str(), p.numerator, p.denominator))
            .collect();
        assert_eq!(quarters, [("2024Q1", 0, 4), ("2024Q2", 1, 4), ("2024Q3", 2, 4)]);
        assert_eq!(t.over_time.last().map(|p| p.on), Some(as_of));

        // One more, looking since 1 April: S(91) = 4/5, S(182) = 4/5 · 1/2
        // (at risk: 2); followed 91 days now and 274 at the end, they add
        // 1 − S(274)/S(91) = 1/2, with variance 1/4. Expected: 2.5/5.
        let mut more = people.to_vec();
        more.push(person("2024-04-01", None, None));
        let t = track(&job_share(&more), target, &more, Some(day("2024-12-31")), as_of);
        assert_eq!(
            t.kaplan_meier.iter().map(|s| s.survival).collect::<Vec<_>>(),
            [0.8, 0.4]
        );
        assert_eq!(t.expected.value, Some(0.5));
        let (_, high) = wilson_of(0.5, 5.0);
        let to_come = Z_95 * Z_95 * 0.25 / 25.0;
        assert_eq!(t.expected.ci_high, Some(0.5 + ((high - 0.5).powi(2) + to_come).sqrt()));
    }

    #[test]
    fn verdicts_follow_the_interval_and_the_direction_of_the_target() {
        let at_least = Target {
            op: ">=".into(),
            value: 0.5,
        };
        let at_most = Target {
            op: "<=".into(),
            value: 0.5,
        };
        assert_eq!(Verdict::of(&at_least, Some(0.55), Some(0.7)), Verdict::OnTrack);
        assert_eq!(Verdict::of(&at_least, Some(0.2), Some(0.45)), Verdict::OffTrack);
        assert_eq!(Verdict::of(&at_least, Some(0.4), Some(0.6)), Verdict::Uncertain);
        assert_eq!(Verdict::of(&at_most, Some(0.2), Some(0.45)), Verdict::OnTrack);
        assert_eq!(Verdict::of(&at_most, Some(0.55), Some(0.7)), Verdict::OffTrack);
        assert_eq!(Verdict::of(&at_most, None, None), Verdict::Uncertain);
    }

    #[test]
    fn without_an_end_to_come_the_verdict_rests_on_the_share_now() {
        let as_of = day("2024-07-01");
        let people = [
            person("2024-01-01", None, Some("2024-02-01")),
            person("2024-01-01", None, None),
        ];
        let target = Target {
            op: ">=".into(),
            value: 0.95,
        };
        let metric = job_share(&people);
        for ends_on in [None, Some(day("2024-06-30"))] {
            let t = track(&metric, target.clone(), &people, ends_on, as_of);
            assert_eq!(
                (t.expected.basis, t.expected.value, t.expected.ci_low),
                (Basis::Current, Some(0.5), metric.ci_low)
            );
            assert_eq!(
                t.verdict,
                Verdict::OffTrack,
                "1 of 2: the interval (0.09 to 0.91) lies under 0.95"
            );
        }
    }
}
