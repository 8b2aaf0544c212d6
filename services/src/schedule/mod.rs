//! The extract scheduler `utfall serve --schedule FILE` runs: after a
//! period closes and its grace days have passed, each standing order's
//! extract for that period is made once. What is on disk is the only
//! state: a period is done when its folder exists, so a restart neither
//! skips a period (every closed period without a folder is due) nor
//! repeats one.

pub mod config;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use utfall_events::{EventLog, ProgramName};
use utfall_projections::Lake;
use utfall_projections::follow::Projection;
use utfall_queries::Analytics;

use crate::extract::{Order, deliver, folders};
pub use config::{Cadence, Entry, load};

/// How soon a check looks again while the lake catches up with the log.
const CATCH_UP_POLL: Duration = Duration::from_secs(1);

pub struct Scheduler {
    entries: Vec<Entry>,
}

impl Scheduler {
    /// Removes what an interrupted run left in the output folders.
    pub fn new(entries: Vec<Entry>) -> Self {
        for entry in &entries {
            folders::tidy(&entry.out);
        }
        Self { entries }
    }

    /// The folders extracts are written to.
    pub fn outputs(&self) -> Vec<PathBuf> {
        let mut outs: Vec<PathBuf> = Vec::new();
        for entry in &self.entries {
            if !outs.contains(&entry.out) {
                outs.push(entry.out.clone());
            }
        }
        outs
    }

    /// Every extract due at `now` that no folder holds yet, oldest period first.
    pub async fn due(&self, analytics: &Analytics, now: DateTime<Utc>) -> anyhow::Result<Vec<(Order, PathBuf)>> {
        let programmes: Vec<(ProgramName, NaiveDate)> = analytics
            .programmes(now)
            .await?
            .into_iter()
            .filter_map(|p| Some((ProgramName::new(p.program).ok()?, p.starts_on?)))
            .collect();
        let today = now.date_naive();
        let mut due = Vec::new();
        for entry in &self.entries {
            for (program, starts_on) in &programmes {
                if entry.program.as_ref().is_some_and(|p| p != program) {
                    continue;
                }
                let first = match &entry.first_period {
                    Some(p) => Some(p.clone()),
                    None => utfall_queries::extract::Period::containing(entry.cadence.kind(), *starts_on),
                };
                let mut period = first;
                while let Some(p) = period {
                    let closes = p.last.checked_add_days(Days::new(u64::from(entry.grace_days) + 1));
                    if closes.is_none_or(|c| c > today) {
                        break;
                    }
                    if !folders::folder(&entry.out, program.as_str(), &p.to_string(), 1).exists()
                        && p.last >= *starts_on
                    {
                        let order = Order {
                            program: program.clone(),
                            period: p.clone(),
                            known_at: now,
                            threshold: entry.threshold,
                            horizon: entry.horizon,
                            compare_with: entry.compare_with.clone(),
                            lang: entry.lang,
                            formats: entry.formats.clone(),
                        };
                        due.push((order, entry.out.clone()));
                    }
                    period = p.next();
                }
            }
        }
        due.sort_by(|a, b| (a.0.period.last, a.0.program.as_str()).cmp(&(b.0.period.last, b.0.program.as_str())));
        Ok(due)
    }

    /// Makes every extract due at `now`; returns the folders written. A
    /// failed extract is logged and due again at the next tick.
    pub async fn tick(&self, analytics: &Analytics, now: DateTime<Utc>) -> anyhow::Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for (order, out) in self.due(analytics, now).await? {
            match deliver(analytics, &out, &order).await {
                Ok(w) => {
                    tracing::info!(program = %order.program, period = %order.period, folder = %w.folder.display(), "extract made");
                    written.push(w.folder);
                }
                Err(e) => {
                    tracing::error!(program = %order.program, period = %order.period, error = %e, "extract failed; retried at the next check")
                }
            }
        }
        Ok(written)
    }

    /// Checks every `every` against the wall clock, until the process ends.
    /// A check waits until the lake holds the whole log: an extract made
    /// as known at `now` must count every event recorded by then, or its
    /// reproduction would differ.
    pub async fn run(self, analytics: Analytics, log: Arc<dyn EventLog>, lake: Arc<Lake>, every: Duration) {
        loop {
            let now = Utc::now();
            // Caught up when nothing readable follows the lake's position
            // (a quarantined last event leaves the head beyond it).
            let wait = match lake.position().await {
                Ok(position) => match log.read(position, 1).await {
                    Ok(next) if next.is_empty() => {
                        if let Err(e) = self.tick(&analytics, now).await {
                            tracing::error!(error = %e, "extract schedule check failed");
                        }
                        every
                    }
                    Ok(_) => {
                        tracing::debug!(position, "extract schedule waits for the lake to catch up");
                        CATCH_UP_POLL
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "extract schedule: the log cannot be read");
                        every
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "extract schedule: the lake is unreadable");
                    every
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}
