//! Interval and survival estimates for the outcome report.

use serde::Serialize;

/// The 97.5 % quantile of the standard normal distribution.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval of `successes` out of `n` (none for n = 0).
pub fn wilson(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    Some(wilson_of(successes as f64 / n as f64, n as f64))
}

/// The 95 % Wilson score interval of a share `p` of `n` (n > 0), which
/// may rest on an expected, not whole, count.
pub fn wilson_of(p: f64, n: f64) -> (f64, f64) {
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The difference `k1/n1 - k2/n2` of two independent shares and its 95 %
/// interval by Newcombe's hybrid score method (1998, method 10), made of
/// the two Wilson intervals (none when either n is 0).
pub fn newcombe(k1: u64, n1: u64, k2: u64, n2: u64) -> Option<(f64, f64, f64)> {
    let ((l1, u1), (l2, u2)) = (wilson(k1, n1)?, wilson(k2, n2)?);
    let (p1, p2) = (k1 as f64 / n1 as f64, k2 as f64 / n2 as f64);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((d, low, high))
}

/// One step of a Kaplan–Meier table: at `day`, `at_risk` participants were
/// still without the event, `events` had it and `censored` left the risk
/// set without it; `survival` is the estimated share still without it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SurvivalStep {
    pub day: i64,
    pub at_risk: u64,
    pub events: u64,
    pub censored: u64,
    pub survival: f64,
}

/// The Kaplan–Meier estimate from (day, had the event) per participant;
/// one step per day on which anything happened.
pub fn kaplan_meier(times: &[(i64, bool)]) -> Vec<SurvivalStep> {
    let mut times = times.to_vec();
    times.sort_unstable();
    let mut at_risk = times.len() as u64;
    let mut survival = 1.0;
    let mut steps = Vec::new();
    let mut i = 0;
    while i < times.len() {
        let day = times[i].0;
        let same_day = times[i..].iter().take_while(|t| t.0 == day).count();
        let events = times[i..i + same_day].iter().filter(|t| t.1).count() as u64;
        let censored = same_day as u64 - events;
        survival *= 1.0 - events as f64 / at_risk as f64;
        steps.push(SurvivalStep {
            day,
            at_risk,
            events,
            censored,
            survival,
        });
        at_risk -= same_day as u64;
        i += same_day;
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round6(x: f64) -> f64 {
        (x * 1e6).round() / 1e6
    }

    #[test]
    fn wilson_matches_published_intervals() {
        let (low, high) = wilson(5, 15).expect("n > 0");
        assert_eq!((round6(low), round6(high)), (0.151763, 0.582865));
        let (low, high) = wilson(0, 15).expect("n > 0");
        assert_eq!((round6(low), round6(high)), (0.0, 0.203883));
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), Statistics in Medicine 17:873-890, example (a):
        // 56/70 - 48/80 = 0.2, method 10: 0.0524 to 0.3339.
        let (d, low, high) = newcombe(56, 70, 48, 80).expect("n > 0");
        let round4 = |x: f64| (x * 1e4).round() / 1e4;
        assert_eq!((round4(d), round4(low), round4(high)), (0.2, 0.0524, 0.3339));
        assert_eq!(newcombe(1, 0, 1, 2), None);
    }

    #[test]
    fn kaplan_meier_steps_down_at_events_only() {
        // Textbook example: events at 1, 3; censored at 2, 4.
        let steps = kaplan_meier(&[(3, true), (1, true), (2, false), (4, false)]);
        let survival: Vec<f64> = steps.iter().map(|s| round6(s.survival)).collect();
        assert_eq!(survival, vec![0.75, 0.75, 0.375, 0.375]);
        assert_eq!(steps[2].at_risk, 2);
        assert_eq!(steps[1].censored, 1);
    }
}
