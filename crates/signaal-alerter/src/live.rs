//! The live alerter's pure core: classified signals in, alert events out.
//!
//! Every series (a theme; a theme × channel when configured) has a [`Watch`] from
//! `signaal-detect` and the buckets still open. A bucket closes when the watermark passes it
//! (see [`Live::close_until`]); each closed bucket is one step of every series' watch, in bucket
//! order, so the live alerter, the backtest and the simulation run the same detector.
//!
//! What counts: each signal id once per series (a replay adds nothing), each author once per
//! bucket (one person posting twenty times is one), retweets not at all. The guard sees the
//! distinct authors of the last four buckets.
//!
//! Memory per series: the watch's history (3 bytes a bucket, a `u16` count and a `bool` alarm
//! flag; 6 weeks of hours are 1,010 buckets, about 3.3 KB with the rest of the `Series`), the
//! open buckets' sets (only while they are open), three closed buckets of author hashes, and an
//! open alert's tallies (capped). 10,000 quiet series take about 33 MB; the simulation bench
//! measures the histories (BENCHMARKS.md, "Spike detection, simulated").

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use chrono::{DateTime, TimeZone, Utc};
use signaal_core::{AlertEvent, AlertState, ClassifiedEnvelope, Count, Severity};
use signaal_detect::lifecycle::{Change, Lifecycle, State};
use signaal_detect::watch::Watch;
use signaal_detect::Settings;

/// Signal ids kept as samples per alert.
const SAMPLES: usize = 10;
/// Entries in the top lists.
const TOP: usize = 5;
/// Distinct words (and subjects) tallied per bucket and per alert; later new ones are dropped.
const MAX_DISTINCT: usize = 2_000;

/// One signal as the alerter sees it.
#[derive(Debug, Clone)]
pub struct Seen<'a> {
    pub id: &'a str,
    /// Unix seconds.
    pub at: i64,
    pub channel: &'a str,
    pub author: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub text: &'a str,
    pub themes: Vec<&'a str>,
}

