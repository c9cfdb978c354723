//! The live feed: classified signals as Server-Sent Events.
//!
//! One consumer per server process reads `signals.classified` in a group of its own
//! (`<prefix>-web-<host>-<pid>`, starting at the newest offset, never committing: a page shows
//! what arrives while it is open, and the register has the rest). Each signal gets a sequence
//! number and goes into a ring of the last `web.live_buffer` events and to every open stream.
//! An event's id is `<epoch>-<seq>`, the epoch naming this process: a browser that reconnects
//! sends `Last-Event-ID` and gets every event after it from the ring, so a dropped connection
//! loses nothing; when the ring no longer reaches back that far, or the id is of an earlier
//! process, the stream says `reset` first and the page reloads the newest signals from the API.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Serialize;
use signaal_bus::{BusConfig, Consumer};
use signaal_core::ClassifiedEnvelope;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// One classified signal as the page shows it: redacted text, classification with evidence.
#[derive(Debug, Clone, Serialize)]
pub struct LiveSignal {
    pub id: String,
    pub channel: String,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub text: String,
    pub themes: Vec<signaal_core::ThemeTag>,
    pub subjects: Vec<signaal_core::SubjectTag>,
    pub cause: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact: Option<f32>,
    pub classifier: String,
}

impl LiveSignal {
    pub fn of(env: ClassifiedEnvelope) -> LiveSignal {
        let c = env.classification;
        LiveSignal {
            id: env.signal.id,
            channel: env.signal.channel.as_str().to_string(),
            occurred_at: env.signal.occurred_at,
            subject: env.signal.subject,
            text: env.signal.text,
            themes: c.themes,
            subjects: c.subjects,
            cause: c.cause.as_str().to_string(),
            kind: c.kind.as_str().to_string(),
            impact: c.impact,
            classifier: env.classifier,
        }
    }
}

/// An event in the ring: its number, what filters look at, and its JSON.
#[derive(Debug)]
pub struct LiveEvent {
    pub seq: u64,
    themes: Vec<String>,
    subjects: Vec<String>,
    channel: String,
    cause: String,
    kind: String,
    data: String,
}

/// Which events a stream sends (the page's filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFilter {
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub channel: Option<String>,
    pub cause: Option<String>,
    pub kind: Option<String>,
}

impl LiveFilter {
    fn admits(&self, e: &LiveEvent) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        self.theme
            .as_ref()
            .is_none_or(|t| e.themes.iter().any(|x| x == t))
            && self
                .subject
                .as_ref()
                .is_none_or(|s| e.subjects.iter().any(|x| x == s))
            && eq(&self.channel, &e.channel)
            && eq(&self.cause, &e.cause)
            && eq(&self.kind, &e.kind)
    }
}

struct Ring {
    events: VecDeque<Arc<LiveEvent>>,
    next: u64,
}

/// The ring and the fan-out to open streams.
pub struct Hub {
    epoch: String,
    capacity: usize,
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<LiveEvent>>,
    /// Cancelled at shutdown: open streams end (a graceful shutdown waits for them).
    closed: CancellationToken,
}

/// Where a reconnecting stream resumes.
enum Resume {
    /// Every event after this one is still in the ring (they follow).
    From(Vec<Arc<LiveEvent>>),
    /// The ring does not reach back that far, or the id is of another process.
    Reset,
}

impl Hub {
    pub fn new(capacity: usize) -> Arc<Hub> {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Hub::with_epoch(capacity, format!("{started:x}{:x}", std::process::id()))
    }

