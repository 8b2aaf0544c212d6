//! The SQL check of programme-defined indicators, run on every way in
//! (HTTP, import) before anything is written: the event crate checks an
//! indicator's shape, and only the query layer can plan its conditions.

use utfall_events::vocabulary::EventData;
use utfall_events::{Invalid, NewEvent};
use utfall_queries::{Analytics, QueryError};

/// The problems of the batch's `indicator_defined` events (none when it
/// holds none); `first` numbers the batch's events in the report.
pub async fn check(analytics: &Analytics, batch: &[NewEvent], first: usize) -> Result<Vec<Invalid>, QueryError> {
    let mut problems = Vec::new();
    for (offset, event) in batch.iter().enumerate() {
        if let EventData::IndicatorDefined(definition) = &event.body {
            for (field, message) in analytics.check_indicator(definition).await? {
                problems.push(Invalid::new(
                    first + offset,
                    None,
                    Some(event.event_id.to_string()),
                    &field,
                    &message,
                ));
            }
        }
    }
    Ok(problems)
}
