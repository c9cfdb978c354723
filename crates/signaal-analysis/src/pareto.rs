//! Pareto: which few keys (themes, subjects, theme × subject pairs) make up most of the signals.

use std::collections::BTreeMap;

use serde::Serialize;

/// A Pareto chart: the keys by count, largest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pareto<K> {
    /// Sum of all counts.
    pub total: u64,
    pub rows: Vec<ParetoRow<K>>,
}

/// One bar of the chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParetoRow<K> {
    pub key: K,
    pub count: u64,
    /// `count / total` (0 when the total is 0).
    pub share: f64,
    /// The shares of this row and every row before it.
    pub cumulative_share: f64,
    /// Inside the 80 % line: part of the shortest run of rows from the top whose cumulative share
    /// reaches 80 %.
    pub vital_few: bool,
}

/// The Pareto line: the vital few together reach this share of the signals (4/5).
pub const LINE: (u64, u64) = (4, 5);

/// Sorts `counts` by count, largest first, ties by key, and marks the vital few: the smallest
/// prefix whose cumulative share reaches 80 %. When equal counts straddle the line, key order
/// decides which fall inside. A key given twice is counted once with the sum of its counts.
/// Empty input or a zero total gives shares of 0 and no vital few.
pub fn pareto<K: Ord>(counts: impl IntoIterator<Item = (K, u64)>) -> Pareto<K> {
    let mut merged = BTreeMap::<K, u64>::new();
    for (key, count) in counts {
        let entry = merged.entry(key).or_default();
        *entry = entry.saturating_add(count);
    }
    let total = merged.values().fold(0u64, |sum, c| sum.saturating_add(*c));
    let mut sorted: Vec<(K, u64)> = merged.into_iter().collect();
    // Stable: equal counts stay in key order.
    sorted.sort_by_key(|(_, count)| std::cmp::Reverse(*count));

    let share = |part: u128| {
        if total == 0 {
            0.0
        } else {
            part as f64 / total as f64
        }
    };
    let mut cumulative = 0u128;
    let mut line_reached = total == 0;
    let rows = sorted
        .into_iter()
        .map(|(key, count)| {
            // Exact in integers: cumulative / total ≥ 4/5.
            let vital_few = !line_reached;
            cumulative += u128::from(count);
            line_reached |=
                cumulative * u128::from(LINE.1) >= u128::from(total) * u128::from(LINE.0);
            ParetoRow {
                key,
                count,
                share: share(u128::from(count)),
                cumulative_share: share(cumulative),
                vital_few,
            }
        })
        .collect();
    Pareto { total, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vital(p: &Pareto<&'static str>) -> Vec<&'static str> {
        p.rows
            .iter()
            .filter(|r| r.vital_few)
            .map(|r| r.key)
            .collect()
    }

    #[test]
    fn the_vital_few_are_the_shortest_prefix_reaching_80_percent() {
        let p = pareto([
            ("payment", 10),
            ("reachability", 50),
            ("handoffs", 5),
            ("response_time", 25),
            ("digital_service", 10),
        ]);
        assert_eq!(p.total, 100);
        let keys: Vec<_> = p.rows.iter().map(|r| r.key).collect();
        // 10 and 10: ties by key.
        assert_eq!(
            keys,
            [
                "reachability",
                "response_time",
                "digital_service",
                "payment",
                "handoffs"
            ]
        );
        let cumulative: Vec<_> = p.rows.iter().map(|r| r.cumulative_share).collect();
        assert_eq!(cumulative, [0.5, 0.75, 0.85, 0.95, 1.0]);
        assert_eq!(p.rows[1].share, 0.25);
        // 75 % is short of the line, 85 % reaches it.
        assert_eq!(
            vital(&p),
            ["reachability", "response_time", "digital_service"]
        );
    }

    #[test]
    fn exactly_80_percent_closes_the_line() {
        let p = pareto([("a", 8), ("b", 1), ("c", 1)]);
        assert_eq!(vital(&p), ["a"]);
        // 4/5 in floating point is not exact; the integer test is.
        let p = pareto([("a", 2), ("b", 2), ("c", 1)]);
        assert_eq!(vital(&p), ["a", "b"]);
    }

    #[test]
    fn duplicates_merge_and_empty_input_divides_by_nothing() {
        let p = pareto([("a", 1), ("b", 3), ("a", 4)]);
        assert_eq!((p.rows[0].key, p.rows[0].count, p.total), ("a", 5, 8));
        let empty = pareto(Vec::<(&str, u64)>::new());
        assert_eq!((empty.total, empty.rows.len()), (0, 0));
        let zeros = pareto([("a", 0), ("b", 0)]);
        assert!(zeros
            .rows
            .iter()
            .all(|r| r.share == 0.0 && r.cumulative_share == 0.0 && !r.vital_few));
    }
}
