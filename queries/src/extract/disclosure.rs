//! Small-cell suppression for published tables.
//!
//! Every published count is a cell; sums tie cells together (a table's row
//! total, a metric's denominator that is also a table's total). Primary
//! suppression hides counts from 1 to the threshold. Secondary suppression
//! then hides more cells until no hidden cell can be worked back: no sum
//! with exactly one hidden cell remains, and an exhaustive search over every
//! non-negative integer assignment consistent with the published sums finds
//! at least two values for each hidden cell.

/// Cells of an extract and the sums that tie them together.
#[derive(Clone, Debug, Default)]
pub struct Cells {
    values: Vec<u64>,
    /// Hidden whatever the value (a count whose complement is small).
    forced: Vec<bool>,
    hidden: Vec<bool>,
    /// `total = sum(parts)`, by cell index.
    sums: Vec<(usize, Vec<usize>)>,
}

pub type Cell = usize;

/// Search steps per question before giving up (and hiding more); the
/// tables of an extract need far fewer.
const SEARCH_LIMIT: u64 = 200_000;

impl Cells {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a published count.
    pub fn count(&mut self, value: u64) -> Cell {
        self.count_or_hide(value, false)
    }

    /// Adds a count that is hidden from the start when `hide` (e.g. 14 of
    /// 15 in a job tells that one was not).
    pub fn count_or_hide(&mut self, value: u64, hide: bool) -> Cell {
        self.values.push(value);
        self.forced.push(hide);
        self.hidden.push(false);
        self.values.len() - 1
    }

    /// Declares `total = sum(parts)` (all cells of this set).
    pub fn sum(&mut self, total: Cell, parts: &[Cell]) {
        self.sums.push((total, parts.to_vec()));
    }

    pub fn value(&self, cell: Cell) -> u64 {
        self.values[cell]
    }

    pub fn is_hidden(&self, cell: Cell) -> bool {
        self.hidden[cell]
    }

    pub fn hidden_count(&self) -> usize {
        self.hidden.iter().filter(|h| **h).count()
    }

    /// Hides what must be hidden for `threshold`; returns (primary,
    /// secondary) counts of hidden cells.
    pub fn suppress(&mut self, threshold: u64) -> (usize, usize) {
        for ((value, forced), hidden) in self.values.iter().zip(&self.forced).zip(self.hidden.iter_mut()) {
            *hidden = *forced || (1..=threshold).contains(value);
        }
        let primary = self.hidden_count();
        loop {
            if let Some(sum) = self.sums.iter().position(|s| self.unknowns(s) == 1) {
                self.hide_partner(sum);
                continue;
            }
            match self.recoverable() {
                Some(cell) => {
                    // A partner in a sum of that cell, else in any sum with
                    // a hidden cell (the value may be fixed through it).
                    let involves = |s: &(usize, Vec<usize>), c: usize| s.0 == c || s.1.contains(&c);
                    let mut order: Vec<usize> = (0..self.sums.len())
                        .filter(|s| involves(&self.sums[*s], cell))
                        .collect();
                    order.extend((0..self.sums.len()).filter(|s| self.unknowns(&self.sums[*s]) > 0));
                    if !order.into_iter().any(|s| self.hide_partner(s)) {
                        break;
                    }
                }
                None => break,
            }
        }
        (primary, self.hidden_count() - primary)
    }

    fn unknowns(&self, (total, parts): &(usize, Vec<usize>)) -> usize {
        std::iter::once(total).chain(parts).filter(|c| self.hidden[**c]).count()
    }

    /// Hides one more visible cell of the sum: the smallest non-zero part
    /// (a zero hides little), else the total. False when none is left.
    fn hide_partner(&mut self, sum: usize) -> bool {
        let (total, parts) = &self.sums[sum];
        let candidate = parts
            .iter()
            .filter(|c| !self.hidden[**c])
            .min_by_key(|c| (self.values[**c] == 0, self.values[**c]))
            .or((!self.hidden[*total]).then_some(total))
            .copied();
        match candidate {
            Some(cell) => {
                self.hidden[cell] = true;
                true
            }
            None => false,
        }
    }

    /// A hidden cell that has one possible value given everything published,
    /// if any.
    pub fn recoverable(&self) -> Option<Cell> {
        let published: Vec<Option<u64>> = (0..self.values.len())
            .map(|c| (!self.hidden[c]).then_some(self.values[c]))
            .collect();
        only_one_value(&published, &self.sums)
    }
}

/// The attacker's view: `published` cells (None where hidden) and the sums
/// tying them; returns a hidden cell whose value every consistent
/// non-negative integer assignment agrees on. For each hidden cell it finds
/// one consistent assignment, then looks for another with a different
/// value of that cell. When the search is too large to finish, the cell is
/// reported, so that more is hidden.
pub fn only_one_value(published: &[Option<u64>], sums: &[(usize, Vec<usize>)]) -> Option<usize> {
    let mut search = Search {
        sums,
        largest: published.iter().flatten().copied().max().unwrap_or(0),
        steps: 0,
    };
    let base = search.feasible(published.to_vec())?;
    (0..published.len()).filter(|c| published[*c].is_none()).find(|&cell| {
        let seen = base[cell].unwrap_or(0);
        let other = (0..=search.bound(published, cell)).filter(|v| *v != seen).any(|v| {
            let mut fixed = published.to_vec();
            fixed[cell] = Some(v);
            search.steps = 0;
            search.feasible(fixed).is_some()
        });
        !other || search.steps >= SEARCH_LIMIT
    })
}

