//! The lake's files: one per range of log positions.

use std::path::Path;

use crate::ProjectionError;

/// Suffix of a file being written.
pub const TEMPORARY: &str = ".tmp";

/// A file holding the events at positions `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub first: u64,
    pub last: u64,
}

impl Part {
    pub fn file_name(&self) -> String {
        format!("part-{:020}-{:020}.parquet", self.first, self.last)
    }

    fn parse(name: &str) -> Option<Self> {
        let range = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let (first, last) = range.split_once('-')?;
        Some(Self {
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        })
    }

    pub fn rows(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Size class: files within a factor of four of each other share one.
    pub fn tier(&self) -> u32 {
        self.rows().ilog(MERGE_FACTOR)
    }

    fn covers(&self, other: &Part) -> bool {
        self != other && self.first <= other.first && other.last <= self.last
    }
}

const MERGE_FACTOR: u64 = 4;

/// The first span to merge: for the smallest tier that has one, the
/// neighbouring files from the start of a run of files no larger than that
/// tier through its `width`-th file of exactly that tier. Smaller files in
/// between are swept in, so mixed sizes cannot keep the count growing.
pub fn mergeable(parts: &[Part], width: usize) -> Option<&[Part]> {
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
                    return Some(&parts[start..=i]);
                }
            }
        }
    }
    None
}

fn names(dir: &Path) -> Result<Vec<String>, ProjectionError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ProjectionError::Lake(format!("{}: {e}", dir.display())))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// The files in log order; files merged into another are left out.
pub fn list(dir: &Path) -> Result<Vec<Part>, ProjectionError> {
    let all: Vec<Part> = names(dir)?.iter().filter_map(|n| Part::parse(n)).collect();
    let mut parts: Vec<Part> = all
        .iter()
        .copied()
        .filter(|p| !all.iter().any(|q| q.covers(p)))
        .collect();
    parts.sort_by_key(|p| p.first);
    Ok(parts)
}

/// Removes temporary files and files already merged into another.
pub fn tidy(dir: &Path) -> Result<(), ProjectionError> {
    let names = names(dir)?;
    let all: Vec<Part> = names.iter().filter_map(|n| Part::parse(n)).collect();
    let leftovers = names
        .iter()
        .filter(|n| n.ends_with(TEMPORARY) || Part::parse(n).is_some_and(|p| all.iter().any(|q| q.covers(&p))));
    for name in leftovers {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|e| ProjectionError::Lake(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_tiers_group_similar_sizes() {
        let part = Part { first: 1, last: 1000 };
        assert_eq!(Part::parse(&part.file_name()), Some(part));
        assert_eq!(Part::parse("part-1-2.parquet.tmp"), None);
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
        assert_eq!(mergeable(&parts, 4), Some(&parts[1..]));
        assert_eq!(mergeable(&parts[..5], 4), None);
    }

    #[test]
    fn a_merged_file_hides_its_inputs() {
        let dir = tempfile::tempdir().expect("temporary directory");
        for part in [
            Part { first: 1, last: 10 },
            Part { first: 11, last: 20 },
            Part { first: 1, last: 20 },
        ] {
            std::fs::write(dir.path().join(part.file_name()), b"").expect("write");
        }
        std::fs::write(dir.path().join(format!("x{TEMPORARY}")), b"").expect("write");
        assert_eq!(list(dir.path()).expect("list"), [Part { first: 1, last: 20 }]);
        tidy(dir.path()).expect("tidy");
        assert_eq!(names(dir.path()).expect("names").len(), 1);
    }
}
