//! Measurement instruments and the items each one scores.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Instrument {
    /// COOP/WONCA function chart: each item 1–5, 5 worst.
    CoopWonca,
    /// Self-rated mental health: `rating` 1 (excellent) … 5 (poor).
    SelfRatedMentalHealth,
    /// Self-rated physical health: `rating` 1 (excellent) … 5 (poor).
    SelfRatedPhysicalHealth,
}

const COOP_WONCA_ITEMS: [&str; 7] = [
    "physical_fitness",
    "feelings",
    "daily_activities",
    "social_activities",
    "change_in_health",
    "overall_health",
    "pain",
];
const RATING_ITEMS: [&str; 1] = ["rating"];

impl Instrument {
    pub fn items(self) -> &'static [&'static str] {
        match self {
            Instrument::CoopWonca => &COOP_WONCA_ITEMS,
            Instrument::SelfRatedMentalHealth | Instrument::SelfRatedPhysicalHealth => &RATING_ITEMS,
        }
    }

    /// Every item must belong to the instrument and be an integer 1–5.
    /// Returns (item, message) for each problem.
    pub fn check_scores(self, scores: &BTreeMap<String, f64>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (item, score) in scores {
            if !self.items().contains(&item.as_str()) {
                problems.push((
                    item.clone(),
                    format!(
                        "unknown item for this instrument; expected one of {}",
                        self.items().join(", ")
                    ),
                ));
            } else if !(score.fract() == 0.0 && (1.0..=5.0).contains(score)) {
                problems.push((item.clone(), format!("score {score} is not an integer from 1 to 5")));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn coop_wonca_accepts_known_items_in_range() {
        assert!(
            Instrument::CoopWonca
                .check_scores(&scores(&[("feelings", 5.0), ("pain", 1.0)]))
                .is_empty()
        );
    }

    #[test]
    fn out_of_range_fractional_and_unknown_items_are_named() {
        let problems = Instrument::CoopWonca.check_scores(&scores(&[("feelings", 6.0), ("pain", 2.5), ("mood", 3.0)]));
        let items: Vec<_> = problems.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(items, ["feelings", "mood", "pain"]);
        assert!(
            Instrument::SelfRatedMentalHealth
                .check_scores(&scores(&[("feelings", 3.0)]))
                .len()
                == 1
        );
    }
}
