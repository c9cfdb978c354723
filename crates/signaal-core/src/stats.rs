//! `signals.stats`: the running numbers of each series and bucket, for subscribers that keep no
//! state. A record's Kafka key is `series|bucket` ([`StatsKey`]) and the topic is compacted, so
//! the latest record of a key is the truth and a subscriber that reads the topic from the
//! beginning, keeping the last value per key, has every series' numbers.
//!
//! - A *series* ([`Series`]) is a theme (`theme:billing`), a subject (`subject:digid`), a channel
//!   (`channel:email`) or a theme in one channel (`theme:billing|channel:email`).
//! - A *bucket* ([`Bucket`]) is an hour or a day in UTC: `hour:2026-11-03T14`, `day:2026-11-03`.
//!
//! Ids are written as they are, except `%`, `|` and `:`, which are percent-encoded (`%25`, `%7C`,
//! `%3A`) so that a key always reads back as the series and bucket it was made from. The
//! taxonomy's snake_case ids never need it.
//!
//! Pure: which keys a signal or an alert event touches, and how keys are spelt and read.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::{AlertEvent, AlertState, ClassifiedEnvelope, Severity};

/// What a series counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    /// Signals with this theme.
    Theme(String),
    /// Signals about this subject.
    Subject(String),
    /// Every signal of this channel (`email`, `phone`, …).
    Channel(String),
    /// Signals with this theme in this channel.
    ThemeChannel(String, String),
}

/// The kinds of series, in the order [`Series`] lists them (one register read per kind and
/// grain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Theme,
    Subject,
    Channel,
    ThemeChannel,
}

impl Series {
    pub fn dimension(&self) -> Dimension {
        match self {
            Series::Theme(_) => Dimension::Theme,
            Series::Subject(_) => Dimension::Subject,
            Series::Channel(_) => Dimension::Channel,
            Series::ThemeChannel(..) => Dimension::ThemeChannel,
        }
    }

    /// The series as the alerter names it (`theme`, or `theme/channel`); none for subjects and
    /// channels, which the alerter does not watch.
    pub fn alert_series(&self) -> Option<String> {
        match self {
            Series::Theme(t) => Some(t.clone()),
            Series::ThemeChannel(t, c) => Some(format!("{t}/{c}")),
            Series::Subject(_) | Series::Channel(_) => None,
        }
    }

    /// The theme, subject and channel the series is about, as the record carries them.
    pub fn fields(&self) -> SeriesFields {
        let (theme, subject, channel) = match self {
            Series::Theme(t) => (Some(t), None, None),
            Series::Subject(s) => (None, Some(s), None),
            Series::Channel(c) => (None, None, Some(c)),
            Series::ThemeChannel(t, c) => (Some(t), None, Some(c)),
        };
        SeriesFields {
            key: self.to_string(),
            theme: theme.cloned(),
            subject: subject.cloned(),
            channel: channel.cloned(),
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Series::Theme(t) => write!(f, "theme:{}", escape(t)),
            Series::Subject(s) => write!(f, "subject:{}", escape(s)),
            Series::Channel(c) => write!(f, "channel:{}", escape(c)),
            Series::ThemeChannel(t, c) => write!(f, "theme:{}|channel:{}", escape(t), escape(c)),
        }
    }
}

/// How long a bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    pub const ALL: [Grain; 2] = [Grain::Hour, Grain::Day];

    pub fn seconds(self) -> i64 {
        match self {
            Grain::Hour => 3_600,
            Grain::Day => 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }
}

/// An hour or a day in UTC, by its start in Unix seconds (a multiple of its length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    pub grain: Grain,
    pub start: i64,
}

impl Bucket {
    /// The bucket of `grain` that `t` falls in (times before 1970 included).
    pub fn of(grain: Grain, t: DateTime<Utc>) -> Bucket {
        let s = grain.seconds();
        Bucket {
            grain,
            start: t.timestamp().div_euclid(s) * s,
        }
    }

    pub fn start(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.start, 0)
            .single()
            .unwrap_or_default()
    }

    /// The first instant after the bucket.
    pub fn end(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.start.saturating_add(self.grain.seconds()), 0)
            .single()
            .unwrap_or_default()
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.grain {
            Grain::Hour => write!(f, "hour:{}", self.start().format("%Y-%m-%dT%H")),
            Grain::Day => write!(f, "day:{}", self.start().format("%Y-%m-%d")),
        }
    }
}