    fn with_epoch(capacity: usize, epoch: String) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(capacity.clamp(16, 4096));
        Arc::new(Hub {
            epoch,
            capacity: capacity.max(1),
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                next: 1,
            }),
            tx,
            closed: CancellationToken::new(),
        })
    }

    /// Ends every open stream (at shutdown).
    pub fn close(&self) {
        self.closed.cancel();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        match self.ring.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Adds a signal: numbered, kept in the ring, sent to every open stream.
    pub fn push(&self, s: &LiveSignal) {
        let data = match serde_json::to_string(s) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, id = %s.id, "live feed: cannot encode a signal");
                return;
            }
        };
        let mut ring = self.lock();
        let event = Arc::new(LiveEvent {
            seq: ring.next,
            themes: s.themes.iter().map(|t| t.id.clone()).collect(),
            subjects: s.subjects.iter().map(|t| t.id.clone()).collect(),
            channel: s.channel.clone(),
            cause: s.cause.clone(),
            kind: s.kind.clone(),
            data,
        });
        ring.next += 1;
        ring.events.push_back(event.clone());
        while ring.events.len() > self.capacity {
            ring.events.pop_front();
        }
        // Sent under the lock, so streams see events in the order of their numbers.
        let _ = self.tx.send(event);
        metrics::counter!("signaal_web_live_signals_total").increment(1);
    }

    /// The number of the newest event (0 before the first).
    fn last(&self) -> u64 {
        self.lock().next - 1
    }

    fn id(&self, seq: u64) -> String {
        format!("{}-{seq}", self.epoch)
    }

    /// The events after `last_event_id`.
    fn resume(&self, last_event_id: &str) -> (Resume, u64) {
        let ring = self.lock();
        let newest = ring.next - 1;
        let seq = last_event_id
            .rsplit_once('-')
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
            .filter(|seq| *seq <= newest);
        let Some(seq) = seq else {
            return (Resume::Reset, newest);
        };
        let oldest = ring.events.front().map_or(ring.next, |e| e.seq);
        if seq + 1 < oldest {
            return (Resume::Reset, newest);
        }
        let after = ring
            .events
            .iter()
            .filter(|e| e.seq > seq)
            .cloned()
            .collect();
        (Resume::From(after), seq)
    }
}

/// What a stream does next.
struct StreamState {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    filter: LiveFilter,
    /// Events to send before listening again.
    queue: VecDeque<Event>,
    /// The last event number this stream has dealt with.
    sent: u64,
}

impl StreamState {
    fn enqueue(&mut self, e: &LiveEvent) {
        if e.seq <= self.sent {
            return;
        }
        self.sent = e.seq;
        if self.filter.admits(e) {
            self.queue.push_back(
                Event::default()
                    .event("signal")
                    .id(self.hub.id(e.seq))
                    .data(e.data.clone()),
            );
        }
    }

    fn reset(&mut self) {
        self.queue.clear();
        self.sent = self.hub.last();
        self.queue.push_back(
            Event::default()
                .event("reset")
                .id(self.hub.id(self.sent))
                .data("{}"),
        );
    }
}

