//! Erasure in the lake. Parquet files cannot be edited, so a file holding
//! an erased participant's rows is written again without them, and the old
//! one deleted as soon as the commit that drops it is made (not kept for
//! the grace a merge gives a running query).

use std::collections::HashSet;

use arrow::array::{Array, AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use utfall_events::{EventData, StoredEvent};

use crate::ProjectionError;

/// Erased participants, as (programme, pseudonym).
pub type Erased = HashSet<(String, String)>;

/// The participants whom `events` erase.
pub fn erased_in(events: &[&StoredEvent]) -> Erased {
    events
        .iter()
        .filter(|stored| matches!(stored.event.body, EventData::ParticipantErased(_)))
        .filter_map(|stored| {
            let e = &stored.event;
            Some((e.program.to_string(), e.participant.as_ref()?.to_string()))
        })
        .collect()
}

/// Whether `stored` is an event of one of `erased` (their erasure included).
pub fn is_of(erased: &Erased, stored: &StoredEvent) -> bool {
    let e = &stored.event;
    e.participant
        .as_ref()
        .is_some_and(|p| erased.contains(&(e.program.to_string(), p.to_string())))
}

/// `batch` without the rows of `erased`, and how many were left out. A
/// table without `program` and `participant` columns has none of theirs.
pub fn without(batch: RecordBatch, erased: &Erased) -> Result<(RecordBatch, usize), ProjectionError> {
    let (Some(program), Some(participant)) = (
        batch.column_by_name("program").and_then(|c| c.as_string_opt::<i32>()),
        batch.column_by_name("participant").and_then(|c| c.as_string_opt::<i32>()),
    ) else {
        return Ok((batch, 0));
    };
    let keep: BooleanArray = (0..batch.num_rows())
        .map(|row| {
            let theirs = !participant.is_null(row)
                && erased.contains(&(program.value(row).to_string(), participant.value(row).to_string()));
            Some(!theirs)
        })
        .collect();
    let left_out = keep.false_count();
    if left_out == 0 {
        return Ok((batch, 0));
    }
    Ok((filter_record_batch(&batch, &keep)?, left_out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn only_the_erased_participants_rows_are_left_out() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("position", DataType::Int64, false),
            Field::new("program", DataType::Utf8, false),
            Field::new("participant", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
                Arc::new(StringArray::from(vec!["p", "p", "q", "p"])),
                Arc::new(StringArray::from(vec![None, Some("a"), Some("a"), Some("b")])),
            ],
        )
        .expect("batch");
        let erased: Erased = [("p".to_string(), "a".to_string())].into();
        let (kept, left_out) = without(batch.clone(), &erased).expect("filter");
        assert_eq!(left_out, 1);
        let positions: Vec<i64> = kept.column(0).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec();
        assert_eq!(positions, [1, 3, 4], "programme rows and another programme's namesake stay");
        let (same, none) = without(batch, &Erased::new()).expect("filter");
        assert_eq!((same.num_rows(), none), (4, 0));
    }
}