impl<'a> Seen<'a> {
    pub fn from_envelope(env: &'a ClassifiedEnvelope) -> Seen<'a> {
        Seen {
            id: &env.signal.id,
            at: env.signal.occurred_at.timestamp(),
            channel: env.signal.channel.as_str(),
            author: env.signal.author.as_deref(),
            subject: env.signal.subject.as_deref(),
            text: &env.signal.text,
            themes: if is_repost(env) {
                Vec::new()
            } else {
                env.classification
                    .themes
                    .iter()
                    .map(|t| t.id.as_str())
                    .collect()
            },
        }
    }
}

/// A repost of someone else's words (an X retweet): its reach belongs to the original.
pub fn is_repost(env: &ClassifiedEnvelope) -> bool {
    env.signal.is_repost()
}

/// What became of an observed signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Counted in its open bucket(s).
    Counted,
    /// Its bucket was closed already: in the register, not in this alert's numbers.
    Late,
    /// No theme (or a retweet): nothing to count.
    Nothing,
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn tally(map: &mut HashMap<String, u64>, key: &str, n: u64) {
    if let Some(v) = map.get_mut(key) {
        *v += n;
    } else if map.len() < MAX_DISTINCT {
        map.insert(key.to_string(), n);
    }
}

/// What one open bucket of one series holds.
#[derive(Debug, Default)]
struct Open {
    ids: HashSet<u64>,
    /// The author's pseudonym, or the id for a signal without one: the count.
    people: HashSet<u64>,
    /// Known authors only: the guard.
    authors: HashSet<u64>,
    details: Details,
}

/// Tallies shown with an alert.
#[derive(Debug, Default, Clone)]
struct Details {
    channels: BTreeMap<String, u64>,
    subjects: HashMap<String, u64>,
    words: HashMap<String, u64>,
    samples: Vec<String>,
}

impl Details {
    fn merge(&mut self, other: &Details) {
        for (k, v) in &other.channels {
            *self.channels.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.subjects {
            tally(&mut self.subjects, k, *v);
        }
        for (k, v) in &other.words {
            tally(&mut self.words, k, *v);
        }
        for id in &other.samples {
            if self.samples.len() < SAMPLES && !self.samples.contains(id) {
                self.samples.push(id.clone());
            }
        }
    }

    fn top(map: &HashMap<String, u64>) -> Vec<Count> {
        let mut v: Vec<Count> = map
            .iter()
            .map(|(value, &count)| Count {
                value: value.clone(),
                count,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v.truncate(TOP);
        v
    }
}

struct SeriesState {
    theme: String,
    channel: Option<String>,
    watch: Watch,
    open: BTreeMap<i64, Open>,
    /// Author hashes of the last three closed buckets, oldest first.
    recent: VecDeque<HashSet<u64>>,
    /// The open alert's tallies, from its first bucket on.
    alert: Option<Details>,
}

/// The live alerter's state.
pub struct Live {
    settings: Settings,
    life: Lifecycle,
    by_channel: bool,
    /// The first bucket history covers: a series first seen later counts zero since then.
    origin: i64,
    /// The newest closed bucket.
    closed: i64,
    series: BTreeMap<String, SeriesState>,
}

impl Live {
    /// An alerter whose history starts at bucket `origin` and whose newest closed bucket is
    /// `closed`.
    pub fn new(
        settings: Settings,
        life: Lifecycle,
        by_channel: bool,
        origin: i64,
        closed: i64,
    ) -> Live {
        Live {
            settings,
            life,
            by_channel,
            origin: origin.min(closed + 1),
            closed,
            series: BTreeMap::new(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The newest closed bucket.
    pub fn closed(&self) -> i64 {
        self.closed
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Series that have an alert pending or firing.
    pub fn open_alerts(&self) -> usize {
        self.series
            .values()
            .filter(|s| s.watch.state() != State::Inactive)
            .count()
    }

    /// The name of a series: the theme, or `theme/channel`.
    pub fn series_name(theme: &str, channel: Option<&str>) -> String {
        match channel {
            Some(c) => format!("{theme}/{c}"),
            None => theme.to_string(),
        }
    }

    fn state_for(&mut self, theme: &str, channel: Option<&str>) -> &mut SeriesState {
        let name = Live::series_name(theme, channel);
        let (settings, origin) = (&self.settings, self.origin);
        self.series.entry(name).or_insert_with(|| SeriesState {
            theme: theme.to_string(),
            channel: channel.map(str::to_string),
            watch: Watch::new(settings, origin),
            open: BTreeMap::new(),
            recent: VecDeque::new(),
            alert: None,
        })
    }

    /// Loads a closed bucket's count from history (the register) without assessing it. Only
    /// for buckets up to [`Live::closed`].
    pub fn load_count(&mut self, theme: &str, channel: Option<&str>, bucket: i64, count: u64) {
        if bucket > self.closed || bucket < self.origin {
            return;
        }
        self.state_for(theme, channel)
            .watch
            .series
            .set(bucket, count, false);
    }

    /// Counts one signal in the open bucket of each of its series.
    pub fn observe(&mut self, s: &Seen<'_>) -> Observed {
        if s.themes.is_empty() {
            return Observed::Nothing;
        }
        let bucket = self.settings.bucket_of(s.at);
        if bucket <= self.closed {
            return Observed::Late;
        }
        let id = hash(s.id);
        let person = hash(s.author.unwrap_or(s.id));
        let author = s.author.map(hash);
        let words = words(s.text);
        let by_channel = self.by_channel;
        for theme in &s.themes {
            let channels: &[Option<&str>] = if by_channel {
                &[None, Some(s.channel)]
            } else {
                &[None]
            };
            for channel in channels {
                let st = self.state_for(theme, *channel);
                let open = st.open.entry(bucket).or_default();
                if !open.ids.insert(id) {
                    continue;
                }
                open.people.insert(person);
                if let Some(a) = author {
                    open.authors.insert(a);
                }
                let d = &mut open.details;
                *d.channels.entry(s.channel.to_string()).or_default() += 1;
                if let Some(subject) = s.subject.filter(|x| !x.trim().is_empty()) {
                    tally(&mut d.subjects, subject.trim(), 1);
                }
                for w in &words {
                    tally(&mut d.words, w, 1);
                }
                if d.samples.len() < SAMPLES {
                    d.samples.push(s.id.to_string());
                }
            }
        }
        Observed::Counted
    }

    /// Closes every bucket up to `target` (nothing when `target` is not past the newest
    /// closed bucket): one detector step per series and bucket, in bucket order. Returns the
    /// alert events, stamped `now`.
    pub fn close_until(&mut self, target: i64, now: DateTime<Utc>) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        // A gap longer than the history is all zeros: step only the part that can matter.
        let from = (self.closed + 1).max(target - self.settings.history_buckets() as i64);
        for bucket in from..=target {
            for (name, st) in self.series.iter_mut() {
                let open = st.open.remove(&bucket).unwrap_or_default();
                let mut authors: HashSet<u64> = open.authors.clone();
                for r in &st.recent {
                    authors.extend(r);
                }
                let step = st.watch.step(
                    &self.settings,
                    &self.life,
                    bucket,
                    open.people.len() as u64,
                    Some(authors.len()),
                );
                if st.watch.state() != State::Inactive
                    || step
                        .event
                        .as_ref()
                        .is_some_and(|e| e.change == Change::Resolved)
                {
                    st.alert
                        .get_or_insert_with(Details::default)
                        .merge(&open.details);
                }
                let state = match step.event.as_ref().map(|e| e.change) {
                    Some(Change::Pending) => Some(AlertState::Pending),
                    Some(Change::Firing) => Some(AlertState::Firing),
                    Some(Change::Repeat) => Some(AlertState::Repeat),
                    Some(Change::Resolved) => Some(AlertState::Resolved),
                    None if st.watch.state() == State::Firing => Some(AlertState::Update),
                    None => None,
                };
                if let (Some(state), Some(start)) = (
                    state,
                    step.event.as_ref().map(|e| e.start).or(st.watch.start()),
                ) {
                    let (peak, total) = step
                        .event
                        .as_ref()
                        .map(|e| (e.peak, e.total))
                        .or(st.watch.peak_total())
                        .unwrap_or((open.people.len() as u64, open.people.len() as u64));
                    let details = st.alert.clone().unwrap_or_default();
                    events.push(event(
                        &self.settings,
                        name,
                        st,
                        state,
                        start,
                        bucket,
                        &step.decided,
                        (peak, total),
                        &details,
                        now,
                    ));
                }
                if st.watch.state() == State::Inactive {
                    st.alert = None;
                }
                st.recent.push_back(open.authors);
                while st.recent.len() > 3 {
                    st.recent.pop_front();
                }
            }
        }
        self.closed = self.closed.max(target);
        // Open buckets at or before the new watermark can no longer be stepped.
        for st in self.series.values_mut() {
            let closed = self.closed;
            st.open.retain(|b, _| *b > closed);
        }
        events
    }
}

#[allow(clippy::too_many_arguments)]
fn event(
    settings: &Settings,
    name: &str,
    st: &SeriesState,
    state: AlertState,
    start: i64,
    bucket: i64,
    a: &signaal_detect::Assessment,
    (peak, total): (u64, u64),
    details: &Details,
    now: DateTime<Utc>,
) -> AlertEvent {
    let at = |b: i64| {
        Utc.timestamp_opt(b.saturating_mul(settings.bucket_seconds), 0)
            .single()
            .unwrap_or_default()
    };
    let alert_start = at(start);
    let bucket_start = at(bucket);
    let alert_id = AlertEvent::alert_id_for(name, alert_start);
    let upper = a.upper.is_finite().then_some(a.upper);
    let severity = match upper {
        Some(u) if a.observed as f64 >= 2.0 * u.max(1.0) => Severity::Critical,
        _ => Severity::Warning,
    };
    AlertEvent {
        id: AlertEvent::event_id_for(&alert_id, state, bucket_start),
        alert_id,
        series: name.to_string(),
        theme: st.theme.clone(),
        channel: st.channel.clone(),
        state,
        severity,
        alert_start,
        bucket_start,
        bucket_end: at(bucket + 1),
        observed: a.observed,
        expected: if a.expected.is_finite() {
            a.expected.max(0.0)
        } else {
            0.0
        },
        upper,
        p_value: if a.p_value.is_finite() {
            a.p_value.clamp(0.0, 1.0)
        } else {
            1.0
        },
        method: a.method.as_str().to_string(),
        peak,
        total,
        channels: details.channels.clone(),
        top_subjects: Details::top(&details.subjects),
        top_words: Details::top(&details.words),
        sample_signal_ids: details.samples.clone(),
        emitted_at: now,
    }
}

/// Words worth showing with an alert: lower case, at least four letters, not a common Dutch or
/// English word, not a redaction placeholder.
pub fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in text.split(|c: char| !c.is_alphanumeric() && c != '[' && c != ']') {
        if raw.starts_with('[') || raw.chars().count() < 4 || raw.chars().all(|c| c.is_numeric()) {
            continue;
        }
        let w = raw.to_lowercase();
        if STOPWORDS.contains(w.as_str()) || out.contains(&w) {
            continue;
        }
        out.push(w);
    }
    out
}

/// Common words that say nothing about what is going on.
static STOPWORDS: std::sync::LazyLock<HashSet<&'static str>> = std::sync::LazyLock::new(|| {
    [
        "about", "after", "again", "alle", "alleen", "allemaal", "alles", "already", "also",
        "altijd", "andere", "been", "before", "behalve", "being", "bent", "bijna", "both", "could",
        "daar", "daarom", "dank", "deze", "dezelfde", "dingen", "does", "door", "each", "echt",
        "eens", "even", "from", "gaan", "gaat", "geen", "gehad", "geweest", "goed", "graag",
        "haar", "have", "hebben", "hebt", "heeft", "heel", "hier", "hoor", "into", "jullie",
        "just", "keer", "kunnen", "kunt", "maar", "meer", "mijn", "moet", "moeten", "more", "much",
        "naar", "niet", "niets", "nodig", "nogmaals", "nooit", "omdat", "only", "onze", "other",
        "over", "please", "same", "should", "some", "steeds", "still", "such", "than", "that",
        "their", "them", "then", "there", "these", "they", "this", "those", "toch", "toen", "very",
        "voor", "waar", "waarom", "wanneer", "want", "weer", "weet", "were", "what", "when",
        "where", "which", "while", "will", "with", "word", "worden", "wordt", "would", "your",
        "zich", "zijn", "zodat", "zonder", "zouden",
    ]
    .into_iter()
    .collect()
});

#[cfg(test)]
mod tests;
