//! Frequency × impact: each key (theme, subject) placed in one of four quadrants against the
//! medians of all keys.
//!
//! | | impact ≥ median | impact < median |
//! |---|---|---|
//! | **count ≥ median** | act now | quick wins |
//! | **count < median** | watch | monitor |
//!
//! - *act now*: frequent and hurting — what the improvement plan is for;
//! - *watch*: rare but severe — handle each case with care and watch whether it grows;
//! - *quick wins*: frequent but mild — often a small fix (a letter's wording, a form field)
//!   that helps many customers at once;
//! - *monitor*: rare and mild — keep counting.
//!
//! Impact here is the mean impact per signal, so a key is not "high impact" merely because it
//! is frequent (its total impact is reported too). A value equal to the median counts as high:
//! with one key, or all keys alike, everything is "act now".

use serde::Serialize;

/// A key's signals, as the store aggregates them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpactRow<K> {
    pub key: K,
    pub count: u64,
    /// Sum of the signals' impact scores.
    pub impact_sum: f64,
}

/// Where a key stands. Serialised `act_now`, `watch`, `quick_wins`, `monitor`; ordered in that
/// order of urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quadrant {
    /// Frequent, high impact.
    ActNow,
    /// Rare, high impact.
    Watch,
    /// Frequent, low impact.
    QuickWins,
    /// Rare, low impact.
    Monitor,
}

impl Quadrant {
    /// `≥ median` counts as high.
    pub fn of(frequent: bool, severe: bool) -> Quadrant {
        match (frequent, severe) {
            (true, true) => Quadrant::ActNow,
            (false, true) => Quadrant::Watch,
            (true, false) => Quadrant::QuickWins,
            (false, false) => Quadrant::Monitor,
        }
    }
}

/// The scatter: the medians and each key's place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quadrants<K> {
    /// Median count over the keys (0 when there are none).
    pub median_count: f64,
    /// Median of the keys' mean impact (0 when there are none).
    pub median_impact: f64,
    pub rows: Vec<QuadrantRow<K>>,
}

/// One point of the scatter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuadrantRow<K> {
    pub key: K,
    pub count: u64,
    pub mean_impact: f64,
    pub total_impact: f64,
    pub quadrant: Quadrant,
}

/// Places each key; rows come in quadrant order (act now first), then by total impact (largest
/// first), then by key. Keys with a count of 0 are left out (no mean); a non-finite impact sum
/// counts as 0. The medians are over keys, not signals: each key is one point of the scatter.
pub fn quadrants<K: Ord>(rows: impl IntoIterator<Item = ImpactRow<K>>) -> Quadrants<K> {
    let points: Vec<(K, u64, f64)> = rows
        .into_iter()
        .filter(|r| r.count > 0)
        .map(|r| {
            let total = if r.impact_sum.is_finite() {
                r.impact_sum
            } else {
                0.0
            };
            (r.key, r.count, total)
        })
        .collect();
    let median_count = median(points.iter().map(|p| p.1 as f64).collect());
    let median_impact = median(points.iter().map(|p| p.2 / p.1 as f64).collect());
    let mut rows: Vec<QuadrantRow<K>> = points
        .into_iter()
        .map(|(key, count, total_impact)| {
            let mean_impact = total_impact / count as f64;
            QuadrantRow {
                quadrant: Quadrant::of(count as f64 >= median_count, mean_impact >= median_impact),
                key,
                count,
                mean_impact,
                total_impact,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        a.quadrant
            .cmp(&b.quadrant)
            .then(b.total_impact.total_cmp(&a.total_impact))
            .then_with(|| a.key.cmp(&b.key))
    });
    Quadrants {
        median_count,
        median_impact,
        rows,
    }
}

/// The middle value, or the mean of the two middle values (0 for none).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &'static str, count: u64, impact_sum: f64) -> ImpactRow<&'static str> {
        ImpactRow {
            key,
            count,
            impact_sum,
        }
    }

    #[test]
    fn each_key_lands_in_its_quadrant() {
        // Counts 40, 30, 10, 5, 2: median 10. Mean impacts 6, 2, 7, 1.5, 9: median 6.
        let q = quadrants([
            row("reachability", 40, 240.0),
            row("unclear_communication", 30, 60.0),
            row("payment", 10, 70.0),
            row("handoffs", 5, 7.5),
            row("commitments", 2, 18.0),
            row("none", 0, 0.0),
        ]);
        assert_eq!((q.median_count, q.median_impact), (10.0, 6.0));
        let placed: Vec<_> = q.rows.iter().map(|r| (r.key, r.quadrant)).collect();
        use Quadrant::*;
        assert_eq!(
            placed,
            [
                // ≥ median on both: reachability (40, 6) and payment (10, 7), by total impact.
                ("reachability", ActNow),
                ("payment", ActNow),
                ("commitments", Watch),
                ("unclear_communication", QuickWins),
                ("handoffs", Monitor),
            ]
        );
        assert_eq!(q.rows[2].mean_impact, 9.0);
    }

    #[test]
    fn even_counts_take_the_middle_two_and_nothing_breaks_on_odd_input() {
        let q = quadrants([
            row("a", 1, 1.0),
            row("b", 3, 3.0),
            row("c", 5, 50.0),
            row("d", 7, f64::NAN),
        ]);
        assert_eq!(q.median_count, 4.0);
        // Means 1, 1, 10, 0 (NaN as 0): median 1.
        assert_eq!(q.median_impact, 1.0);
        let d = q.rows.iter().find(|r| r.key == "d").expect("d is placed");
        assert_eq!((d.quadrant, d.total_impact), (Quadrant::QuickWins, 0.0));
        let empty = quadrants(Vec::<ImpactRow<&str>>::new());
        assert_eq!((empty.median_count, empty.rows.len()), (0.0, 0));
        let single = quadrants([row("a", 1, 0.0)]);
        assert_eq!(single.rows[0].quadrant, Quadrant::ActNow);
    }
}