/// A record's key on `signals.stats`: `series|bucket`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatsKey {
    pub series: Series,
    pub bucket: Bucket,
}

impl fmt::Display for StatsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}|{}", self.series, self.bucket)
    }
}

impl std::str::FromStr for StatsKey {
    type Err = KeyError;

    /// Reads a key as [`StatsKey`]'s `Display` writes it; anything else is refused.
    fn from_str(key: &str) -> Result<StatsKey, KeyError> {
        let bad = || KeyError(crate::envelope::cut_for_error(key));
        let parts: Vec<&str> = key.split('|').collect();
        let (series, bucket) = match parts.as_slice() {
            [series, bucket] => (read_series(series, None).ok_or_else(bad)?, *bucket),
            [theme, channel, bucket] => {
                (read_series(theme, Some(channel)).ok_or_else(bad)?, *bucket)
            }
            _ => return Err(bad()),
        };
        let bucket = read_bucket(bucket).ok_or_else(bad)?;
        Ok(StatsKey { series, bucket })
    }
}

/// A key that is not `series|bucket` as [`StatsKey`] writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a signals.stats key (series|bucket)")]
pub struct KeyError(String);

fn read_series(first: &str, channel: Option<&str>) -> Option<Series> {
    let (kind, id) = first.split_once(':')?;
    let id = unescape(id)?;
    match (kind, channel) {
        ("theme", None) => Some(Series::Theme(id)),
        ("subject", None) => Some(Series::Subject(id)),
        ("channel", None) => Some(Series::Channel(id)),
        ("theme", Some(c)) => {
            let c = unescape(c.strip_prefix("channel:")?)?;
            Some(Series::ThemeChannel(id, c))
        }
        _ => None,
    }
}

fn read_bucket(s: &str) -> Option<Bucket> {
    let (grain, at) = s.split_once(':')?;
    match grain {
        "hour" => {
            let t = NaiveDateTime::parse_from_str(&format!("{at}:00"), "%Y-%m-%dT%H:%M").ok()?;
            // Exactly as written: `2026-11-03T4` parses too, but is not a key.
            let b = Bucket::of(Grain::Hour, t.and_utc());
            (b.to_string() == s).then_some(b)
        }
        "day" => {
            let d = NaiveDate::parse_from_str(at, "%Y-%m-%d").ok()?;
            let b = Bucket::of(Grain::Day, d.and_hms_opt(0, 0, 0)?.and_utc());
            (b.to_string() == s).then_some(b)
        }
        _ => None,
    }
}

fn escape(id: &str) -> std::borrow::Cow<'_, str> {
    if !id.contains(['%', '|', ':']) {
        return id.into();
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out.into()
}

/// The inverse of [`escape`]; none for an id that `escape` cannot have written.
fn unescape(id: &str) -> Option<String> {
    if id.is_empty() || id.contains([':', '|']) {
        return None;
    }
    let mut out = String::with_capacity(id.len());
    let mut rest = id;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "7C" => '|',
            "3A" => ':',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Every key a classified signal counts in: its themes, subjects, channel and each theme in
/// its channel, each in its hour and its day. None for a repost, which counts for nothing (as in
/// the register's theme rows and rollups).
pub fn keys_of_signal(env: &ClassifiedEnvelope) -> Vec<StatsKey> {
    let s = &env.signal;
    if s.is_repost() {
        return Vec::new();
    }
    let c = &env.classification;
    let channel = s.channel.as_str();
    let mut series = vec![Series::Channel(channel.to_string())];
    for t in &c.themes {
        series.push(Series::Theme(t.id.clone()));
        series.push(Series::ThemeChannel(t.id.clone(), channel.to_string()));
    }
    series.extend(c.subjects.iter().map(|u| Series::Subject(u.id.clone())));
    series.sort();
    series.dedup();
    let mut keys = Vec::with_capacity(series.len() * Grain::ALL.len());
    for grain in Grain::ALL {
        let bucket = Bucket::of(grain, s.occurred_at);
        keys.extend(series.iter().map(|series| StatsKey {
            series: series.clone(),
            bucket,
        }));
    }
    keys
}

/// The keys whose alert state an alert event may change: its series (the theme, or the theme
/// in a channel) in the hour and the day of the event's bucket.
pub fn keys_of_alert_event(e: &AlertEvent) -> Vec<StatsKey> {
    let series = match &e.channel {
        Some(c) => Series::ThemeChannel(e.theme.clone(), c.clone()),
        None => Series::Theme(e.theme.clone()),
    };
    Grain::ALL
        .iter()
        .map(|g| StatsKey {
            series: series.clone(),
            bucket: Bucket::of(*g, e.bucket_start),
        })
        .collect()
}

/// The order of an alert's states within one bucket: the lifecycle's.
fn state_rank(s: AlertState) -> u8 {
    match s {
        AlertState::Pending => 0,
        AlertState::Firing => 1,
        AlertState::Update => 2,
        AlertState::Repeat => 3,
        AlertState::Resolved => 4,
    }
}

/// The alert state of a series in a bucket: of the events of the series whose bucket starts in
/// it, the last in the alerts' order (bucket, then the newer alert, then the lifecycle's order
/// of states). The same whichever order the events come in, and whether an event comes once or
/// twice.
pub fn alert_state_in<'a>(
    key: &StatsKey,
    events: impl IntoIterator<Item = &'a AlertEvent>,
) -> Option<StatsAlert> {
    let series = key.series.alert_series()?;
    let (from, to) = (key.bucket.start(), key.bucket.end());
    events
        .into_iter()
        .filter(|e| e.series == series && e.bucket_start >= from && e.bucket_start < to)
        .max_by(|a, b| {
            (a.bucket_start, a.alert_start, state_rank(a.state), &a.id).cmp(&(
                b.bucket_start,
                b.alert_start,
                state_rank(b.state),
                &b.id,
            ))
        })
        .map(|e| StatsAlert {
            alert_id: e.alert_id.clone(),
            event_id: e.id.clone(),
            state: e.state,
            severity: e.severity,
            bucket_start: e.bucket_start,
        })
}