struct Search<'a> {
    sums: &'a [(usize, Vec<usize>)],
    largest: u64,
    steps: u64,
}

impl Search<'_> {
    /// No part exceeds a known total it belongs to.
    fn bound(&self, a: &[Option<u64>], cell: usize) -> u64 {
        self.sums
            .iter()
            .filter(|(_, parts)| parts.contains(&cell))
            .filter_map(|(t, _)| a[*t])
            .min()
            .unwrap_or(self.largest)
    }

    /// Fills in every cell a sum forces (one unknown left); false when a
    /// sum cannot hold.
    fn propagate(&self, a: &mut [Option<u64>]) -> bool {
        loop {
            let mut changed = false;
            for (total, parts) in self.sums {
                let open: Vec<usize> = parts.iter().copied().filter(|p| a[*p].is_none()).collect();
                let known: u64 = parts.iter().filter_map(|p| a[*p]).sum();
                match (a[*total], open.as_slice()) {
                    (Some(t), []) if known != t => return false,
                    (Some(t), _) if known > t => return false,
                    (Some(t), [only]) => {
                        a[*only] = Some(t - known);
                        changed = true;
                    }
                    (None, []) => {
                        a[*total] = Some(known);
                        changed = true;
                    }
                    _ => {}
                }
            }
            if !changed {
                return true;
            }
        }
    }

    /// A complete consistent assignment extending `a`, if there is one.
    fn feasible(&mut self, mut a: Vec<Option<u64>>) -> Option<Vec<Option<u64>>> {
        self.steps += 1;
        if self.steps >= SEARCH_LIMIT || !self.propagate(&mut a) {
            return None;
        }
        // Branch on a cell of the sum with the fewest open cells.
        let next = self
            .sums
            .iter()
            .filter_map(|(total, parts)| {
                let open: Vec<usize> = std::iter::once(total)
                    .chain(parts)
                    .copied()
                    .filter(|c| a[*c].is_none())
                    .collect();
                (!open.is_empty()).then_some(open)
            })
            .min_by_key(Vec::len)
            .and_then(|open| open.first().copied());
        let Some(cell) = next else {
            // Cells in no sum can be anything.
            return Some(a.into_iter().map(|v| Some(v.unwrap_or(0))).collect());
        };
        for v in 0..=self.bound(&a, cell) {
            let mut next = a.clone();
            next[cell] = Some(v);
            if let Some(found) = self.feasible(next) {
                return Some(found);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OPTIMIST's status distribution: job 5, activity 5, moved 2, benefit 1,
    /// none 2, total 15.
    fn optimist() -> (Cells, Vec<Cell>, Cell) {
        let mut cells = Cells::new();
        let groups: Vec<Cell> = [5, 5, 2, 1, 2].iter().map(|v| cells.count(*v)).collect();
        let total = cells.count(15);
        cells.sum(total, &groups);
        (cells, groups, total)
    }

    #[test]
    fn small_counts_are_hidden_and_cannot_be_worked_back() {
        let (mut cells, groups, total) = optimist();
        let (primary, _) = cells.suppress(4);
        assert_eq!(primary, 3);
        assert!(groups[2..].iter().all(|c| cells.is_hidden(*c)));
        assert!(!cells.is_hidden(total));
        assert_eq!(cells.recoverable(), None);
    }

    #[test]
    fn a_lone_hidden_cell_gets_a_partner() {
        let mut cells = Cells::new();
        let parts: Vec<Cell> = [10, 3, 7, 0].iter().map(|v| cells.count(*v)).collect();
        let total = cells.count(20);
        cells.sum(total, &parts);
        let (primary, secondary) = cells.suppress(4);
        assert_eq!((primary, secondary), (1, 1));
        assert!(cells.is_hidden(parts[2]), "the smallest non-zero other part");
        assert_eq!(cells.recoverable(), None);
    }

    #[test]
    fn two_ones_summing_to_two_are_found_and_more_is_hidden() {
        // Hidden 1 and 1 with published total 2 and zero elsewhere: both
        // must be 1 unless more is hidden.
        let mut cells = Cells::new();
        let parts: Vec<Cell> = [1, 1, 9].iter().map(|v| cells.count(*v)).collect();
        let total = cells.count(11);
        cells.sum(total, &parts);
        let row = cells.count(2);
        cells.sum(row, &parts[..2]);
        cells.suppress(4);
        assert_eq!(cells.recoverable(), None);
        assert!(cells.is_hidden(row) || cells.is_hidden(parts[2]));
    }

    #[test]
    fn the_attack_finds_a_cell_fixed_by_a_total() {
        // 3 hidden, total 10, others 7: the hidden cell can only be 3.
        let published = [None, Some(7), Some(10)];
        assert_eq!(only_one_value(&published, &[(2, vec![0, 1])]), Some(0));
        let published = [None, None, Some(10)];
        assert_eq!(only_one_value(&published, &[(2, vec![0, 1])]), None);
    }
}
