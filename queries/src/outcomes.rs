//! A programme's outcome report: every metric with its interval and target,
//! the status distribution, measurement change, share poor per wave and
//! time to first job, as of a date and as known at a time; and when asked,
//! the share metrics at a horizon and per enrolment cohort, and the
//! quarterly employment rate.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use datafusion::prelude::SessionContext;
use serde::Serialize;
use utfall_events::ProgramName;

use crate::engine::run;
use crate::cohorts::{Cohorts, SEPARATOR};
use crate::horizon::{Anchor, CENSORED_EXITS, Horizon};
use crate::indicators::{self, Counted};
use crate::on_track::{self, TargetTrack};
use crate::metrics::{
    HORIZON_POPULATION, MEASUREMENT_CHANGE, POOR_BY_WAVE, QUARTERLY_EMPLOYMENT, SHARES, STATUS_DISTRIBUTION,
    TIME_TO_FIRST_JOB,
};
use crate::statistics::{SurvivalStep, kaplan_meier, newcombe, wilson};
use crate::values::{bools, floats, ints, strings};
use crate::{Analytics, QueryError, Snapshot};

#[derive(Clone, Debug, Serialize)]
pub struct Outcomes {
    pub program: String,
    pub as_of: NaiveDate,
    pub known_at: DateTime<Utc>,
    /// The last log position the report saw.
    pub log_position: i64,
    pub enrolled: u64,
    pub metrics: Vec<MetricValue>,
    pub status_distribution: BTreeMap<String, u64>,
    pub measurement_change: Vec<MeasurementChange>,
    pub poor_by_wave: Vec<PoorShare>,
    pub time_to_first_job: Vec<SurvivalStep>,
    /// Per calendar quarter, the share of those served who worked, when
    /// asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarterly_employment: Option<Vec<QuarterlyRate>>,
    /// The share metrics at a horizon, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon: Option<AtHorizon>,
    /// The share metrics per enrolment cohort, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<Vec<Cohort>>,
    /// Each share metric less another programme's, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<Vec<Compared>>,
    /// Per target, its course so far and whether the programme is on
    /// track to meet it by its end, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_track: Option<Vec<TargetTrack>>,
}

/// A share metric set beside another programme's.
#[derive(Clone, Debug, Serialize)]
pub struct Compared {
    pub metric: String,
    /// The other programme's figures.
    pub other: MetricValue,
    /// This programme's share less the other's (none when either has no
    /// denominator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
}

/// What a report holds besides its every-time sections.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sections {
    pub horizon: Option<Horizon>,
    pub cohorts: Option<Cohorts>,
    /// The quarterly employment rate (a time series, so not in every report).
    pub quarterly: bool,
    /// Another programme to set each share metric beside.
    pub compare_with: Option<String>,
    /// Each target's course and on-track verdict.
    pub on_track: bool,
}

/// One enrolment cohort's share metrics, each beside the first cohort's.
#[derive(Clone, Debug, Serialize)]
pub struct Cohort {
    pub cohort: String,
    pub enrolled: u64,
    pub metrics: Vec<CohortMetric>,
    /// The cohort's share metrics at the report's horizon, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon: Option<CohortAtHorizon>,
}

/// A cohort at the horizon: who is left out, and each share metric beside
/// the first cohort's.
#[derive(Clone, Debug, Serialize)]
pub struct CohortAtHorizon {
    pub not_yet_due: u64,
    pub censored: u64,
    pub metrics: Vec<CohortMetric>,
}

/// Two counts, e.g. (numerator, denominator), by programme (or by
/// `<programme>/<cohort>`).
type Counts = BTreeMap<String, (u64, u64)>;

#[derive(Clone, Debug, Serialize)]
pub struct CohortMetric {
    #[serde(flatten)]
    pub share: MetricValue,
    /// This cohort's share less the first cohort's (none for the first,
    /// or when either has no denominator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<Difference>,
}

