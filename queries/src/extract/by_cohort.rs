//! The extract's share metrics by enrolment year (funders compare those
//! enrolled in one year with the next), each beside the first cohort's
//! with the difference and its interval, under the same disclosure
//! control: every count is a cell, each cohort's counts add up to the
//! programme's, and a difference is hidden with any cell it is made of.

use super::content::{Draft, Kind, Pending, Shown, count_in, draft};
use super::disclosure::{Cell, Cells};
use crate::Outcomes;

/// The programme's own figures the cohorts add up to: the enrolled cell,
/// and each metric's (name, numerator, denominator) cells.
pub(super) struct Totals<'a> {
    pub enrolled: Cell,
    pub metrics: &'a [(String, Cell, Cell)],
}

pub(super) fn section(o: &Outcomes, totals: &Totals, cells: &mut Cells, small: &dyn Fn(u64) -> bool) -> Draft {
    use Kind::*;
    let mut section = draft(
        "metrics_by_cohort",
        "Outcome metrics by year of enrolment, each beside the first year's",
        &[
            ("cohort", Text),
            ("metric", Text),
            ("numerator", Integer),
            ("denominator", Integer),
            ("value", Share),
            ("ci_low", Share),
            ("ci_high", Share),
            ("difference", Share),
            ("difference_ci_low", Share),
            ("difference_ci_high", Share),
        ],
    );
    section.keys = 2;
    let Some(cohorts) = &o.cohorts else { return section };
    let mut enrolled_parts = Vec::new();
    // Per metric: the cohorts' numerator and denominator cells.
    let mut parts: Vec<(Vec<Cell>, Vec<Cell>)> = vec![(Vec::new(), Vec::new()); totals.metrics.len()];
    // The first cohort's cells per metric, which each difference rests on.
    let mut first: Vec<Option<(Cell, Cell)>> = vec![None; totals.metrics.len()];
    for cohort in cohorts {
        let enrolled = cells.count(cohort.enrolled);
        enrolled_parts.push(enrolled);
        for m in &cohort.metrics {
            let Some(i) = totals.metrics.iter().position(|(name, _, _)| *name == m.share.metric) else {
                continue;
            };
            let (k, n) = (m.share.numerator, m.share.denominator);
            // Most metrics count the enrolled; the others' denominators are
            // counts of their own that add up to the programme's.
            let denominator = if totals.metrics[i].2 == totals.enrolled {
                enrolled
            } else {
                cells.count(n)
            };
            let numerator = count_in(cells, k, n, small);
            parts[i].0.push(numerator);
            parts[i].1.push(denominator);
            let mut of = vec![numerator, denominator];
            of.extend(first[i].iter().flat_map(|(a, b)| [*a, *b]));
            first[i].get_or_insert((numerator, denominator));
            let derived = |value: Option<f64>, of: &[Cell]| Pending::Derived {
                value: value.map_or(Shown::Empty, Shown::Decimal),
                of: of.to_vec(),
                people: n,
            };
            let d = m.difference.as_ref();
            section.rows.push(vec![
                Pending::Text(cohort.cohort.clone()),
                Pending::Text(m.share.metric.clone()),
                Pending::Count(numerator),
                Pending::Count(denominator),
                derived(m.share.value, &of[..2]),
                derived(m.share.ci_low, &of[..2]),
                derived(m.share.ci_high, &of[..2]),
                derived(d.map(|d| d.value), &of),
                derived(d.map(|d| d.ci_low), &of),
                derived(d.map(|d| d.ci_high), &of),
            ]);
        }
    }
    cells.sum(totals.enrolled, &enrolled_parts);
    for ((_, numerator, denominator), (numerators, denominators)) in totals.metrics.iter().zip(&parts) {
        cells.sum(*numerator, numerators);
        if *denominator != totals.enrolled {
            cells.sum(*denominator, denominators);
        }
    }
    section
}
