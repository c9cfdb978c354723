//! The live feed: classified signals as Server-Sent Events.
//!
//! One consumer per server process reads `signals.classified` in a group of its own
//! (`<prefix>-web-<host>-<pid>`, starting at the newest offset, never committing: a page shows
//! what arrives while it is open, and the register has the rest). Each signal gets a sequence
//! number and goes into a ring of the last `web.live_buffer` events and to every open stream.
//! An event's id is `<epoch>-<seq>`, the epoch naming this process: a browser that reconnects
//! sends `Last-Event-ID` and gets every event after it from the ring, so a dropped connection
//! loses nothing; when the ring no longer reaches back that far, or the id is of an earlier
//! process (behind a load balancer, keep a browser on one server), the stream says `reset` first
//! and the page says that part of the stream was missed, with a reload for the newest signals.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

impl Hub {
    pub fn new(capacity: usize) -> Arc<Hub> {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Hub::with_epoch(capacity, format!("{started:x}{:x}", std::process::id()))
    }

    fn with_epoch(capacity: usize, epoch: String) -> Arc<Hub> {
        // The fan-out holds less than the ring: a client that falls behind it catches up from the
        // ring, which still has what it missed.
        let (tx, _) = broadcast::channel((capacity / 4).clamp(16, 1024));
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
}

/// How many events a catching-up stream takes from the ring at a time (the ring's lock is held
/// only for that).
const CATCH_UP: usize = 256;

/// A stream whose filter passes nothing still sends its position (an event with an id and no
/// data, which the browser keeps as its last event id without showing anything) this often, so
/// its reconnect resumes from the ring instead of being told to reset.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl Hub {
    /// The event number in an id this process gave (`<epoch>-<seq>`), if it is one.
    fn parse_id(&self, id: &str) -> Option<u64> {
        id.rsplit_once('-')
            .filter(|(epoch, _)| *epoch == self.epoch)
            .and_then(|(_, seq)| seq.parse::<u64>().ok())
    }

    /// Up to `max` events after number `seq`, oldest first (empty when none is newer); `None`
    /// when the ring no longer holds the event right after `seq`, or `seq` was never given.
    fn after(&self, seq: u64, max: usize) -> Option<Vec<Arc<LiveEvent>>> {
        let ring = self.lock();
        let newest = ring.next - 1;
        if seq > newest {
            return None;
        }
        let oldest = ring.events.front().map_or(ring.next, |e| e.seq);
        if seq + 1 < oldest {
            return None;
        }
        let from = usize::try_from(seq + 1 - oldest).ok()?;
        Some(ring.events.iter().skip(from).take(max).cloned().collect())
    }
}

/// What a stream sends, before it is put on the wire.
#[derive(Debug, Clone)]
pub enum Out {
    /// A first connection's position.
    Hello(u64),
    /// A signal the filter admits.
    Signal(Arc<LiveEvent>),
    /// The position after events the filter passed over (an id, no data).
    Progress(u64),
    /// The stream cannot resume where the client asked; it goes on from here.
    Reset(u64),
}

/// What a stream does next.
struct StreamState {
    hub: Arc<Hub>,
    rx: broadcast::Receiver<Arc<LiveEvent>>,
    filter: LiveFilter,
    /// What to send before doing anything else.
    queue: VecDeque<Out>,
    /// The last event number this stream has dealt with (sent, or passed over by its filter).
    sent: u64,
    /// Read the ring after `sent` before listening (a reconnect, or fallen behind the fan-out).
    catching_up: bool,
    /// When the stream last told the client its position.
    told: Instant,
}

impl StreamState {
    fn enqueue(&mut self, e: &Arc<LiveEvent>) {
        if e.seq <= self.sent {
            return;
        }
        self.sent = e.seq;
        if self.filter.admits(e) {
            self.queue.push_back(Out::Signal(e.clone()));
            self.told = Instant::now();
        } else if self.told.elapsed() >= PROGRESS_EVERY {
            self.queue.push_back(Out::Progress(e.seq));
            self.told = Instant::now();
        }
    }