/// A stream of the hub's events for one client, after `last_event_id` when given.
pub fn stream(
    hub: Arc<Hub>,
    filter: LiveFilter,
    last_event_id: Option<&str>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribed before the ring is read: an event pushed in between comes both ways and is
    // sent once (by number).
    let rx = hub.tx.subscribe();
    let mut state = StreamState {
        hub: hub.clone(),
        rx,
        filter,
        queue: VecDeque::new(),
        sent: 0,
    };
    match last_event_id {
        Some(id) => match hub.resume(id) {
            (Resume::From(events), seq) => {
                state.sent = seq;
                for e in &events {
                    state.enqueue(e);
                }
            }
            (Resume::Reset, _) => state.reset(),
        },
        None => {
            // A first connection starts at the newest event; its id goes to the browser at
            // once, so a reconnect before the first signal still resumes from here.
            state.sent = hub.last();
            state.queue.push_back(
                Event::default()
                    .event("hello")
                    .id(hub.id(state.sent))
                    .data("{}"),
            );
        }
    }
    metrics::gauge!("signaal_web_live_clients").increment(1.0);
    let guard = ClientGuard;
    let s = futures::stream::unfold((state, guard), |(mut state, guard)| async move {
        loop {
            if let Some(e) = state.queue.pop_front() {
                return Some((Ok(e), (state, guard)));
            }
            let closed = state.hub.closed.clone();
            let next = tokio::select! {
                _ = closed.cancelled() => return None,
                e = state.rx.recv() => e,
            };
            match next {
                Ok(e) => state.enqueue(&e),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // This client fell behind the fan-out: catch up from the ring.
                    match state.hub.resume(&state.hub.id(state.sent)) {
                        (Resume::From(events), _) => {
                            for e in &events {
                                state.enqueue(e);
                            }
                        }
                        (Resume::Reset, _) => state.reset(),
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Counts open streams.
struct ClientGuard;

impl Drop for ClientGuard {
    fn drop(&mut self) {
        metrics::gauge!("signaal_web_live_clients").decrement(1.0);
    }
}

/// Feeds the hub from `signals.classified` until shutdown. Retries (with the bus's own backoff)
/// while Kafka is away; a record that cannot be read is skipped with a warning (the classifier
/// wrote it, the register has it).
pub async fn feed(
    bus: &BusConfig,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into());
    let group = bus.group(&format!("web-{host}-{}", std::process::id()));
    let mut cfg = bus.clone();
    cfg.client
        .entry("auto.offset.reset".into())
        .or_insert_with(|| "latest".into());
    cfg.client
        .entry("enable.auto.commit".into())
        .or_insert_with(|| "false".into());
    let topic = cfg.topics.classified.clone();
    let consumer = Consumer::new(&cfg, &group, &[topic.as_str()])?;
    tracing::info!(%group, %topic, "live feed consuming");
    while !shutdown.is_cancelled() {
        let batch = consumer
            .next_batch(500, Duration::from_millis(20), &shutdown)
            .await?;
        for d in &batch {
            match ClassifiedEnvelope::decode(&d.payload) {
                Ok(env) => hub.push(&LiveSignal::of(env)),
                Err(e) => {
                    tracing::warn!(error = %e, origin = %d.origin(), "live feed: skipped a record it cannot read")
                }
            }
        }
        consumer.liveness().acknowledged(batch.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(id: &str, theme: &str) -> LiveSignal {
        LiveSignal {
            id: id.into(),
            channel: "email".into(),
            occurred_at: chrono::DateTime::UNIX_EPOCH,
            subject: None,
            text: "tekst".into(),
            themes: vec![signaal_core::ThemeTag {
                id: theme.into(),
                score: 0.5,
                evidence: vec![],
            }],
            subjects: vec![],
            cause: "system".into(),
            kind: "complaint".into(),
            impact: None,
            classifier: "t".into(),
        }
    }

    #[test]
    fn a_reconnect_gets_every_event_after_its_id_and_a_stale_one_a_reset() {
        let hub = Hub::with_epoch(3, "e1".into());
        for i in 0..5 {
            hub.push(&signal(&format!("s{i}"), "payment"));
        }
        // The ring holds 3, 4, 5.
        match hub.resume("e1-2") {
            (Resume::From(v), 2) => {
                assert_eq!(v.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5])
            }
            _ => panic!("2 is just before the ring: it resumes"),
        }
        match hub.resume("e1-4") {
            (Resume::From(v), 4) => assert_eq!(v.len(), 1),
            _ => panic!("resumes"),
        }
        assert!(
            matches!(hub.resume("e1-1"), (Resume::Reset, 5)),
            "1 fell out of the ring"
        );
        assert!(
            matches!(hub.resume("e0-4"), (Resume::Reset, _)),
            "another process"
        );
        assert!(
            matches!(hub.resume("e1-9"), (Resume::Reset, _)),
            "from the future"
        );
        assert!(matches!(hub.resume("garbage"), (Resume::Reset, _)));
    }

    #[test]
    fn filters_pick_events_by_every_field() {
        let hub = Hub::with_epoch(10, "e".into());
        hub.push(&signal("a", "payment"));
        let ring = hub.lock();
        let e = &ring.events[0];
        let f = |theme: Option<&str>, kind: Option<&str>| LiveFilter {
            theme: theme.map(String::from),
            kind: kind.map(String::from),
            ..LiveFilter::default()
        };
        assert!(f(None, None).admits(e));
        assert!(f(Some("payment"), Some("complaint")).admits(e));
        assert!(!f(Some("reachability"), None).admits(e));
        assert!(!f(None, Some("question")).admits(e));
    }
}
