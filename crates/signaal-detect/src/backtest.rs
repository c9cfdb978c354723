//! The detector over history: every bucket of every series, in order, through the same
//! assessment, CUSUM, guard and lifecycle as the live alerter. Operators tune `alpha` and
//! `min_count` on their own history before going live.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::lifecycle::{Change, Lifecycle};
use crate::watch::Watch;
use crate::{Method, Settings};

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

/// One bucket of one series: how many signals, and from whom when that is known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub count: u64,
    /// Distinct author pseudonyms; `None` for bare counts.
    pub authors: Option<BTreeSet<String>>,
}

/// Runs one series over the buckets `first..=last` (`bucket number → bucket`; buckets missing
/// count zero). The guard wants `min_count` signals in the last four buckets and, when authors
/// are known, `min_authors` distinct ones among them.
pub fn run_series(
    settings: &Settings,
    life: &Lifecycle,
    name: &str,
    buckets: &BTreeMap<i64, Bucket>,
    (first, last): (i64, i64),
    events: &mut Vec<Event>,
) -> SeriesSummary {
    let mut watch = Watch::new(settings, first);
    let mut summary = SeriesSummary::default();
    let empty = Bucket::default();
    let known_authors = buckets.values().any(|b| b.authors.is_some());
    let mut recent: [&Bucket; 4] = [&empty; 4];
    for b in first..=last {
        let bucket = buckets.get(&b).unwrap_or(&empty);
        recent.rotate_left(1);
        recent[3] = bucket;
        let recent_authors = known_authors.then(|| {
            recent
                .iter()
                .filter_map(|r| r.authors.as_ref())
                .flatten()
                .collect::<HashSet<_>>()
                .len()
        });
        let step = watch.step(settings, life, b, bucket.count, recent_authors);
        if let Some(e) = step.event {
            if e.change == Change::Firing {
                summary.alerts += 1;
            }
            let d = step.decided;
            events.push(Event {
                series: name.to_string(),
                state: e.change,
                bucket_start: b * settings.bucket_seconds,
                alert_start: e.start * settings.bucket_seconds,
                observed: d.observed,
                expected: d.expected,
                upper: d.upper,
                p_value: d.p_value,
                method: d.method,
                peak: e.peak,
                total: e.total,
            });
        }
        summary.buckets += 1;
        summary.signals += bucket.count;
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
    let mut by_series: BTreeMap<String, BTreeMap<i64, Bucket>> = BTreeMap::new();
    for (t, series, count) in rows {
        by_series
            .entry(series)
            .or_default()
            .entry(settings.bucket_of(t))
            .or_default()
            .count += count;
    }
    run_all(settings, life, &by_series)
}

/// One classified signal for [`run_signals`].
#[derive(Debug, Clone)]
pub struct SignalRow {
    /// Unix seconds the signal occurred.
    pub at: i64,
    /// Every series it counts in (its themes; theme × channel, …).
    pub series: Vec<String>,
    pub id: String,
    /// The author's pseudonym; a signal without one counts, but adds no author to the guard.
    pub author: Option<String>,
}

/// Runs signals: each id counts once per series however often it appears (a replay), each
/// author once per bucket, and the guard sees the authors.
pub fn run_signals(
    settings: &Settings,
    life: &Lifecycle,
    signals: impl IntoIterator<Item = SignalRow>,
) -> (Vec<Event>, Summary) {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut by_series: BTreeMap<String, BTreeMap<i64, Bucket>> = BTreeMap::new();
    for s in signals {
        for name in s.series {
            if !seen.insert((name.clone(), s.id.clone())) {
                continue;
            }
            let bucket = by_series
                .entry(name)
                .or_default()
                .entry(settings.bucket_of(s.at))
                .or_default();
            let authors = bucket.authors.get_or_insert_with(BTreeSet::new);
            // One person counts once per bucket: twenty posts of one angry customer are one
            // customer, not a spike. Signals without an author count each.
            let new_person = match &s.author {
                Some(a) => authors.insert(a.clone()),
                None => true,
            };
            bucket.count += u64::from(new_person);
        }
    }
    run_all(settings, life, &by_series)
}

fn run_all(
    settings: &Settings,
    life: &Lifecycle,
    by_series: &BTreeMap<String, BTreeMap<i64, Bucket>>,
) -> (Vec<Event>, Summary) {
    let mut events = Vec::new();
    let mut summary = Summary::default();
    // Every series runs over the whole history, as in the live alerter: from the first bucket
    // of any series (a theme first seen later had nothing before) to the last of any (an alert
    // at the end of one series still resolves while others go on).
    let first = by_series.values().filter_map(|b| b.keys().next()).min();
    let last = by_series
        .values()
        .filter_map(|b| b.keys().next_back())
        .max();
    let (Some(&first), Some(&last)) = (first, last) else {
        return (events, summary);
    };
    for (name, buckets) in by_series {
        let s = run_series(settings, life, name, buckets, (first, last), &mut events);
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
    fn one_author_posting_twenty_times_is_no_spike_and_replays_count_once() {
        let settings = Settings::default();
        let life = Lifecycle::default();
        let start = 1_793_577_600;
        let mut rows = Vec::new();
        let mut n = 0;
        let mut add = |rows: &mut Vec<SignalRow>, at: i64, theme: &str, author: &str| {
            n += 1;
            rows.push(SignalRow {
                at,
                series: vec![theme.to_string()],
                id: format!("s{n}"),
                author: Some(author.to_string()),
            });
        };
        for h in 0..(28 * 24) {
            for k in 0..[3, 4, 5, 4][h % 4] {
                add(
                    &mut rows,
                    start + h as i64 * 3600 + k * 60,
                    "payment",
                    &format!("a{}", (h * 7 + k as usize) % 200),
                );
                add(
                    &mut rows,
                    start + h as i64 * 3600 + k * 60,
                    "reachability",
                    &format!("b{}", (h * 7 + k as usize) % 200),
                );
            }
        }
        let flare = start + 27 * 24 * 3600 + 10 * 3600;
        for h in 0..3 {
            for k in 0..25 {
                let at = flare + h * 3600 + k * 60;
                // Twenty-five people about payment; one person twenty-five times about reachability.
                add(&mut rows, at, "payment", &format!("flare{k}"));
                add(&mut rows, at, "reachability", "one-angry-person");
            }
        }
        // Every payment signal of the flare-up again (a replay): no difference.
        let replay: Vec<SignalRow> = rows
            .iter()
            .filter(|r| r.at >= flare && r.series[0] == "payment")
            .cloned()
            .collect();
        rows.extend(replay);
        let (events, summary) = run_signals(&settings, &life, rows);
        assert_eq!(summary.series["payment"].alerts, 1, "{events:#?}");
        assert_eq!(summary.series["reachability"].alerts, 0, "{events:#?}");
        let first = events.iter().find(|e| e.series == "payment");
        assert!(
            first.is_some_and(|e| (25..=30).contains(&e.observed)),
            "{events:#?}"
        );
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
        assert_eq!(summary.series["b"].signals, 1);
        // Both run over the whole history, hours 0 to 2, as the live alerter does.
        assert_eq!(summary.series["a"].buckets, 3);
        assert_eq!(summary.series["b"].buckets, 3);
    }
}
