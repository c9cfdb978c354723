//! One series watched bucket by bucket: the bucket's own test, the window, the CUSUM, the guard
//! and the alert's life, in the one order the backtest and the simulation (and later the live
//! alerter) all use.

use crate::lifecycle::{guard, Event, Lifecycle, Tracker};
use crate::{assess_spread, assess_window_spread, Assessment, Method, Series, Settings};

pub struct Watch {
    pub series: Series,
    tracker: Tracker,
}

/// What one closed bucket gave.
#[derive(Debug, Clone)]
pub struct Step {
    /// The test that decided: the bucket's own when it was exceeded, else the window's, else
    /// the CUSUM's (with the bucket's numbers), else the bucket's own.
    pub decided: Assessment,
    /// Whether any test alarmed.
    pub alarm: bool,
    /// Whether the low-count guard let it out.
    pub guarded: bool,
    /// A change of the alert's state, if any.
    pub event: Option<Event>,
}

impl Watch {
    /// A series watched since bucket `origin`.
    pub fn new(settings: &Settings, origin: i64) -> Watch {
        Watch {
            series: Series::new(settings, origin),
            tracker: Tracker::default(),
        }
    }

    /// Where the series' alert is: inactive, pending or firing.
    pub fn state(&self) -> crate::lifecycle::State {
        self.tracker.state()
    }

    /// The first bucket of the open alert, if one is pending or firing.
    pub fn start(&self) -> Option<i64> {
        self.tracker.start()
    }

    /// The open alert's largest bucket and its total so far.
    pub fn peak_total(&self) -> Option<(u64, u64)> {
        self.tracker.peak_total()
    }

    /// Closes `bucket` with `observed` signals. `recent_authors` is the number of distinct
    /// authors in the last four buckets, `None` when authors are unknown (bare counts).
    pub fn step(
        &mut self,
        settings: &Settings,
        life: &Lifecycle,
        bucket: i64,
        observed: u64,
        recent_authors: Option<usize>,
    ) -> Step {
        let recent_count = observed
            + (1..=3)
                .filter_map(|lag| self.series.get(bucket - lag).map(|(c, _)| c))
                .sum::<u64>();
        let (a, spread) = assess_spread(settings, &self.series, bucket, observed);
        let window =
            assess_window_spread(settings, &self.series, &a, spread, bucket).filter(|w| w.exceeded);
        let cusum = self
            .series
            .close_spread(settings, bucket, observed, &a, spread);
        let alarm = a.exceeded || window.is_some() || cusum;
        let guarded = guard(life, recent_count, recent_authors);
        let event = self.tracker.step(life, bucket, &a, alarm, guarded);
        let decided = if a.exceeded {
            a
        } else if let Some(w) = window {
            w
        } else if cusum {
            Assessment {
                method: Method::Cusum,
                ..a
            }
        } else {
            a
        };
        Step {
            decided,
            alarm,
            guarded,
            event,
        }
    }
}
