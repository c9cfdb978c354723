//! The zone of times an export writes without one.
//!
//! Asterisk writes `cdr_csv` times in the server's local time unless `usegmtime = yes`, and most
//! call-centre CSV exports write wall-clock times without an offset. Reading those as UTC puts a
//! Dutch call an hour or two off (and across midnight, on the wrong day), so an inbox names the
//! zone its exports were written in: an IANA name, `Europe/Amsterdam` unless configured.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IANA time zone (`Europe/Amsterdam`, `UTC`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(pub Tz);

impl Default for Zone {
    /// Where signaal's users' exchanges stand.
    fn default() -> Self {
        Zone(Tz::Europe__Amsterdam)
    }
}

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// The instant the wall-clock time `t` names in this zone. Never fails: in the hour that
    /// happens twice when clocks go back the first is taken (the export cannot say which was
    /// meant), and a time in the hour skipped when clocks go forward — which no clock showed, but
    /// a hand-made export can hold — is read with the offset from before the change.
    pub fn instant(self, t: NaiveDateTime) -> DateTime<Utc> {
        match self.0.from_local_datetime(&t) {
            LocalResult::Single(d) => d.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => {
                let before = t
                    .checked_sub_signed(TimeDelta::days(1))
                    .map(|day_before| self.0.offset_from_utc_datetime(&day_before).fix());
                before
                    .and_then(|offset| t.checked_sub_offset(offset))
                    .unwrap_or(t)
                    .and_utc()
            }
        }
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim().parse::<Tz>().map(Zone).map_err(|_| {
            format!(
                "unknown time zone `{}`: use an IANA name such as `Europe/Amsterdam` or `UTC`",
                signaal_core::brief(s)
            )
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone: &str, t: &str) -> String {
        let zone: Zone = match zone.parse() {
            Ok(z) => z,
            Err(e) => panic!("{e}"),
        };
        match NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
            Ok(t) => zone.instant(t).to_rfc3339(),
            Err(e) => panic!("{t}: {e}"),
        }
    }

    #[test]
    fn wall_clock_times_in_amsterdam_across_the_changes() {
        let cases = [
            // Winter (CET, +01:00) and summer (CEST, +02:00).
            ("2026-11-17 09:15:02", "2026-11-17T08:15:02+00:00"),
            ("2026-07-01 12:00:00", "2026-07-01T10:00:00+00:00"),
            // 29 March 2026: 02:00 → 03:00; 02:30 was never on a clock: read as +01:00.
            ("2026-03-29 01:59:59", "2026-03-29T00:59:59+00:00"),
            ("2026-03-29 02:30:00", "2026-03-29T01:30:00+00:00"),
            ("2026-03-29 03:00:00", "2026-03-29T01:00:00+00:00"),
            // 25 October 2026: 03:00 → 02:00; 02:30 happens twice: the first (+02:00).
            ("2026-10-25 02:30:00", "2026-10-25T00:30:00+00:00"),
            ("2026-10-25 03:00:00", "2026-10-25T02:00:00+00:00"),
            ("9999-12-31 23:59:59", "9999-12-31T22:59:59+00:00"),
        ];
        for (local, utc) in cases {
            assert_eq!(at("Europe/Amsterdam", local), utc, "{local}");
        }
        // The start of the calendar (local mean time then) does not panic.
        assert!(at("Europe/Amsterdam", "0001-01-01 00:00:00").starts_with("0000-12-31T23:"));
        assert_eq!(
            at("UTC", "2026-03-29 02:30:00"),
            "2026-03-29T02:30:00+00:00"
        );
        assert_eq!(
            at("America/New_York", "2026-11-17 09:15:02"),
            "2026-11-17T14:15:02+00:00"
        );
    }

    #[test]
    fn names_from_config() {
        assert_eq!(Zone::default().name(), "Europe/Amsterdam");
        let err = "Europe/Amsterdm".parse::<Zone>().err().unwrap_or_default();
        assert!(err.contains("unknown time zone `Europe/Amsterdm`"), "{err}");
        let z: Zone = serde_json::from_str("\"UTC\"").unwrap_or_default();
        assert_eq!(z, Zone::UTC);
        assert!(serde_json::from_str::<Zone>("\"Mars/Olympus\"").is_err());
    }
}
