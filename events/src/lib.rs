//! utfall's event vocabulary and event log.
//!
//! * [`vocabulary`] and [`envelope`]: what an event is (schema version 1).
//! * [`wire`]: parsing submitted events strictly, reporting every problem.
//! * [`rules`]: the rules that depend on a stream's history.
//! * [`log`]: the [`log::EventLog`] trait and its JetStream and embedded stores.
//! * [`sealing`]: how the log stores a participant's data, sealed with
//!   their own key so that erasing the key erases the data.

pub mod country;
pub mod date;
pub mod envelope;
pub mod instrument;
pub mod invalid;
pub mod log;
pub mod names;
pub mod rules;
pub mod schema;
pub mod sealing;
pub mod strict_json;
pub mod vocabulary;
pub mod wire;

pub use date::Date;
pub use envelope::{NewEvent, RecordedEvent, StoredEvent, StreamKey};
pub use invalid::{Conflict, Invalid};
pub use log::{AppendError, Appended, EventLog, LogError, Quarantined};
pub use names::{ProgramName, Pseudonym};
pub use vocabulary::EventData;
