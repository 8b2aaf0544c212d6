//! The outcome metrics as SQL over the catalog, one file each under
//! `queries/sql/metrics/`, so an evaluator can read exactly what is counted.
//! Each share metric returns `program, numerator, denominator`; the other
//! definitions return the rows their report section is made from.

/// A share metric: its DESIGN name, its SQL, and its SQL at a horizon
/// (over `{horizons}`, leaving out `{censored}`; see [`crate::horizon`]).
#[derive(Clone, Copy, Debug)]
pub struct ShareMetric {
    pub name: &'static str,
    pub sql: &'static str,
    pub at_horizon: &'static str,
}

pub const SHARES: [ShareMetric; 5] = [
    ShareMetric {
        name: "job_share",
        sql: include_str!("../sql/metrics/job_share.sql"),
        at_horizon: include_str!("../sql/metrics/horizon/job_share.sql"),
    },
    ShareMetric {
        name: "education_share",
        sql: include_str!("../sql/metrics/education_share.sql"),
        at_horizon: include_str!("../sql/metrics/horizon/education_share.sql"),
    },
    ShareMetric {
        name: "never_psychiatric_treatment_share",
        sql: include_str!("../sql/metrics/never_psychiatric_treatment_share.sql"),
        at_horizon: include_str!("../sql/metrics/horizon/never_psychiatric_treatment_share.sql"),
    },
    ShareMetric {
        name: "retained_share",
        sql: include_str!("../sql/metrics/retained_share.sql"),
        at_horizon: include_str!("../sql/metrics/horizon/retained_share.sql"),
    },
    ShareMetric {
        name: "clarified_share",
        sql: include_str!("../sql/metrics/clarified_share.sql"),
        at_horizon: include_str!("../sql/metrics/horizon/clarified_share.sql"),
    },
];

/// `program, not_yet_due, censored` at a horizon.
pub const HORIZON_POPULATION: &str = include_str!("../sql/metrics/horizon/population.sql");

/// `program, quarter, served, employed` (quarter: year * 4 + quarter - 1),
/// over `{as_of}`.
pub const QUARTERLY_EMPLOYMENT: &str = include_str!("../sql/metrics/quarterly_employment.sql");

/// One row per participant: the dates and flags the on-track verdicts are
/// made from (see [`crate::on_track`]).
pub const ON_TRACK: &str = include_str!("../sql/metrics/on_track.sql");

/// `program, outcome_group, participants`.
pub const STATUS_DISTRIBUTION: &str = include_str!("../sql/metrics/status_distribution.sql");
/// `program, instrument, paired, mean_first, mean_last, improved, unchanged,
/// worse, lowest_composite, highest_composite`.
pub const MEASUREMENT_CHANGE: &str = include_str!("../sql/metrics/measurement_change.sql");
/// `program, instrument, wave, poor, measured`.
pub const POOR_BY_WAVE: &str = include_str!("../sql/metrics/poor_by_wave.sql");
/// `program, participant, days, got_job`, for the Kaplan–Meier table.
pub const TIME_TO_FIRST_JOB: &str = include_str!("../sql/metrics/time_to_first_job.sql");
