//! The extract's on-track verdicts: for each target, the share expected at
//! the programme's end with its interval and the verdict. Each figure rests
//! on the metric's own cells, so it is hidden with them.

use super::content::{Draft, Kind, Pending, Shown, draft};
use super::disclosure::Cell;
use crate::Outcomes;

/// `metrics`: each metric's (name, numerator, denominator) cells.
pub(super) fn section(o: &Outcomes, metrics: &[(String, Cell, Cell)]) -> Draft {
    use Kind::*;
    let mut section = draft(
        "on_track",
        "On track to meet each target by the programme's end (see Methods)",
        &[
            ("metric", Text),
            ("target_op", Text),
            ("target_value", Share),
            ("ends_on", Text),
            ("basis", Text),
            ("expected", Share),
            ("ci_low", Share),
            ("ci_high", Share),
            ("verdict", Text),
        ],
    );
    for t in o.on_track.iter().flatten() {
        let Some((_, numerator, denominator)) = metrics.iter().find(|(name, _, _)| *name == t.metric) else {
            continue;
        };
        let people = o
            .metrics
            .iter()
            .find(|m| m.metric == t.metric)
            .map_or(0, |m| m.denominator);
        let derived = |value: Shown| Pending::Derived {
            value,
            of: vec![*numerator, *denominator],
            people,
        };
        let share = |v: Option<f64>| derived(v.map_or(Shown::Empty, Shown::Decimal));
        section.rows.push(vec![
            Pending::Text(t.metric.clone()),
            Pending::Text(t.target.op.clone()),
            Pending::Decimal(Some(t.target.value)),
            t.ends_on.map_or(Pending::Empty, |d| Pending::Text(d.to_string())),
            Pending::Text(t.expected.basis.as_str().into()),
            share(t.expected.value),
            share(t.expected.ci_low),
            share(t.expected.ci_high),
            derived(Shown::Text(t.verdict.as_str().into())),
        ]);
    }
    section
}
