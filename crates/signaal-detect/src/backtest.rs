//! The detector over history: every bucket of every series, in order, through the same
//! assessment, CUSUM, guard and lifecycle as the live alerter. Operators tune `alpha` and
//! `min_count` on their own history before going live.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::lifecycle::{guard, Change, Lifecycle, Tracker};
use crate::{assess, assess_window, Method, Series, Settings};

/// One alert event, as `signaal alerts backtest` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub series: String,
    pub state: Change,
    /// Start of the bucket the event concerns (Unix seconds).
    pub bucket_start: i64,
    /// Start of the alert's first bucket (its id is series + this).
    pub alert_start: i64,
    pub observed: u64,
    pub expected: f64,
    pub upper: f64,
    pub p_value: f64,
    pub method: Method,
    pub peak: u64,
    pub total: u64,
}

/// Alerts per series, and the span they cover.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub series: BTreeMap<String, SeriesSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesSummary {
    pub buckets: u64,
    pub signals: u64,
    pub alerts: u64,
    pub alerts_per_week: f64,
}

/// Runs one series' counts (`bucket number → count`; buckets missing between the first and
/// the last count zero). Authors are unknown in counts, so the guard checks `min_count` only.
pub fn run_series(
    settings: &Settings,
    life: &Lifecycle,
    name: &str,
    counts: &BTreeMap<i64, u64>,
    events: &mut Vec<Event>,
) -> SeriesSummary {
    let (Some((&first, _)), Some((&last, _))) = (counts.first_key_value(), counts.last_key_value())
    else {
        return SeriesSummary::default();
    };
    let mut series = Series::new(settings, first);
    let mut tracker = Tracker::default();
    let mut summary = SeriesSummary::default();
    let mut recent = [0u64; 4];
    for b in first..=last {
        let y = counts.get(&b).copied().unwrap_or(0);
        recent.rotate_left(1);
        recent[3] = y;
        let a = assess(settings, &series, b, y);
        let window = assess_window(settings, &series, &a, b).filter(|w| w.exceeded);
        let cusum = series.close(settings, b, y, &a);
        let alarm = a.exceeded || window.is_some() || cusum;
        let ok = guard(life, recent.iter().sum(), None);
        // Report the test that decided: the bucket's own, else the window's, else the CUSUM.
        let decided = if a.exceeded {
            a.clone()
        } else if let Some(w) = window {
            w
        } else if cusum {
            crate::Assessment {
                method: Method::Cusum,
                ..a.clone()
            }
        } else {
            a.clone()
        };
        if let Some(e) = tracker.step(life, b, &a, alarm, ok) {
            if e.change == Change::Firing {
                summary.alerts += 1;
            }
            events.push(Event {
                series: name.to_string(),
                state: e.change,
                bucket_start: b * settings.bucket_seconds,
                alert_start: e.start * settings.bucket_seconds,
                observed: decided.observed,
                expected: decided.expected,
                upper: decided.upper,
                p_value: decided.p_value,
                method: decided.method,
                peak: e.peak,
                total: e.total,
            });
        }
        summary.buckets += 1;
        summary.signals += y;
    }
    let weeks = summary.buckets as f64 * settings.bucket_seconds as f64 / (7.0 * 86_400.0);
    summary.alerts_per_week = summary.alerts as f64 / weeks.max(1e-9);
    summary
}

/// Runs every series of `rows` (`(unix seconds, series, count)`, any order; counts of one
/// bucket add up). Events come out series by series, in time order.
pub fn run(
    settings: &Settings,
    life: &Lifecycle,
    rows: impl IntoIterator<Item = (i64, String, u64)>,
) -> (Vec<Event>, Summary) {
    let mut by_series: BTreeMap<String, BTreeMap<i64, u64>> = BTreeMap::new();
    for (t, series, count) in rows {
        *by_series
            .entry(series)
            .or_default()
            .entry(settings.bucket_of(t))
            .or_default() += count;
    }
    let mut events = Vec::new();
    let mut summary = Summary::default();
    for (name, counts) in &by_series {
        let s = run_series(settings, life, name, counts, &mut events);
        summary.series.insert(name.clone(), s);
    }
    (events, summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flare_up_in_a_steady_history_is_one_alert_that_resolves() {
        let settings = Settings::default();
        let life = Lifecycle::default();
        let start = 1_793_577_600; // a Monday, 00:00 UTC
                                   // Four weeks of 4 an hour with a little wobble, then 30 an hour for three hours.
        let mut rows = Vec::new();
        for h in 0..(28 * 24) {
            let wobble = [3, 4, 5, 4][h % 4];
            rows.push((
                start + h as i64 * 3600,
                "digital_service".to_string(),
                wobble,
            ));
        }
        let flare = start + 27 * 24 * 3600 + 10 * 3600;
        for h in 0..3 {
            rows.push((flare + h * 3600, "digital_service".to_string(), 26));
        }
        let (events, summary) = run(&settings, &life, rows);
        let states: Vec<(Change, i64)> = events.iter().map(|e| (e.state, e.bucket_start)).collect();
        assert_eq!(
            states.first(),
            Some(&(Change::Firing, flare)),
            "{events:#?}"
        );
        assert!(
            states.iter().any(|(s, _)| *s == Change::Resolved),
            "{events:#?}"
        );
        let firing = events.iter().filter(|e| e.state == Change::Firing).count();
        assert_eq!(firing, 1, "{events:#?}");
        assert_eq!(events[0].method, Method::Farrington);
        assert!(events[0].p_value < 1e-6);
        assert_eq!(summary.series["digital_service"].alerts, 1);
    }

    #[test]
    fn counts_of_one_bucket_add_up_and_series_stay_apart() {
        let settings = Settings::default();
        let rows = vec![
            (0, "a".to_string(), 2),
            (60, "a".to_string(), 3),
            (7200, "b".to_string(), 1),
        ];
        let (_, summary) = run(&settings, &Lifecycle::default(), rows);
        assert_eq!(summary.series["a"].signals, 5);
        assert_eq!(summary.series["a"].buckets, 1);
        assert_eq!(summary.series["b"].buckets, 1);
    }
}