/// A series' theme, subject and channel, and its key (the part before the bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesFields {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The bucket as the record carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketFields {
    pub grain: Grain,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The alert state of a series in a bucket: the last change of its alert there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsAlert {
    pub alert_id: String,
    pub event_id: String,
    pub state: AlertState,
    pub severity: Severity,
    /// The bucket of the alert event (the alerter's bucket, which lies in this one).
    pub bucket_start: DateTime<Utc>,
}

/// What the register holds for a key: the value of a `signals.stats` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesStats {
    /// The record's Kafka key, `series|bucket`.
    pub key: String,
    pub series: SeriesFields,
    pub bucket: BucketFields,
    /// Signals in the series and bucket (reposts count for nothing; each signal once).
    pub count: u64,
    /// Distinct people: each author pseudonym once, each signal without an author once.
    pub authors: u64,
    /// The signals' mean impact (0–10, to three decimals), of those that have one; null when
    /// none has.
    pub mean_impact: Option<f64>,
    /// The series' alert state in the bucket; null for subjects and channels, and when no alert
    /// event of the series falls in the bucket.
    pub alert_state: Option<StatsAlert>,
    /// When the newest signal counted was classified; null when nothing is counted. A replay
    /// writes the same time, so the same record.
    pub as_of: Option<DateTime<Utc>>,
}

impl SeriesStats {
    /// The record of `key` with what the register holds for it.
    pub fn new(
        key: &StatsKey,
        counts: &BucketCounts,
        alert_state: Option<StatsAlert>,
    ) -> SeriesStats {
        SeriesStats {
            key: key.to_string(),
            series: key.series.fields(),
            bucket: BucketFields {
                grain: key.bucket.grain,
                start: key.bucket.start(),
                end: key.bucket.end(),
            },
            count: counts.count,
            authors: counts.authors,
            mean_impact: counts.mean_impact(),
            alert_state,
            as_of: counts.newest_classified,
        }
    }
}

/// A key's numbers as the register counts them: integers only, so that the same signals give
/// the same record whatever order a database adds them up in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketCounts {
    pub count: u64,
    pub authors: u64,
    /// Signals with an impact score, and their scores in thousandths, summed.
    pub scored: u64,
    pub impact_milli: i64,
    pub newest_classified: Option<DateTime<Utc>>,
}