/// A difference of two shares with its 95 % interval (Newcombe's method).
#[derive(Clone, Debug, Serialize)]
pub struct Difference {
    /// The cohort or programme subtracted.
    pub from: String,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The share metrics at a horizon: each counts the participants whose
/// horizon day had come by the as-of date, less those censored.
#[derive(Clone, Debug, Serialize)]
pub struct AtHorizon {
    pub months: u32,
    pub from: Anchor,
    /// Exit reasons of participants left out when they exited before
    /// their horizon day (empty: nobody is censored).
    pub censored_exits: Vec<&'static str>,
    /// Participants past the anchor whose horizon day had not yet come.
    pub not_yet_due: u64,
    /// Participants left out by censoring.
    pub censored: u64,
    pub metrics: Vec<MetricValue>,
}

/// The IPS quarterly employment rate: of those served in a calendar
/// quarter, how many held a job at any time in it while served.
#[derive(Clone, Debug, Serialize)]
pub struct QuarterlyRate {
    /// `2022Q1`.
    pub quarter: String,
    pub served: u64,
    pub employed: u64,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The quarter holds the as-of date, so it counts only up to it.
    pub partial: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct MetricValue {
    pub metric: String,
    pub numerator: u64,
    pub denominator: u64,
    /// None when the denominator is 0.
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    /// A programme-defined indicator's description (none for the
    /// built-in metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Why a programme-defined indicator has no figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub op: String,
    pub value: f64,
}

impl Target {
    fn met_by(&self, value: f64) -> bool {
        match self.op.as_str() {
            "<=" => value <= self.value,
            _ => value >= self.value,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MeasurementChange {
    pub instrument: String,
    pub paired: u64,
    pub mean_first: Option<f64>,
    pub mean_last: Option<f64>,
    pub improved: u64,
    pub unchanged: u64,
    pub worse: u64,
    pub lowest_composite: Option<f64>,
    pub highest_composite: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PoorShare {
    pub instrument: String,
    pub wave: i64,
    pub poor: u64,
    pub measured: u64,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
}

impl Analytics {
    /// The outcome report of every programme defined by the as-of date,
    /// or of `only` that one (none when it was not defined by then).
    pub async fn outcomes(&self, snapshot: &Snapshot, only: Option<&str>) -> Result<Vec<Outcomes>, QueryError> {
        self.outcomes_with(snapshot, only, &Sections::default()).await
    }

    /// The same, with the sections asked for: the share metrics at a
    /// horizon or by enrolment cohort, the quarterly employment rate.
    pub async fn outcomes_with(
        &self,
        snapshot: &Snapshot,
        only: Option<&str>,
        sections: &Sections,
    ) -> Result<Vec<Outcomes>, QueryError> {
        let indicators = self.count_indicators(snapshot, only, sections.cohorts.as_ref()).await?;
        let indicators = &indicators;
        self.within_limit(|ctx| async move { report(&ctx, only, sections, indicators).await }, snapshot)
            .await
    }

    /// The programme-defined indicators of the programmes reported on,
    /// each counted in a catalog of its own programme only.
    async fn count_indicators(
        &self,
        snapshot: &Snapshot,
        only: Option<&str>,
        cohorts: Option<&Cohorts>,
    ) -> Result<Vec<Counted>, QueryError> {
        let defined = self.indicators(snapshot, only).await?;
        let mut counted = Vec::with_capacity(defined.len());
        for indicator in defined {
            let programme = ProgramName::new(indicator.program.as_str()).map_err(QueryError::Engine)?;
            let own = self.for_programme(&programme);
            let indicator_ref = &indicator;
            let counts = match own
                .within_limit(|ctx| async move { indicators::count(&ctx, indicator_ref, cohorts).await }, snapshot)
                .await
            {
                Ok(counts) => Some(counts),
                Err(QueryError::Sql(reason)) => {
                    tracing::warn!(program = %indicator.program, indicator = %indicator.name, %reason, "an indicator's SQL failed");
                    None
                }
                Err(e) => return Err(e),
            };
            counted.push(Counted { indicator, counts });
        }
        Ok(counted)
    }
}

type Reports = BTreeMap<String, Outcomes>;

async fn report(
    ctx: &SessionContext,
    only: Option<&str>,
    sections: &Sections,
    indicators: &[Counted],
) -> Result<Vec<Outcomes>, QueryError> {
    let template = head(ctx).await?;
    let programs = strings(
        &run(ctx, "SELECT program FROM programs ORDER BY program").await?.batches,
        "program",
    )?;
    let other = sections.compare_with.as_deref();
    let mut reports: Reports = programs
        .into_iter()
        .flatten()
        .filter(|p| only.is_none_or(|o| o == p) || other == Some(p.as_str()))
        .map(|program| {
            let report = Outcomes {
                program: program.clone(),
                ..template.clone()
            };
            (program, report)
        })
        .collect();
    // No such programme (by the as-of date): no report, and the caller
    // says why in its own terms.
    if only.is_some_and(|o| !reports.contains_key(o)) {
        return Ok(Vec::new());
    }
    if let Some(other) = other
        && !reports.contains_key(other)
    {
        return Err(QueryError::UnknownProgram(other.to_string()));
    }
    let targets = targets(ctx).await?;
    add_shares(ctx, &mut reports, &targets, None).await?;
    add_indicators(&mut reports, &targets, indicators);
    if let Some(horizon) = &sections.horizon {
        add_horizon(ctx, &mut reports, &targets, horizon).await?;
    }
    if let Some(cohorts) = &sections.cohorts {
        add_cohorts(ctx, &mut reports, &targets, cohorts, sections.horizon.as_ref(), indicators).await?;
    }
    add_distribution(ctx, &mut reports).await?;
    add_measurement_change(ctx, &mut reports).await?;
    add_poor_by_wave(ctx, &mut reports).await?;
    add_time_to_first_job(ctx, &mut reports).await?;
    if sections.quarterly {
        add_quarterly_employment(ctx, &mut reports, template.as_of).await?;
    }
    if sections.on_track {
        on_track::add(ctx, &mut reports).await?;
    }
    if let Some(other) = other {
        compare(&mut reports, other, only);
    }
    Ok(reports.into_values().collect())
}

/// An empty report for the snapshot: its as-of date, known-at time and the
/// last log position it sees.
async fn head(ctx: &SessionContext) -> Result<Outcomes, QueryError> {
    let head = run(
        ctx,
        "SELECT s.as_of, s.known_at, (SELECT coalesce(max(position), 0) FROM events) AS log_position
         FROM internal.snapshot s",
    )
    .await?
    .batches;
    let first = |values: Vec<Option<String>>| values.into_iter().next().flatten();
    let as_of = first(strings(&head, "as_of")?)
        .and_then(|d| d.parse::<NaiveDate>().ok())
        .ok_or_else(|| QueryError::Engine("no as-of date".into()))?;
    let known_at = first(strings(&head, "known_at")?)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| QueryError::Engine("no known-at time".into()))?;
    Ok(Outcomes {
        program: String::new(),
        as_of,
        known_at,
        log_position: ints(&head, "log_position")?.first().copied().flatten().unwrap_or(0),
        enrolled: 0,
        metrics: Vec::new(),
        status_distribution: BTreeMap::new(),
        measurement_change: Vec::new(),
        poor_by_wave: Vec::new(),
        time_to_first_job: Vec::new(),
        quarterly_employment: None,
        horizon: None,
        cohorts: None,
        compared: None,
        on_track: None,
    })
}

/// A share of `k` out of `n`: value and 95 % interval (none for n = 0).
fn share(k: u64, n: u64) -> (Option<f64>, Option<f64>, Option<f64>) {
    let interval = wilson(k, n);
    (
        (n > 0).then(|| k as f64 / n as f64),
        interval.map(|i| i.0),
        interval.map(|i| i.1),
    )
}

/// The share metrics, as of the as-of date or at `horizon`.
async fn add_shares(
    ctx: &SessionContext,
    reports: &mut Reports,
    targets: &Targets,
    horizon: Option<&Horizon>,
) -> Result<(), QueryError> {
    let files = SHARES.map(|m| horizon.map_or_else(|| m.sql.to_string(), |h| h.fill(m.at_horizon)));
    for (metric, counts) in SHARES.iter().zip(count_shares(ctx, &files).await?) {
        for (program, report) in reports.iter_mut() {
            let (numerator, denominator) = counts.get(program).copied().unwrap_or((0, 0));
            let target = targets.get(&(program.clone(), metric.name.to_string())).cloned();
            let value = metric_value(metric.name, numerator, denominator, target);
            match report.horizon.as_mut().filter(|_| horizon.is_some()) {
                Some(at) => at.metrics.push(value),
                None => {
                    if metric.name == "job_share" {
                        report.enrolled = denominator;
                    }
                    report.metrics.push(value);
                }
            }
        }
    }
    Ok(())
}

/// A share metric's figures, against its target if there is one.
fn metric_value(metric: &str, numerator: u64, denominator: u64, target: Option<Target>) -> MetricValue {
    let (value, ci_low, ci_high) = share(numerator, denominator);
    let met = match (&target, value) {
        (Some(t), Some(v)) => Some(t.met_by(v)),
        _ => None,
    };
    MetricValue {
        metric: metric.to_string(),
        numerator,
        denominator,
        value,
        ci_low,
        ci_high,
        target,
        met,
        description: None,
        error: None,
    }
}

/// What a report says of an indicator whose SQL failed when run; the
/// reason is logged, not shown (it may quote the data).
const INDICATOR_FAILED: &str =
    "its SQL failed when run over this snapshot (for example, a subquery found two rows for a participant); try its conditions with POST /v1/sql";

/// Each programme's own indicators, after the built-in metrics.
fn add_indicators(reports: &mut Reports, targets: &Targets, indicators: &[Counted]) {
    for counted in indicators {
        let i = &counted.indicator;
        let Some(report) = reports.get_mut(&i.program) else { continue };
        let (numerator, denominator) = counted
            .counts
            .as_ref()
            .and_then(|c| c.get(&i.program).copied())
            .unwrap_or((0, 0));
        let target = targets.get(&(i.program.clone(), i.name.clone())).cloned();
        report.metrics.push(MetricValue {
            description: Some(i.description.clone()),
            error: counted.counts.is_none().then(|| INDICATOR_FAILED.to_string()),
            ..metric_value(&i.name, numerator, denominator, target)
        });
    }
}

/// Sets each report's share metrics beside `other`'s; the other's report
/// goes unless it was asked for itself.
fn compare(reports: &mut Reports, other: &str, only: Option<&str>) {
    let Some(theirs) = reports.get(other).map(|r| r.metrics.clone()) else {
        return;
    };
    for (_, report) in reports.iter_mut().filter(|(p, _)| p.as_str() != other) {
        let compared = report
            .metrics
            .iter()
            .filter_map(|ours| Some((ours, theirs.iter().find(|t| t.metric == ours.metric)?)))
            .map(|(ours, their)| Compared {
                metric: ours.metric.clone(),
                other: their.clone(),
                difference: newcombe(ours.numerator, ours.denominator, their.numerator, their.denominator).map(
                    |(value, ci_low, ci_high)| Difference {
                        from: other.to_string(),
                        value,
                        ci_low,
                        ci_high,
                    },
                ),
            })
            .collect();
        report.compared = Some(compared);
    }
    if only.is_some_and(|o| o != other) {
        reports.remove(other);
    }
}

/// The share metrics per enrolment cohort, in the order the cohorts
/// began, each beside the first cohort's.
async fn add_cohorts(
    ctx: &SessionContext,
    reports: &mut Reports,
    targets: &Targets,
    cohorts: &Cohorts,
    horizon: Option<&Horizon>,
    indicators: &[Counted],
) -> Result<(), QueryError> {
    let sizes = run(
        ctx,
        &cohorts.fill("SELECT program, count(*) AS enrolled, CAST(min(enrolled_on) AS VARCHAR) AS began FROM participants GROUP BY program"),
    )
    .await?
    .batches;
    // (programme, cohort) -> (enrolled, first enrolment), by programme.
    let mut found: BTreeMap<String, Vec<(String, u64, String)>> = BTreeMap::new();
    for ((key, enrolled), began) in strings(&sizes, "program")?
        .into_iter()
        .zip(ints(&sizes, "enrolled")?)
        .zip(strings(&sizes, "began")?)
    {
        if let Some((program, cohort)) = key.as_deref().and_then(|k| k.split_once(SEPARATOR)) {
            let enrolled = enrolled.unwrap_or(0).max(0) as u64;
            found
                .entry(program.to_string())
                .or_default()
                .push((cohort.to_string(), enrolled, began.unwrap_or_default()));
        }
    }
    let named = |counts: [Counts; SHARES.len()]| SHARES.iter().map(|m| m.name).zip(counts).collect::<Vec<_>>();
    let shares = named(count_shares(ctx, &SHARES.map(|m| cohorts.fill(m.sql))).await?);
    let mut at_horizon = None;
    if let Some(h) = horizon {
        let left_out = run(ctx, &h.fill(&cohorts.fill(HORIZON_POPULATION))).await?.batches;
        let horizon_shares = named(count_shares(ctx, &SHARES.map(|m| h.fill(&cohorts.fill(m.at_horizon)))).await?);
        at_horizon = Some((per_programme(&left_out, "not_yet_due", "censored")?, horizon_shares));
    }
    let none = BTreeMap::new();
    for (program, report) in reports.iter_mut() {
        let own = indicators
            .iter()
            .filter(|c| c.indicator.program == *program)
            .map(|c| (c.indicator.name.as_str(), c.counts.as_ref().unwrap_or(&none)));
        let per_metric: Vec<_> = shares.iter().map(|(name, counts)| (*name, counts)).chain(own).collect();
        let mut listed = found.remove(program).unwrap_or_default();
        listed.sort_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)));
        let first = listed.first().map(|c| c.0.as_str());
        let key = |cohort: &str| format!("{program}{SEPARATOR}{cohort}");
        let beside_first = |per_metric: &[(&str, &Counts)], cohort: &str| -> Vec<CohortMetric> {
            per_metric
                .iter()
                .map(|(name, metric)| {
                    let (k, n) = metric.get(&key(cohort)).copied().unwrap_or((0, 0));
                    let target = targets.get(&(program.clone(), name.to_string())).cloned();
                    let difference = first.filter(|f| *f != cohort).and_then(|f| {
                        let (k0, n0) = metric.get(&key(f)).copied().unwrap_or((0, 0));
                        newcombe(k, n, k0, n0).map(|(value, ci_low, ci_high)| Difference {
                            from: f.to_string(),
                            value,
                            ci_low,
                            ci_high,
                        })
                    });
                    CohortMetric {
                        share: metric_value(name, k, n, target),
                        difference,
                    }
                })
                .collect()
        };
        let cohorts = listed
            .iter()
            .map(|(cohort, enrolled, _)| Cohort {
                cohort: cohort.clone(),
                enrolled: *enrolled,
                metrics: beside_first(&per_metric, cohort),
                horizon: at_horizon.as_ref().map(|(left_out, shares)| {
                    let (not_yet_due, censored) = left_out.get(&key(cohort)).copied().unwrap_or((0, 0));
                    let shares: Vec<_> = shares.iter().map(|(name, counts)| (*name, counts)).collect();
                    CohortAtHorizon {
                        not_yet_due,
                        censored,
                        metrics: beside_first(&shares, cohort),
                    }
                }),
            })
            .collect();
        report.cohorts = Some(cohorts);
    }
    Ok(())
}

/// The share metrics at `horizon`, with who is not yet due or censored.
async fn add_horizon(
    ctx: &SessionContext,
    reports: &mut Reports,
    targets: &Targets,
    horizon: &Horizon,
) -> Result<(), QueryError> {
    let batches = run(ctx, &horizon.fill(HORIZON_POPULATION)).await?.batches;
    let left_out = per_programme(&batches, "not_yet_due", "censored")?;
    for (program, report) in reports.iter_mut() {
        let (not_yet_due, censored) = left_out.get(program).copied().unwrap_or((0, 0));
        report.horizon = Some(AtHorizon {
            months: horizon.months,
            from: horizon.from,
            censored_exits: if horizon.censor { CENSORED_EXITS.to_vec() } else { Vec::new() },
            not_yet_due,
            censored,
            metrics: Vec::new(),
        });
    }
    add_shares(ctx, reports, targets, Some(horizon)).await
}

/// Each share metric file's numerator and denominator by programme, in
/// the order given. The files run side by side in one query (`UNION ALL`),
/// planned and run once rather than one after another.
async fn count_shares<const N: usize>(ctx: &SessionContext, files: &[String; N]) -> Result<[Counts; N], QueryError> {
    let sql = files
        .iter()
        .enumerate()
        .map(|(i, file)| format!("SELECT {i} AS metric, program, numerator, denominator FROM (\n{file}\n)"))
        .collect::<Vec<_>>()
        .join("\nUNION ALL\n");
    let batches = run(ctx, &sql).await?.batches;
    let mut counted: [Counts; N] = std::array::from_fn(|_| Counts::new());
    let rows = ints(&batches, "metric")?.into_iter().zip(counts(&batches, "numerator", "denominator")?);
    for (metric, (program, pair)) in rows {
        if let (Some(counts), Some(program)) = (metric.and_then(|m| counted.get_mut(usize::try_from(m).ok()?)), program) {
            counts.insert(program, pair);
        }
    }
    Ok(counted)
}

/// Two count columns of `batches`, by programme.
fn per_programme(batches: &[RecordBatch], first: &str, second: &str) -> Result<Counts, QueryError> {
    Ok(counts(batches, first, second)?
        .into_iter()
        .filter_map(|(program, pair)| Some((program?, pair)))
        .collect())
}

/// Each row's programme and two count columns (a missing count is 0).
fn counts(batches: &[RecordBatch], first: &str, second: &str) -> Result<Vec<(Option<String>, (u64, u64))>, QueryError> {
    let as_count = |n: Option<i64>| n.unwrap_or(0).max(0) as u64;
    Ok(strings(batches, "program")?
        .into_iter()
        .zip(ints(batches, first)?.into_iter().zip(ints(batches, second)?))
        .map(|(p, (a, b))| (p, (as_count(a), as_count(b))))
        .collect())
}

async fn add_distribution(ctx: &SessionContext, reports: &mut Reports) -> Result<(), QueryError> {
    let distribution = run(ctx, STATUS_DISTRIBUTION).await?.batches;
    for ((program, group), n) in strings(&distribution, "program")?
        .into_iter()
        .zip(strings(&distribution, "outcome_group")?)
        .zip(ints(&distribution, "participants")?)
    {
        if let (Some(report), Some(group)) = (program.and_then(|p| reports.get_mut(&p)), group) {
            report.status_distribution.insert(group, n.unwrap_or(0) as u64);
        }
    }

    Ok(())
}

async fn add_measurement_change(ctx: &SessionContext, reports: &mut Reports) -> Result<(), QueryError> {
    let change = run(ctx, MEASUREMENT_CHANGE).await?.batches;
    let programs_of = strings(&change, "program")?;
    let instruments = strings(&change, "instrument")?;
    let (paired, improved, unchanged, worse) = (
        ints(&change, "paired")?,
        ints(&change, "improved")?,
        ints(&change, "unchanged")?,
        ints(&change, "worse")?,
    );
    let (mean_first, mean_last, lowest, highest) = (
        floats(&change, "mean_first")?,
        floats(&change, "mean_last")?,
        floats(&change, "lowest_composite")?,
        floats(&change, "highest_composite")?,
    );
    for i in 0..programs_of.len() {
        if let Some(report) = programs_of[i].as_ref().and_then(|p| reports.get_mut(p)) {
            report.measurement_change.push(MeasurementChange {
                instrument: instruments[i].clone().unwrap_or_default(),
                paired: count(&paired, i),
                mean_first: mean_first[i],
                mean_last: mean_last[i],
                improved: count(&improved, i),
                unchanged: count(&unchanged, i),
                worse: count(&worse, i),
                lowest_composite: lowest[i],
                highest_composite: highest[i],
            });
        }
    }

    for report in reports.values_mut() {
        report
            .measurement_change
            .sort_by(|a, b| a.instrument.cmp(&b.instrument));
    }
    Ok(())
}

async fn add_poor_by_wave(ctx: &SessionContext, reports: &mut Reports) -> Result<(), QueryError> {
    let poor = run(ctx, POOR_BY_WAVE).await?.batches;
    let (programs_of, instruments, waves) = (
        strings(&poor, "program")?,
        strings(&poor, "instrument")?,
        ints(&poor, "wave")?,
    );
    let (poor_n, measured) = (ints(&poor, "poor")?, ints(&poor, "measured")?);
    for i in 0..programs_of.len() {
        if let Some(report) = programs_of[i].as_ref().and_then(|p| reports.get_mut(p)) {
            let (k, n) = (count(&poor_n, i), count(&measured, i));
            let (value, ci_low, ci_high) = share(k, n);
            report.poor_by_wave.push(PoorShare {
                instrument: instruments[i].clone().unwrap_or_default(),
                wave: waves[i].unwrap_or(0),
                poor: k,
                measured: n,
                value,
                ci_low,
                ci_high,
            });
        }
    }

    for report in reports.values_mut() {
        report
            .poor_by_wave
            .sort_by(|a, b| (&a.instrument, a.wave).cmp(&(&b.instrument, b.wave)));
    }
    Ok(())
}

async fn add_time_to_first_job(ctx: &SessionContext, reports: &mut Reports) -> Result<(), QueryError> {
    let times = run(ctx, TIME_TO_FIRST_JOB).await?.batches;
    let mut per_program: BTreeMap<String, Vec<(i64, bool)>> = BTreeMap::new();
    for ((program, days), got_job) in strings(&times, "program")?
        .into_iter()
        .zip(ints(&times, "days")?)
        .zip(bools(&times, "got_job")?)
    {
        if let (Some(program), Some(days)) = (program, days) {
            per_program
                .entry(program)
                .or_default()
                .push((days, got_job.unwrap_or(false)));
        }
    }
    for (program, times) in per_program {
        if let Some(report) = reports.get_mut(&program) {
            report.time_to_first_job = kaplan_meier(&times);
        }
    }

    Ok(())
}

async fn add_quarterly_employment(ctx: &SessionContext, reports: &mut Reports, as_of: NaiveDate) -> Result<(), QueryError> {
    let sql = QUARTERLY_EMPLOYMENT.replace("{as_of}", &format!("DATE '{as_of}'"));
    let batches = run(ctx, &sql).await?.batches;
    let (programs, quarters) = (strings(&batches, "program")?, ints(&batches, "quarter")?);
    let (served, employed) = (ints(&batches, "served")?, ints(&batches, "employed")?);
    let current = i64::from(as_of.year()) * 4 + i64::from(as_of.month0() / 3);
    for report in reports.values_mut() {
        report.quarterly_employment = Some(Vec::new());
    }
    for i in 0..programs.len() {
        let (Some(report), Some(quarter)) = (programs[i].as_ref().and_then(|p| reports.get_mut(p)), quarters[i]) else {
            continue;
        };
        let (n, k) = (count(&served, i), count(&employed, i));
        let (value, ci_low, ci_high) = share(k, n);
        report.quarterly_employment.get_or_insert_with(Vec::new).push(QuarterlyRate {
            quarter: format!("{}Q{}", quarter.div_euclid(4), quarter.rem_euclid(4) + 1),
            served: n,
            employed: k,
            value,
            ci_low,
            ci_high,
            partial: quarter == current && as_of != quarter_end(as_of),
        });
    }
    Ok(())
}

/// The last day of `day`'s calendar quarter.
pub(crate) fn quarter_end(day: NaiveDate) -> NaiveDate {
    let first_of_next = NaiveDate::from_ymd_opt(day.year(), day.month0() / 3 * 3 + 1, 1)
        .and_then(|start| start.checked_add_months(chrono::Months::new(3)));
    first_of_next.and_then(|d| d.pred_opt()).unwrap_or(day)
}

fn count(values: &[Option<i64>], i: usize) -> u64 {
    values.get(i).copied().flatten().unwrap_or(0).max(0) as u64
}

/// The targets in force, by (program, metric).
type Targets = BTreeMap<(String, String), Target>;

async fn targets(ctx: &SessionContext) -> Result<Targets, QueryError> {
    let batches = run(ctx, "SELECT program, metric, op, value FROM targets")
        .await?
        .batches;
    Ok(strings(&batches, "program")?
        .into_iter()
        .zip(strings(&batches, "metric")?)
        .zip(strings(&batches, "op")?.into_iter().zip(floats(&batches, "value")?))
        .filter_map(|((program, metric), (op, value))| Some(((program?, metric?), Target { op: op?, value: value? })))
        .collect())
}
