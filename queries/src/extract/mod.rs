//! Funder extracts: the reporting period and disclosure control.

pub mod disclosure;
pub mod period;

pub use period::{Period, PeriodError, PeriodKind};