impl BucketCounts {
    /// The mean impact to three decimals; none without a scored signal.
    pub fn mean_impact(&self) -> Option<f64> {
        (self.scored > 0).then(|| (self.impact_milli as f64 / self.scored as f64).round() / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, Classification, Evidence, Signal, SubjectTag, ThemeTag};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn key(series: Series, grain: Grain, t: &str) -> StatsKey {
        StatsKey {
            series,
            bucket: Bucket::of(grain, at(t)),
        }
    }

    #[test]
    fn buckets_are_utc_hours_and_days() {
        for (t, grain, start, label) in [
            (
                "2026-11-03T14:59:59Z",
                Grain::Hour,
                "2026-11-03T14:00:00Z",
                "hour:2026-11-03T14",
            ),
            (
                "2026-11-03T15:00:00Z",
                Grain::Hour,
                "2026-11-03T15:00:00Z",
                "hour:2026-11-03T15",
            ),
            (
                "2026-11-03T23:30:00+00:00",
                Grain::Day,
                "2026-11-03T00:00:00Z",
                "day:2026-11-03",
            ),
            // A local time is counted in the UTC hour and day it falls in.
            (
                "2026-11-04T00:30:00+01:00",
                Grain::Day,
                "2026-11-03T00:00:00Z",
                "day:2026-11-03",
            ),
            (
                "2026-11-04T00:30:00+01:00",
                Grain::Hour,
                "2026-11-03T23:00:00Z",
                "hour:2026-11-03T23",
            ),
            // Before 1970: floored, not truncated towards zero.
            (
                "1969-12-31T23:59:59Z",
                Grain::Day,
                "1969-12-31T00:00:00Z",
                "day:1969-12-31",
            ),
            (
                "1969-12-31T23:59:59Z",
                Grain::Hour,
                "1969-12-31T23:00:00Z",
                "hour:1969-12-31T23",
            ),
        ] {
            let b = Bucket::of(grain, at(t));
            assert_eq!(b.start(), at(start), "{t} in its {grain:?}");
            assert_eq!(
                b.end() - b.start(),
                chrono::Duration::seconds(grain.seconds())
            );
            assert_eq!(b.to_string(), label, "{t}");
        }
    }

    #[test]
    fn keys_are_spelt_and_read_back() -> Result<(), KeyError> {
        let t = "2026-11-03T14:20:00Z";
        for (k, want) in [
            (
                key(Series::Theme("billing".into()), Grain::Hour, t),
                "theme:billing|hour:2026-11-03T14",
            ),
            (
                key(Series::Subject("digid".into()), Grain::Day, t),
                "subject:digid|day:2026-11-03",
            ),
            (
                key(Series::Channel("email".into()), Grain::Day, t),
                "channel:email|day:2026-11-03",
            ),
            (
                key(
                    Series::ThemeChannel("billing".into(), "phone".into()),
                    Grain::Hour,
                    t,
                ),
                "theme:billing|channel:phone|hour:2026-11-03T14",
            ),
            // An id with the separators in it is escaped, and reads back as itself.
            (
                key(Series::Theme("a|b:c%d".into()), Grain::Day, t),
                "theme:a%7Cb%3Ac%25d|day:2026-11-03",
            ),
            (
                key(Series::Theme("klantcontact ↗".into()), Grain::Hour, t),
                "theme:klantcontact ↗|hour:2026-11-03T14",
            ),
        ] {
            assert_eq!(k.to_string(), want);
            assert_eq!(want.parse::<StatsKey>()?, k, "{want} reads back");
        }
        Ok(())
    }

    #[test]
    fn what_is_not_a_key_is_refused() {
        for bad in [
            "",
            "theme:billing",
            "theme:billing|week:2026-45",
            "theme:|hour:2026-11-03T14",
            "topic:billing|hour:2026-11-03T14",
            "theme:billing|hour:2026-11-03",
            "theme:billing|hour:2026-11-03T4",
            "theme:billing|hour:2026-11-03T24",
            "theme:billing|day:2026-11-03T14",
            "theme:billing|day:2026-02-30",
            "subject:digid|channel:email|day:2026-11-03",
            "theme:billing|email|day:2026-11-03",
            "theme:a%7cb|day:2026-11-03",
            "theme:a%2|day:2026-11-03",
            "theme:billing|channel:email|day:2026-11-03|x",
        ] {
            let parsed = bad.parse::<StatsKey>();
            assert!(parsed.is_err(), "`{bad}` read as {parsed:?}");
        }
    }

    fn classified(
        channel: Channel,
        t: &str,
        themes: &[&str],
        subjects: &[&str],
    ) -> ClassifiedEnvelope {
        let mut s = Signal::new(channel, "src", "1", at(t), "tekst");
        s.author = Some("a_1".into());
        ClassifiedEnvelope::new(
            s,
            Classification {
                themes: themes
                    .iter()
                    .map(|id| ThemeTag {
                        id: id.to_string(),
                        score: 1.0,
                        evidence: vec![Evidence::words(0, 5, "tekst".into())],
                    })
                    .collect(),
                subjects: subjects
                    .iter()
                    .map(|id| SubjectTag {
                        id: id.to_string(),
                        evidence: vec![],
                    })
                    .collect(),
                cause: crate::Cause::System,
                kind: crate::Kind::Complaint,
                lang: "nl".into(),
                sentiment: -0.5,
                escalation: vec![],
                impact: Some(2.5),
            },
            "test-1",
        )
    }

    #[test]
    fn a_signal_touches_each_of_its_series_in_its_hour_and_day() {
        let env = classified(
            Channel::Phone,
            "2026-11-03T14:20:00Z",
            &["billing", "reachability", "billing"],
            &["tax_bill"],
        );
        let keys: Vec<String> = keys_of_signal(&env).iter().map(|k| k.to_string()).collect();
        let want = [
            "theme:billing|hour:2026-11-03T14",
            "theme:reachability|hour:2026-11-03T14",
            "subject:tax_bill|hour:2026-11-03T14",
            "channel:phone|hour:2026-11-03T14",
            "theme:billing|channel:phone|hour:2026-11-03T14",
            "theme:reachability|channel:phone|hour:2026-11-03T14",
            "theme:billing|day:2026-11-03",
            "theme:reachability|day:2026-11-03",
            "subject:tax_bill|day:2026-11-03",
            "channel:phone|day:2026-11-03",
            "theme:billing|channel:phone|day:2026-11-03",
            "theme:reachability|channel:phone|day:2026-11-03",
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "each key once: {keys:?}");
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(sorted, want);

        // Without themes or subjects, the channel still counts it.
        let plain = classified(Channel::Email, "2026-11-03T14:20:00Z", &[], &[]);
        let keys: Vec<String> = keys_of_signal(&plain)
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(
            keys,
            [
                "channel:email|hour:2026-11-03T14",
                "channel:email|day:2026-11-03"
            ]
        );

        // A repost counts for nothing.
        let mut repost = classified(Channel::Twitter, "2026-11-03T14:20:00Z", &["billing"], &[]);
        repost
            .signal
            .meta
            .insert("retweet_of".into(), serde_json::json!("123"));
        assert!(keys_of_signal(&repost).is_empty());
    }

    fn event(
        series: (&str, Option<&str>),
        state: AlertState,
        alert_start: &str,
        bucket: &str,
    ) -> AlertEvent {
        let name = match series.1 {
            Some(c) => format!("{}/{c}", series.0),
            None => series.0.to_string(),
        };
        let alert_id = AlertEvent::alert_id_for(&name, at(alert_start));
        AlertEvent {
            id: AlertEvent::event_id_for(&alert_id, state, at(bucket)),
            alert_id,
            series: name,
            theme: series.0.into(),
            channel: series.1.map(str::to_string),
            state,
            severity: Severity::Warning,
            alert_start: at(alert_start),
            bucket_start: at(bucket),
            bucket_end: at(bucket) + chrono::Duration::hours(1),
            observed: 9,
            expected: 1.0,
            upper: Some(5.0),
            p_value: 0.0001,
            method: "farrington".into(),
            peak: 9,
            total: 9,
            channels: Default::default(),
            top_subjects: vec![],
            top_words: vec![],
            sample_signal_ids: vec![],
            emitted_at: at(bucket),
        }
    }

    #[test]
    fn an_alert_event_touches_its_series_in_its_hour_and_day() {
        let e = event(
            ("billing", Some("email")),
            AlertState::Firing,
            "2026-11-03T14:00:00Z",
            "2026-11-03T14:00:00Z",
        );
        let keys: Vec<String> = keys_of_alert_event(&e)
            .iter()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(
            keys,
            [
                "theme:billing|channel:email|hour:2026-11-03T14",
                "theme:billing|channel:email|day:2026-11-03"
            ]
        );
    }

    #[test]
    fn the_alert_state_is_the_last_change_in_the_bucket_whatever_the_order() {
        let start = "2026-11-03T14:00:00Z";
        let events = [
            event(("billing", None), AlertState::Pending, start, start),
            event(("billing", None), AlertState::Firing, start, start),
            event(
                ("billing", None),
                AlertState::Update,
                start,
                "2026-11-03T15:00:00Z",
            ),
            event(
                ("billing", None),
                AlertState::Resolved,
                start,
                "2026-11-03T18:00:00Z",
            ),
            // Another series, and the same theme in a channel: not this series.
            event(
                ("payment", None),
                AlertState::Firing,
                start,
                "2026-11-03T19:00:00Z",
            ),
            event(
                ("billing", Some("email")),
                AlertState::Firing,
                start,
                "2026-11-03T19:00:00Z",
            ),
        ];
        let theme = Series::Theme("billing".into());
        let state = |grain, t: &str, evs: &[&AlertEvent]| {
            alert_state_in(&key(theme.clone(), grain, t), evs.iter().copied()).map(|a| a.state)
        };
        let all: Vec<&AlertEvent> = events.iter().collect();
        let mut reversed = all.clone();
        reversed.reverse();
        let mut twice = all.clone();
        twice.extend(all.iter().copied());
        for evs in [&all, &reversed, &twice] {
            assert_eq!(state(Grain::Hour, start, evs), Some(AlertState::Firing));
            assert_eq!(
                state(Grain::Hour, "2026-11-03T15:30:00Z", evs),
                Some(AlertState::Update)
            );
            assert_eq!(state(Grain::Hour, "2026-11-03T16:00:00Z", evs), None);
            assert_eq!(state(Grain::Day, start, evs), Some(AlertState::Resolved));
            assert_eq!(state(Grain::Day, "2026-11-04T00:00:00Z", evs), None);
        }
        let in_channel = key(
            Series::ThemeChannel("billing".into(), "email".into()),
            Grain::Hour,
            "2026-11-03T19:00:00Z",
        );
        assert_eq!(
            alert_state_in(&in_channel, &events).map(|a| a.state),
            Some(AlertState::Firing)
        );
        // Subjects and channels have no alerts.
        let subject = key(Series::Subject("billing".into()), Grain::Day, start);
        assert_eq!(alert_state_in(&subject, &events), None);
    }

    #[test]
    fn the_mean_impact_does_not_depend_on_the_order_of_adding() {
        let c = BucketCounts {
            count: 3,
            authors: 2,
            scored: 3,
            impact_milli: 6400, // 1.15 + 5.25 + 0
            newest_classified: None,
        };
        assert_eq!(c.mean_impact(), Some(2.133));
        assert_eq!(BucketCounts::default().mean_impact(), None);
    }

    #[test]
    fn the_record_round_trips_and_its_decoder_refuses_what_it_does_not_read(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use crate::{DecodeError, SeriesStatsEnvelope};
        let k = key(
            Series::ThemeChannel("billing".into(), "email".into()),
            Grain::Hour,
            "2026-11-03T14:20:00Z",
        );
        let counts = BucketCounts {
            count: 4,
            authors: 3,
            scored: 4,
            impact_milli: 9_000,
            newest_classified: Some(at("2026-11-03T14:25:00Z")),
        };
        let alert = alert_state_in(
            &k,
            &[event(
                ("billing", Some("email")),
                AlertState::Firing,
                "2026-11-03T14:00:00Z",
                "2026-11-03T14:00:00Z",
            )],
        );
        let env = SeriesStatsEnvelope::new(SeriesStats::new(&k, &counts, alert));
        let json = serde_json::to_string(&env)?;
        assert!(
            json.starts_with(
                r#"{"schema_version":1,"type":"series_stats","stats":{"key":"theme:billing|channel:email|hour:2026-11-03T14","series":{"key":"theme:billing|channel:email","theme":"billing","channel":"email"},"bucket":{"grain":"hour","start":"2026-11-03T14:00:00Z","end":"2026-11-03T15:00:00Z"},"count":4,"authors":3,"mean_impact":2.25,"alert_state":{"#
            ),
            "{json}"
        );
        assert_eq!(SeriesStatsEnvelope::decode(json.as_bytes())?, env);

        let other_type = json.replacen("series_stats", "alert_event", 1);
        assert!(matches!(
            SeriesStatsEnvelope::decode(other_type.as_bytes()),
            Err(DecodeError::Type { .. })
        ));
        let other_version = json.replacen(r#""schema_version":1"#, r#""schema_version":2"#, 1);
        assert!(matches!(
            SeriesStatsEnvelope::decode(other_version.as_bytes()),
            Err(DecodeError::Version { .. })
        ));
        let doubled = json.replacen(r#""count":4"#, r#""count":4,"count":5"#, 1);
        assert!(matches!(
            SeriesStatsEnvelope::decode(doubled.as_bytes()),
            Err(DecodeError::DuplicateKey { ref key, .. }) if key == "count"
        ));
        Ok(())
    }
}