    fn reset(&mut self) {
        self.queue.clear();
        self.sent = self.hub.last();
        self.catching_up = false;
        self.queue.push_back(Out::Reset(self.sent));
        self.told = Instant::now();
    }

    /// Takes the next events from the ring; false once caught up.
    fn catch_up(&mut self) {
        match self.hub.after(self.sent, CATCH_UP) {
            Some(events) if events.is_empty() => self.catching_up = false,
            Some(events) => {
                for e in &events {
                    self.enqueue(e);
                }
            }
            None => self.reset(),
        }
    }
}

/// The SSE stream of the hub's events for one client, after `last_event_id` when given.
pub fn stream(
    hub: Arc<Hub>,
    filter: LiveFilter,
    last_event_id: Option<&str>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    use futures::StreamExt;
    let ids = hub.clone();
    let wire = events(hub, filter, last_event_id).map(move |out| {
        Ok(match out {
            Out::Hello(seq) => Event::default().event("hello").id(ids.id(seq)).data("{}"),
            Out::Signal(e) => Event::default()
                .event("signal")
                .id(ids.id(e.seq))
                .data(e.data.as_str()),
            Out::Progress(seq) => Event::default().id(ids.id(seq)),
            Out::Reset(seq) => Event::default().event("reset").id(ids.id(seq)).data("{}"),
        })
    });
    Sse::new(wire).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// What [`stream`] sends, in order.
pub fn events(
    hub: Arc<Hub>,
    filter: LiveFilter,
    last_event_id: Option<&str>,
) -> impl Stream<Item = Out> {
    // Subscribed before the ring is read: an event pushed in between comes both ways and is
    // sent once (by number).
    let rx = hub.tx.subscribe();
    let mut state = StreamState {
        hub: hub.clone(),
        rx,
        filter,
        queue: VecDeque::new(),
        sent: 0,
        catching_up: false,
        told: Instant::now(),
    };
    match last_event_id.map(|id| hub.parse_id(id)) {
        Some(Some(seq)) if hub.after(seq, 0).is_some() => {
            state.sent = seq;
            state.catching_up = true;
        }
        Some(_) => state.reset(),
        None => {
            // A first connection starts at the newest event; its id goes to the browser at
            // once, so a reconnect before the first signal still resumes from here.
            state.sent = hub.last();
            state.queue.push_back(Out::Hello(state.sent));
        }
    }
    metrics::gauge!("signaal_web_live_clients").increment(1.0);
    let guard = ClientGuard;
    let s = futures::stream::unfold((state, guard), |(mut state, guard)| async move {
        loop {
            if state.hub.closed.is_cancelled() {
                return None;
            }
            if let Some(e) = state.queue.pop_front() {
                return Some((e, (state, guard)));
            }
            if state.catching_up {
                state.catch_up();
                continue;
            }
            let closed = state.hub.closed.clone();
            let next = tokio::select! {
                _ = closed.cancelled() => return None,
                e = state.rx.recv() => e,
            };
            match next {
                Ok(e) => state.enqueue(&e),
                // This client fell behind the fan-out: catch up from the ring.
                Err(broadcast::error::RecvError::Lagged(_)) => state.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Box::pin(s)
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
    // Whatever the workers' settings: this group starts at the newest offset and never commits.
    cfg.client
        .insert("auto.offset.reset".into(), "latest".into());
    cfg.client
        .insert("enable.auto.commit".into(), "false".into());
    // The page works without Kafka; a feed that cannot reach it retries about once a second
    // rather than at librdkafka's pace, which filled the log with "all brokers down".
    for (k, v) in [
        ("reconnect.backoff.ms", "1000"),
        ("reconnect.backoff.max.ms", "10000"),
    ] {
        cfg.client.entry(k.into()).or_insert_with(|| v.into());
    }
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

    fn seqs(v: Option<Vec<Arc<LiveEvent>>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.seq).collect())
    }

    #[test]
    fn the_ring_gives_every_event_after_a_number_or_none_when_it_no_longer_can() {
        let hub = Hub::with_epoch(3, "e1".into());
        for i in 0..5 {
            hub.push(&signal(&format!("s{i}"), "payment"));
        }
        // The ring holds 3, 4, 5.
        assert_eq!(
            seqs(hub.after(2, 10)),
            Some(vec![3, 4, 5]),
            "2 is just before it"
        );
        assert_eq!(seqs(hub.after(3, 1)), Some(vec![4]), "at most `max`");
        assert_eq!(seqs(hub.after(5, 10)), Some(vec![]), "nothing newer");
        assert_eq!(seqs(hub.after(1, 10)), None, "2 fell out of the ring");
        assert_eq!(seqs(hub.after(9, 10)), None, "from the future");
        assert_eq!(hub.parse_id("e1-4"), Some(4));
        assert_eq!(hub.parse_id("e0-4"), None, "another process");
        assert_eq!(hub.parse_id("garbage"), None);
    }

    async fn next(out: &mut (impl Stream<Item = Out> + Unpin)) -> Option<Out> {
        use futures::StreamExt;
        tokio::time::timeout(Duration::from_secs(5), out.next())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_the_fan_out_catches_up_from_the_ring() {
        let hub = Hub::with_epoch(2000, "e".into());
        let mut out = events(hub.clone(), LiveFilter::default(), None);
        assert!(matches!(next(&mut out).await, Some(Out::Hello(0))));
        // Three times what the fan-out holds (500) while the client reads nothing: its receiver
        // lags, and the ring (2000) still has everything.
        for i in 0..1500 {
            hub.push(&signal(&format!("s{i}"), "payment"));
        }
        let mut got = Vec::new();
        while got.len() < 1500 {
            match next(&mut out).await {
                Some(Out::Signal(e)) => got.push(e.seq),
                other => panic!("unexpected {other:?} after {} events", got.len()),
            }
        }
        assert_eq!(
            got,
            (1..=1500).collect::<Vec<_>>(),
            "every event once, in order"
        );
        // Closing the hub ends the stream (a graceful shutdown waits for it).
        hub.close();
        assert!(next(&mut out).await.is_none());
    }

    #[tokio::test]
    async fn a_stream_the_ring_cannot_serve_says_reset_and_goes_on() {
        let hub = Hub::with_epoch(100, "e".into());
        let mut out = events(hub.clone(), LiveFilter::default(), None);
        assert!(matches!(next(&mut out).await, Some(Out::Hello(0))));
        for i in 0..300 {
            hub.push(&signal(&format!("s{i}"), "payment"));
        }
        assert!(matches!(next(&mut out).await, Some(Out::Reset(300))));
        hub.push(&signal("new", "payment"));
        assert!(matches!(next(&mut out).await, Some(Out::Signal(e)) if e.seq == 301));
    }

    #[tokio::test]
    async fn a_filtered_stream_tells_its_position_so_a_reconnect_resumes() {
        let hub = Hub::with_epoch(40, "e".into());
        let only_payment = LiveFilter {
            theme: Some("payment".into()),
            ..LiveFilter::default()
        };
        let mut out = events(hub.clone(), only_payment.clone(), None);
        assert!(matches!(next(&mut out).await, Some(Out::Hello(0))));
        tokio::time::sleep(PROGRESS_EVERY).await;
        for i in 0..10 {
            hub.push(&signal(&format!("s{i}"), "reachability"));
        }
        // Nothing it shows, but its position: once, then not again within the second.
        assert!(matches!(next(&mut out).await, Some(Out::Progress(1))));
        hub.push(&signal("p", "payment"));
        assert!(matches!(next(&mut out).await, Some(Out::Signal(e)) if e.seq == 11));
        drop(out);
        for i in 0..39 {
            hub.push(&signal(&format!("t{i}"), "reachability"));
        }
        // The ring (40) holds 11–50 (12–51 once `q` is in): from 1 there is a gap, from 11
        // there is none.
        let mut stale = events(hub.clone(), only_payment.clone(), Some("e-1"));
        assert!(matches!(next(&mut stale).await, Some(Out::Reset(50))));
        let mut resumed = events(hub.clone(), only_payment, Some("e-11"));
        hub.push(&signal("q", "payment"));
        assert!(matches!(next(&mut resumed).await, Some(Out::Signal(e)) if e.seq == 51));
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
