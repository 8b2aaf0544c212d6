//! The extract's comparison with another programme: each share beside the
//! other programme's (as of the same date, as known at the same time), with
//! the difference and its Newcombe interval. The other programme's counts
//! are cells under the same disclosure control, and a difference is hidden
//! with any cell it rests on.

use super::content::{Draft, Kind, Pending, Shown, count_in, draft};
use super::disclosure::{Cell, Cells};
use crate::Outcomes;
use crate::statistics::newcombe;

/// `metrics`: this programme's (name, numerator, denominator) cells.
pub(super) fn section(
    other: &Outcomes,
    ours: &Outcomes,
    metrics: &[(String, Cell, Cell)],
    cells: &mut Cells,
    small: &dyn Fn(u64) -> bool,
) -> Draft {
    use Kind::*;
    let mut section = draft(
        "compared",
        "Outcome metrics beside another programme's",
        &[
            ("metric", Text),
            ("other_program", Text),
            ("other_numerator", Integer),
            ("other_denominator", Integer),
            ("other_value", Share),
            ("difference", Share),
            ("difference_ci_low", Share),
            ("difference_ci_high", Share),
        ],
    );
    // The other programme's denominators: its enrolled, or for the
    // metrics that count exits, its exited.
    let enrolled = cells.count(other.enrolled);
    for (name, numerator, denominator) in metrics {
        let (Some(mine), Some(theirs)) = (
            ours.metrics.iter().find(|m| m.metric == *name),
            other.metrics.iter().find(|m| m.metric == *name),
        ) else {
            continue;
        };
        let their_denominator = if theirs.denominator == other.enrolled {
            enrolled
        } else {
            cells.count(theirs.denominator)
        };
        let their_numerator = count_in(cells, theirs.numerator, theirs.denominator, small);
        let derived = |value: Option<f64>, of: Vec<Cell>, people: u64| Pending::Derived {
            value: value.map_or(Shown::Empty, Shown::Decimal),
            of,
            people,
        };
        let difference = newcombe(mine.numerator, mine.denominator, theirs.numerator, theirs.denominator);
        let all = vec![*numerator, *denominator, their_numerator, their_denominator];
        let people = mine.denominator.min(theirs.denominator);
        section.rows.push(vec![
            Pending::Text(name.clone()),
            Pending::Text(other.program.clone()),
            Pending::Count(their_numerator),
            Pending::Count(their_denominator),
            derived(theirs.value, vec![their_numerator, their_denominator], theirs.denominator),
            derived(difference.map(|d| d.0), all.clone(), people),
            derived(difference.map(|d| d.1), all.clone(), people),
            derived(difference.map(|d| d.2), all, people),
        ]);
    }
    section
}
