//! An alert's life, as Prometheus and Alertmanager users know it: `pending` while an exceedance
//! has not lasted `for` buckets yet, `firing`, updated while it lasts (re-notified at most every
//! `repeat_interval`), `resolved` once the count has stayed below the recovery level for
//! `keep_firing_for` buckets. A series that crosses the threshold up and down every hour stays
//! one firing alert.

use serde::{Deserialize, Serialize};

use crate::Assessment;

/// `[alerter.lifecycle]` in the configuration; durations in buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// Consecutive alarming buckets before an alert fires (1: at the first).
    pub for_buckets: u32,
    /// Buckets below the recovery level before a firing alert resolves.
    pub keep_firing_for: u32,
    /// A firing alert is notified again after this many buckets.
    pub repeat_interval: u32,
    /// The recovery level sits this far from the expected count towards the threshold
    /// (0.5: half-way): lower than the threshold, so a count hovering at it does not flap.
    pub recovery: f64,
    /// No alert unless this many signals in the last four buckets…
    pub min_count: u64,
    /// …from at least this many distinct authors (when authors are known).
    pub min_authors: usize,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            for_buckets: 1,
            keep_firing_for: 3,
            repeat_interval: 4,
            recovery: 0.5,
            min_count: 5,
            min_authors: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// What changed, for `signals.alerts` and the notifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Pending,
    Firing,
    /// Still firing; time to notify again.
    Repeat,
    Resolved,
}

/// One series' alert, stepped once per closed bucket.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    state: Option<Active>,
}

#[derive(Debug, Clone)]
struct Active {
    firing: bool,
    /// First bucket of the alert (its id is series + this).
    start: i64,
    alarming_run: u32,
    quiet_run: u32,
    last_notified: i64,
    pub peak: u64,
    pub total: u64,
}

/// An alert's numbers at a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub change: Change,
    pub start: i64,
    pub bucket: i64,
    pub peak: u64,
    pub total: u64,
}

impl Tracker {
    pub fn state(&self) -> State {
        match &self.state {
            None => State::Inactive,
            Some(a) if a.firing => State::Firing,
            Some(_) => State::Pending,
        }
    }

    /// The open alert's largest bucket and its total so far.
    pub fn peak_total(&self) -> Option<(u64, u64)> {
        self.state.as_ref().map(|a| (a.peak, a.total))
    }

    /// The first bucket of the open alert, if one is open.
    pub fn start(&self) -> Option<i64> {
        self.state.as_ref().map(|a| a.start)
    }

    /// Steps the alert with the closed `bucket`'s assessment. `alarm` is whether the detector
    /// alarmed (threshold or CUSUM) and `guard` whether the low-count guard lets an alert out.
    pub fn step(
        &mut self,
        cfg: &Lifecycle,
        bucket: i64,
        a: &Assessment,
        alarm: bool,
        guard: bool,
    ) -> Option<Event> {
        let alarming = alarm && guard;
        let recovery = a.expected + cfg.recovery * (a.upper - a.expected).max(0.0);
        let quiet = (a.observed as f64) < recovery || !a.upper.is_finite();
        let event = |change, s: &Active| Event {
            change,
            start: s.start,
            bucket,
            peak: s.peak,
            total: s.total,
        };
        match &mut self.state {
            None => {
                if !alarming {
                    return None;
                }
                let mut s = Active {
                    firing: false,
                    start: bucket,
                    alarming_run: 1,
                    quiet_run: 0,
                    last_notified: bucket,
                    peak: a.observed,
                    total: a.observed,
                };
                let change = if cfg.for_buckets <= 1 {
                    s.firing = true;
                    Change::Firing
                } else {
                    Change::Pending
                };
                let e = event(change, &s);
                self.state = Some(s);
                Some(e)
            }
            Some(s) if !s.firing => {
                if !alarming {
                    // A pending alert that does not last was never an alert.
                    self.state = None;
                    return None;
                }
                s.alarming_run += 1;
                s.peak = s.peak.max(a.observed);
                s.total += a.observed;
                if s.alarming_run >= cfg.for_buckets {
                    s.firing = true;
                    s.last_notified = bucket;
                    return Some(event(Change::Firing, s));
                }
                None
            }
            Some(s) => {
                s.peak = s.peak.max(a.observed);
                s.total += a.observed;
                if quiet && !alarming {
                    s.quiet_run += 1;
                    if s.quiet_run >= cfg.keep_firing_for {
                        let e = event(Change::Resolved, s);
                        self.state = None;
                        return Some(e);
                    }
                } else {
                    s.quiet_run = 0;
                }
                if bucket - s.last_notified >= i64::from(cfg.repeat_interval.max(1)) {
                    s.last_notified = bucket;
                    return Some(event(Change::Repeat, s));
                }
                None
            }
        }
    }
}

/// The low-count guard: enough signals in the last buckets, from enough different people.
/// `authors` is `None` for bare counts (no authors known).
pub fn guard(cfg: &Lifecycle, recent_count: u64, authors: Option<usize>) -> bool {
    recent_count >= cfg.min_count && authors.is_none_or(|n| n >= cfg.min_authors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Method;

    fn a(observed: u64) -> Assessment {
        Assessment {
            observed,
            expected: 4.0,
            upper: 12.0,
            p_value: 0.5,
            phi: 1.0,
            method: Method::Farrington,
            exceeded: observed > 12,
            baseline: 50,
            trend: false,
        }
    }

    fn run(cfg: &Lifecycle, counts: &[u64]) -> Vec<(i64, Change)> {
        let mut t = Tracker::default();
        counts
            .iter()
            .enumerate()
            .filter_map(|(b, &y)| {
                let x = a(y);
                t.step(cfg, b as i64, &x, x.exceeded, true)
                    .map(|e| (b as i64, e.change))
            })
            .collect()
    }

    #[test]
    fn fires_at_once_and_resolves_after_three_quiet_buckets() {
        let cfg = Lifecycle::default();
        let events = run(&cfg, &[3, 20, 25, 9, 3, 4, 2, 3]);
        assert_eq!(
            events,
            [
                (1, Change::Firing),
                (5, Change::Repeat),
                (6, Change::Resolved)
            ]
        );
    }

    #[test]
    fn flapping_is_one_alert() {
        let cfg = Lifecycle {
            repeat_interval: 100,
            ..Lifecycle::default()
        };
        // Over the threshold every other hour for a day.
        let counts: Vec<u64> = (0..24).map(|h| if h % 2 == 0 { 14 } else { 6 }).collect();
        let events = run(&cfg, &counts);
        assert_eq!(events, [(0, Change::Firing)]);
    }

    #[test]
    fn pending_until_it_lasts_and_repeats_while_firing() {
        let cfg = Lifecycle {
            for_buckets: 2,
            ..Lifecycle::default()
        };
        assert_eq!(run(&cfg, &[20, 3, 3]), [(0, Change::Pending)]);
        let events = run(&cfg, &[20, 20, 20, 20, 20, 20, 20, 3, 3, 3]);
        assert_eq!(
            events,
            [
                (0, Change::Pending),
                (1, Change::Firing),
                (5, Change::Repeat),
                (9, Change::Resolved)
            ]
        );
    }

    #[test]
    fn the_guard_wants_enough_signals_and_people() {
        let cfg = Lifecycle::default();
        assert!(!guard(&cfg, 4, Some(4)));
        assert!(!guard(&cfg, 20, Some(1)), "one angry person is not a spike");
        assert!(guard(&cfg, 5, Some(3)));
        assert!(guard(&cfg, 5, None), "bare counts carry no authors");
    }
}
