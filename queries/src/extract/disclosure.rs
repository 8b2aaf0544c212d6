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
    hidden: Vec<bool>,
    /// `total = sum(parts)`, by cell index.
    sums: Vec<(usize, Vec<usize>)>,
}

pub type Cell = usize;

/// Assignments tried per hidden cell before giving up on the search; the
/// tables of an extract are far smaller.
const SEARCH_LIMIT: u64 = 5_000_000;

impl Cells {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a published count.
    pub fn count(&mut self, value: u64) -> Cell {
        self.values.push(value);
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
        for (value, hidden) in self.values.iter().zip(self.hidden.iter_mut()) {
            *hidden = (1..=threshold).contains(value);
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
/// non-negative assignment agrees on.
pub fn only_one_value(published: &[Option<u64>], sums: &[(usize, Vec<usize>)]) -> Option<usize> {
    let unknown: Vec<usize> = (0..published.len()).filter(|c| published[*c].is_none()).collect();
    if unknown.is_empty() {
        return None;
    }
    // No hidden cell exceeds the largest published total it takes part in.
    let bound = |c: usize| {
        sums.iter()
            .filter(|(t, p)| *t == c || p.contains(&c))
            .filter_map(|(t, _)| published[*t])
            .min()
            .unwrap_or_else(|| published.iter().flatten().copied().max().unwrap_or(0))
    };
    let bounds: Vec<u64> = unknown.iter().map(|c| bound(*c)).collect();
    let mut seen: Vec<Vec<u64>> = vec![Vec::new(); unknown.len()];
    let mut assignment: Vec<Option<u64>> = published.to_vec();
    let mut steps = 0u64;
    search(0, &unknown, &bounds, &mut assignment, sums, &mut seen, &mut steps);
    if steps >= SEARCH_LIMIT * unknown.len() as u64 {
        return None;
    }
    unknown
        .into_iter()
        .zip(seen)
        .find(|(_, values)| values.len() == 1)
        .map(|(c, _)| c)
}

fn consistent(assignment: &[Option<u64>], sums: &[(usize, Vec<usize>)]) -> bool {
    sums.iter().all(|(total, parts)| {
        let known: u64 = parts.iter().filter_map(|p| assignment[*p]).sum();
        let complete = parts.iter().all(|p| assignment[*p].is_some());
        match assignment[*total] {
            Some(t) if complete => known == t,
            Some(t) => known <= t,
            None => true,
        }
    })
}

fn search(
    i: usize,
    unknown: &[usize],
    bounds: &[u64],
    assignment: &mut Vec<Option<u64>>,
    sums: &[(usize, Vec<usize>)],
    seen: &mut [Vec<u64>],
    steps: &mut u64,
) {
    *steps += 1;
    if *steps >= SEARCH_LIMIT * unknown.len() as u64 || !consistent(assignment, sums) {
        return;
    }
    if i == unknown.len() {
        for (k, cell) in unknown.iter().enumerate() {
            let v = assignment[*cell].unwrap_or(0);
            if !seen[k].contains(&v) && seen[k].len() < 2 {
                seen[k].push(v);
            }
        }
        return;
    }
    for v in 0..=bounds[i] {
        assignment[unknown[i]] = Some(v);
        search(i + 1, unknown, bounds, assignment, sums, seen, steps);
        // Two values already seen for every cell: nothing more to learn.
        if seen.iter().all(|s| s.len() >= 2) {
            break;
        }
    }
    assignment[unknown[i]] = None;
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
