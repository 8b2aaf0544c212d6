//! Revisions: when late-recorded events change a delivered period's
//! figures, the new extract carries a `changes` section listing every
//! published figure that differs, old and new, as each was published
//! (suppressed cells stay suppressed on both sides).

use std::collections::BTreeMap;

use super::content::{Extract, Kind, Section, Shown};
use super::files::{Replaced, text, timestamp};
use super::methods;

/// Shown for a figure of a row that one of the two extracts does not have.
const ABSENT: &str = "(no row)";

/// Every figure of `new` that differs from `old`, in section and row order.
pub fn changes(old: &Extract, new: &Extract) -> Section {
    let mut rows = Vec::new();
    for section in new.sections.iter().filter(|s| s.name != "methods") {
        let before = old.sections.iter().find(|s| s.name == section.name);
        let old_rows = before.map(keyed).unwrap_or_default();
        let new_rows = keyed(section);
        let mut keys: Vec<&String> = new_rows.keys().collect();
        keys.extend(old_rows.keys().filter(|k| !new_rows.contains_key(*k)));
        for key in keys {
            for (c, (column, _)) in section.columns.iter().enumerate().skip(section.keys) {
                let value = |rows: &BTreeMap<String, &Vec<Shown>>| {
                    rows.get(key)
                        .map_or(ABSENT.to_string(), |r| r.get(c).map(text).unwrap_or_default())
                };
                let (was, is) = (value(&old_rows), value(&new_rows));
                if was != is {
                    rows.push(
                        [section.name, key, column, &was, &is]
                            .map(|t| Shown::Text(t.to_string()))
                            .to_vec(),
                    );
                }
            }
        }
    }
    Section {
        name: "changes",
        title: "Changes since the previous revision",
        columns: ["section", "row", "column", "previous", "revised"]
            .map(|c| (c, Kind::Text))
            .to_vec(),
        keys: 3,
        rows,
    }
}

/// A section's rows by the text of their key columns.
fn keyed(section: &Section) -> BTreeMap<String, &Vec<Shown>> {
    section
        .rows
        .iter()
        .map(|r| {
            let key: Vec<String> = r.iter().take(section.keys).map(text).collect();
            (key.join(" "), r)
        })
        .collect()
}

impl Extract {
    /// Makes this extract revision `revision`, replacing `previous`: adds
    /// the changes section and says so in the methods.
    pub fn revise(&mut self, previous: &Extract, revision: u32, changes: Section) {
        let replaced = Replaced {
            revision: previous.revision,
            known_at: timestamp(&previous.known_at),
        };
        let note = methods::revision_note(
            self.lang.unwrap_or_default(),
            revision,
            replaced.revision,
            &replaced.known_at,
        );
        if let Some(section) = self.sections.iter_mut().find(|s| s.name == "methods") {
            section.rows.push(note);
        }
        self.revision = revision;
        self.replaces = Some(replaced);
        self.sections.push(changes);
    }
}
