//! Recurrence: "1x toeval, 2x opmerkelijk, 3x patroon". Once is coincidence, twice is notable,
//! three times is a pattern a coordinator must act on.
//!
//! The store groups the signals of the window ([`RecurrenceConfig::since`]) per theme × subject,
//! per subject or per pseudonymous author; [`recurrence`] gives each group its level and puts
//! the patterns first.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{check, ConfigError};

/// How far back recurrence looks. `[analysis.recurrence]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecurrenceConfig {
    /// The window in days, ending now (default 90).
    pub window_days: u32,
    /// Sample signal ids kept per group (default 5).
    pub samples: usize,
}

impl Default for RecurrenceConfig {
    fn default() -> Self {
        RecurrenceConfig {
            window_days: 90,
            samples: 5,
        }
    }
}

impl RecurrenceConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check([
            (
                "window_days",
                f64::from(self.window_days),
                (1..=3660).contains(&self.window_days),
                "1–3660",
            ),
            (
                "samples",
                self.samples as f64,
                self.samples <= 1000,
                "0–1000",
            ),
        ])
    }

    /// The start of the window that ends at `now` (the earliest representable time if that
    /// lies before it).
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now.checked_sub_signed(Duration::days(i64::from(self.window_days)))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// How often something came back within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Once: toeval.
    Coincidence,
    /// Twice: opmerkelijk.
    Notable,
    /// Three times or more: patroon. Act on it.
    Pattern,
}

impl Level {
    /// 1 → coincidence, 2 → notable, 3 or more → pattern (0, no group at all, as 1).
    pub fn of(count: u64) -> Level {
        match count {
            0 | 1 => Level::Coincidence,
            2 => Level::Notable,
            _ => Level::Pattern,
        }
    }
}

/// A group's signals within the window, as the store aggregates them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group<K> {
    pub key: K,
    pub count: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// Ids of some of its signals, in the order the caller prefers (newest first, say).
    pub samples: Vec<String>,
}

/// A group with its level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recurring<K> {
    pub key: K,
    pub level: Level,
    pub count: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// At most [`RecurrenceConfig::samples`] of the group's sample ids.
    pub samples: Vec<String>,
}

/// Levels the groups and orders them: patterns, then notable, then coincidence; within a level
/// by count (largest first), then by the last signal (latest first), then by key. Groups with a
/// count of 0 are left out.
pub fn recurrence<K: Ord>(
    groups: impl IntoIterator<Item = Group<K>>,
    config: &RecurrenceConfig,
) -> Vec<Recurring<K>> {
    let mut out: Vec<Recurring<K>> = groups
        .into_iter()
        .filter(|g| g.count > 0)
        .map(|mut g| {
            g.samples.truncate(config.samples);
            Recurring {
                level: Level::of(g.count),
                key: g.key,
                count: g.count,
                first: g.first,
                last: g.last,
                samples: g.samples,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (b.level, b.count, b.last)
            .cmp(&(a.level, a.count, a.last))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, d, 12, 0, 0)
            .single()
            .expect("a valid date")
    }

    fn group(key: &'static str, count: u64, last: u32) -> Group<&'static str> {
        Group {
            key,
            count,
            first: day(1),
            last: day(last),
            samples: (0..count).map(|i| format!("{key}-{i}")).collect(),
        }
    }

    #[test]
    fn one_two_three_times_are_coincidence_notable_pattern() {
        let levels: Vec<_> = [0, 1, 2, 3, 4, 1000].into_iter().map(Level::of).collect();
        use Level::*;
        assert_eq!(
            levels,
            [Coincidence, Coincidence, Notable, Pattern, Pattern, Pattern]
        );
    }

    #[test]
    fn patterns_come_first_then_by_count_then_latest() {
        let config = RecurrenceConfig {
            samples: 2,
            ..RecurrenceConfig::default()
        };
        let out = recurrence(
            [
                group("single", 1, 20),
                group("twice", 2, 3),
                group("three-old", 3, 5),
                group("none", 0, 9),
                group("seven", 7, 2),
                group("three-new", 3, 9),
                group("twice-b", 2, 3),
            ],
            &config,
        );
        let keys: Vec<_> = out.iter().map(|r| (r.key, r.level)).collect();
        use Level::*;
        assert_eq!(
            keys,
            [
                ("seven", Pattern),
                ("three-new", Pattern),
                ("three-old", Pattern),
                ("twice", Notable),
                ("twice-b", Notable),
                ("single", Coincidence),
            ]
        );
        assert_eq!(out[0].samples, ["seven-0", "seven-1"], "samples are capped");
    }

    #[test]
    fn the_window_ends_now() {
        let config = RecurrenceConfig::default();
        assert_eq!(config.since(day(31)), day(31) - Duration::days(90));
        assert_eq!(
            config.since(DateTime::<Utc>::MIN_UTC),
            DateTime::<Utc>::MIN_UTC
        );
        let zero = RecurrenceConfig {
            window_days: 0,
            ..config
        };
        assert_eq!(
            zero.validate().map_err(|e| e.key),
            Err("window_days".into())
        );
    }
}
