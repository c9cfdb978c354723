//! One series watched bucket by bucket: the bucket's own test, the window, the CUSUM, the guard
//! and the alert's life, in the one order the backtest and the simulation (and later the live
//! alerter) all use.

use crate::lifecycle::{guard, Event, Lifecycle, Tracker};
use crate::{assess, assess_window, Assessment, Method, Series, Settings};

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
        let a = assess(settings, &self.series, bucket, observed);
        let window = assess_window(settings, &self.series, &a, bucket).filter(|w| w.exceeded);
        let cusum = self.series.close(settings, bucket, observed, &a);
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
