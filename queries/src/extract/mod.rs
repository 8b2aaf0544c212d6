//! Funder extracts: the reporting period, the content with disclosure
//! control, and the files.

mod by_cohort;
mod compared;
pub mod content;
pub mod disclosure;
pub mod files;
mod methods;
mod on_track;
pub mod period;
pub mod revision;

pub use content::{Asked, Extract, Kind, Section, Shown};
pub use files::{Format, Manifest, Replaced};
pub use period::{Period, PeriodError, PeriodKind};
