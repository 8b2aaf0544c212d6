//! Ranges of log positions, one file per table each, and which neighbouring
//! ranges to merge.

use std::ops::Range;

/// The log positions `first..=last`, whose rows one file per table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub first: u64,
    pub last: u64,
}

impl Part {
    pub fn file_name(&self) -> String {
        format!("part-{:020}-{:020}.parquet", self.first, self.last)
    }

    /// The name of the range's file as written again by the commit
    /// `version` (an erasure's).
    pub fn file_name_at(&self, version: u64) -> String {
        format!("part-{:020}-{:020}-v{version}.parquet", self.first, self.last)
    }

        pub fn rows(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Size class: files within a factor of four of each other share one.
    pub fn tier(&self) -> u32 {
        self.rows().ilog(MERGE_FACTOR)
    }
}

const MERGE_FACTOR: u64 = 4;

/// The first span to merge: for the smallest tier that has one, the
/// neighbouring files from the start of a run of files no larger than that
/// tier through its `width`-th file of exactly that tier. Smaller files in
/// between are swept in, so mixed sizes cannot keep the count growing.
pub fn mergeable(parts: &[Part], width: usize) -> Option<Range<usize>> {
    let mut tiers: Vec<u32> = parts.iter().map(Part::tier).collect();
    tiers.sort_unstable();
    tiers.dedup();
    for tier in tiers {
        let (mut start, mut count) = (0, 0);
        for (i, part) in parts.iter().enumerate() {
            if part.tier() > tier {
                (start, count) = (i + 1, 0);
                continue;
            }
            if part.tier() == tier {
                count += 1;
                if count == width {
                    return Some(start..i + 1);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_log_order_and_tiers_group_similar_sizes() {
        let part = Part { first: 1, last: 1000 };
        assert_eq!(
            part.file_name(),
            "part-00000000000000000001-00000000000000001000.parquet"
        );
        assert_eq!(
            Part { first: 1, last: 1000 }.tier(),
            Part {
                first: 1001,
                last: 1900
            }
            .tier()
        );
        assert!(Part { first: 1, last: 4000 }.tier() > Part { first: 1, last: 1000 }.tier());
    }

    #[test]
    fn spans_of_one_tier_merge_and_sweep_in_smaller_files() {
        let p = |first, last| Part { first, last };
        let parts = [
            p(1, 4000),
            p(4001, 5000),
            p(5001, 5002),
            p(5003, 6000),
            p(6001, 7000),
            p(7001, 8000),
        ];
        assert_eq!(mergeable(&parts, 4), Some(1..6));
        assert_eq!(mergeable(&parts[..5], 4), None);
    }
}
