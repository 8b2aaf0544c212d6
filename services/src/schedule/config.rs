//! The extract schedule: a TOML file with one `[[extract]]` table per
//! standing order (README "Funders" documents every key).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use utfall_events::ProgramName;
use utfall_queries::extract::{Format, Period, PeriodKind};
use utfall_queries::horizon::{Anchor, Horizon, Months};
use utfall_queries::language::Language;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    extract: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    #[serde(default = "all")]
    program: String,
    period: Cadence,
    #[serde(default = "every_format")]
    formats: Vec<Format>,
    #[serde(default = "four")]
    min_cell: u64,
    #[serde(default = "extracts")]
    out: PathBuf,
    #[serde(default = "fourteen")]
    grace_days: u32,
    first_period: Option<String>,
    /// The share metrics also at a horizon: `horizon = "6m"`, with
    /// `horizon_from` (`exit`, the default, or `enrolment`) and `censor`.
    horizon: Option<String>,
    horizon_from: Option<String>,
    #[serde(default)]
    censor: bool,
    /// The language of the XLSX and HTML files: `nb`, `da` or `en`.
    lang: Option<String>,
    /// Another programme each share is set beside.
    compare_with: Option<String>,
}

fn all() -> String {
    "all".into()
}
fn every_format() -> Vec<Format> {
    vec![Format::Xlsx, Format::Csv, Format::Parquet, Format::Html]
}
fn four() -> u64 {
    4
}
fn extracts() -> PathBuf {
    "extracts".into()
}
fn fourteen() -> u32 {
    14
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    Monthly,
    Quarterly,
    Yearly,
}

impl Cadence {
    pub fn kind(self) -> PeriodKind {
        match self {
            Cadence::Monthly => PeriodKind::Month,
            Cadence::Quarterly => PeriodKind::Quarter,
            Cadence::Yearly => PeriodKind::Year,
        }
    }
}

/// One standing order, checked.
#[derive(Clone, Debug)]
pub struct Entry {
    /// None: every programme.
    pub program: Option<ProgramName>,
    pub cadence: Cadence,
    pub formats: Vec<Format>,
    pub threshold: u64,
    /// Relative paths in the file are taken from the file's folder.
    pub out: PathBuf,
    /// Days after a period ends before its extract is made, for late records.
    pub grace_days: u32,
    /// The earliest period to produce; None: from the programme's start.
    pub first_period: Option<Period>,
    pub horizon: Option<Horizon>,
    pub compare_with: Option<ProgramName>,
    pub lang: Option<Language>,
}

/// Reads and checks a schedule; errors name the entry and the key.
pub fn load(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the schedule {}", path.display()))?;
    parse(&text, path)
}

/// Checks the schedule `text` read from `path` (output folders are
/// relative to its folder).
pub fn parse(text: &str, path: &Path) -> anyhow::Result<Vec<Entry>> {
    let file: File = toml::from_str(text).with_context(|| format!("schedule {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    file.extract
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let at = |key: &str| {
                format!(
                    "schedule {}: [[extract]] {} (counting from 1): {key}",
                    path.display(),
                    i + 1
                )
            };
            let program = match raw.program.as_str() {
                "all" => None,
                name => {
                    Some(ProgramName::new(name.to_string()).map_err(|e| anyhow::anyhow!("{}: {e}", at("program")))?)
                }
            };
            if raw.min_cell == 0 {
                bail!("{}: must be 1 or more", at("min_cell"));
            }
            if raw.formats.is_empty() {
                bail!("{}: name at least one of xlsx, csv, parquet, html", at("formats"));
            }
            let first_period = raw
                .first_period
                .map(|p| p.parse::<Period>().with_context(|| at("first_period")))
                .transpose()?;
            if let Some(p) = &first_period
                && p.kind != raw.period.kind()
            {
                bail!("{}: {p} is not a {:?} period", at("first_period"), raw.period);
            }
            let horizon = match (&raw.horizon, &raw.horizon_from, raw.censor) {
                (None, None, false) => None,
                (None, _, _) => bail!("{}: `horizon_from` and `censor` need a `horizon`", at("horizon")),
                (Some(months), from, censor) => Some(Horizon {
                    months: months.parse::<Months>().map_err(|e| anyhow::anyhow!("{}: {e}", at("horizon")))?.0,
                    from: from
                        .as_deref()
                        .map_or(Ok(Anchor::Exit), str::parse)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", at("horizon_from")))?,
                    censor,
                }),
            };
            Ok(Entry {
                program,
                cadence: raw.period,
                formats: raw.formats,
                threshold: raw.min_cell,
                out: base.join(raw.out),
                grace_days: raw.grace_days,
                first_period,
                horizon,
                compare_with: raw
                    .compare_with
                    .map(ProgramName::new)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at("compare_with")))?,
                lang: raw
                    .lang
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("{}: {e}", at("lang")))?,
            })
        })
        .collect()
}
