//! Whether each consumer makes progress, for `/healthz`.
//!
//! A consumer that retries a batch forever, or cannot reach the broker, is alive as a process but
//! dead as a worker: the health check must say so. Each [`Consumer`](crate::Consumer) registers
//! a [`Liveness`] here; a worker that has held input without acknowledging any of it for longer
//! than its stall time, or that has seen only consume errors for that long, is reported
//! unhealthy with the reason (the last error). Idle consumers with nothing to read are healthy.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Progress of one consumer, shared between its loop and the health endpoint.
#[derive(Debug)]
pub struct Liveness {
    name: String,
    stall: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Since when input has been waiting without any acknowledgement.
    waiting_since: Option<Instant>,
    /// Messages taken and not yet acknowledged.
    pending: usize,
    /// Since when consuming has failed with nothing received in between, and the last failure:
    /// librdkafka recovers by itself, so errors that stopped coming are no longer a problem
    /// even while nothing arrives (an idle topic).
    failing_since: Option<Instant>,
    last_failure: Option<Instant>,
    last_error: Option<String>,
}

fn registry() -> &'static Mutex<Vec<Weak<Liveness>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Weak<Liveness>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

impl Liveness {
    /// Registers a consumer called `name` (its group). `stall` zero switches the check off.
    pub fn register(name: &str, stall: Duration) -> Arc<Liveness> {
        let l = Arc::new(Liveness {
            name: name.to_string(),
            stall,
            state: Mutex::new(State::default()),
        });
        if let Ok(mut r) = registry().lock() {
            r.retain(|w| w.strong_count() > 0);
            r.push(Arc::downgrade(&l));
        }
        l
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain counters.
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// `n` messages were taken from Kafka.
    pub fn taken(&self, n: usize) {
        let now = Instant::now();
        self.with(|s| {
            s.pending += n;
            s.waiting_since.get_or_insert(now);
            s.failing_since = None;
        });
    }

    /// `n` messages were acknowledged (stored, published, or dead-lettered).
    pub fn acknowledged(&self, n: usize) {
        let now = Instant::now();
        self.with(|s| {
            s.pending = s.pending.saturating_sub(n);
            s.waiting_since = (s.pending > 0).then_some(now);
            s.last_error = None;
        });
    }

    /// Messages that were taken will not be acknowledged here (partitions revoked, shutdown).
    pub fn released(&self, n: usize) {
        self.with(|s| {
            s.pending = s.pending.saturating_sub(n);
            if s.pending == 0 {
                s.waiting_since = None;
            }
        });
    }

    /// A batch failed and will be retried.
    pub fn failed(&self, error: &str) {
        self.with(|s| s.last_error = Some(error.to_string()));
    }

    /// Consuming itself failed (broker unreachable, topic missing, …).
    pub fn consume_failed(&self, error: &str) {
        self.consume_failed_at(error, Instant::now());
    }

    fn consume_failed_at(&self, error: &str, now: Instant) {
        self.with(|s| {
            s.failing_since.get_or_insert(now);
            s.last_failure = Some(now);
            s.last_error = Some(error.to_string());
        });
    }

    /// `Err(reason)` when the consumer has made no progress for longer than its stall time.
    pub fn check(&self, now: Instant) -> Result<(), String> {
        if self.stall.is_zero() {
            return Ok(());
        }
        self.with(|s| {
            let error = s.last_error.as_deref().unwrap_or("none");
            if let Some(since) = s.waiting_since {
                let held = now.saturating_duration_since(since);
                if held > self.stall {
                    return Err(format!(
                        "`{}`: {} messages waiting, no progress for {} s (limit {} s); last error: {error}",
                        self.name,
                        s.pending,
                        held.as_secs(),
                        self.stall.as_secs()
                    ));
                }
            }
            // Errors still coming (librdkafka reports a down broker again at every reconnect,
            // at most a second apart) within the last quarter of the stall time, at least 5 s.
            let recent = (self.stall / 4).max(Duration::from_secs(5));
            let still_failing = s
                .last_failure
                .is_some_and(|at| now.saturating_duration_since(at) <= recent);
            if let (Some(since), true) = (s.failing_since, still_failing) {
                let failing = now.saturating_duration_since(since);
                if failing > self.stall {
                    return Err(format!(
                        "`{}`: cannot consume for {} s (limit {} s); last error: {error}",
                        self.name,
                        failing.as_secs(),
                        self.stall.as_secs()
                    ));
                }
            }
            Ok(())
        })
    }
}

/// The reasons every registered consumer that is stuck is unhealthy; empty when all are fine.
pub fn problems() -> Vec<String> {
    problems_at(Instant::now())
}

fn problems_at(now: Instant) -> Vec<String> {
    let live: Vec<Arc<Liveness>> = match registry().lock() {
        Ok(r) => r.iter().filter_map(Weak::upgrade).collect(),
        Err(poisoned) => poisoned
            .into_inner()
            .iter()
            .filter_map(Weak::upgrade)
            .collect(),
    };
    live.iter().filter_map(|l| l.check(now).err()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_input_without_progress_is_unhealthy_and_progress_heals() {
        let l = Liveness::register("g-test", Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(l.check(t0).is_ok(), "idle is healthy");
        l.taken(500);
        l.failed("database error: index row requires 10016 bytes");
        assert!(l.check(t0 + Duration::from_secs(3)).is_ok());
        let err = l
            .check(t0 + Duration::from_secs(60))
            .err()
            .unwrap_or_default();
        assert!(err.contains("500 messages waiting"), "{err}");
        assert!(err.contains("index row requires"), "{err}");
        assert!(problems_at(t0 + Duration::from_secs(60))
            .iter()
            .any(|p| p.contains("g-test")));
        l.acknowledged(500);
        assert!(l.check(Instant::now() + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn consume_errors_for_longer_than_the_stall_time_are_unhealthy() {
        let l = Liveness::register("g-broker", Duration::from_secs(5));
        let t0 = Instant::now();
        l.consume_failed_at("all brokers down", t0);
        assert!(l.check(t0 + Duration::from_secs(1)).is_ok());
        // The broker stays down: librdkafka reports it again at every reconnect.
        l.consume_failed_at("all brokers down", t0 + Duration::from_secs(29));
        let err = l
            .check(t0 + Duration::from_secs(30))
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("cannot consume") && err.contains("all brokers down"),
            "{err}"
        );
        l.taken(1);
        l.acknowledged(1);
        assert!(l.check(t0 + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn errors_that_stopped_coming_are_no_problem_on_an_idle_topic() {
        let l = Liveness::register("g-recovered", Duration::from_secs(20));
        let t0 = Instant::now();
        l.consume_failed("all brokers down");
        // Nothing arrives (an idle topic), and no error either since t0: librdkafka recovered.
        assert!(l.check(t0 + Duration::from_secs(3600)).is_ok());
    }

    #[test]
    fn a_zero_stall_time_switches_the_check_off() {
        let l = Liveness::register("g-off", Duration::ZERO);
        l.taken(1);
        assert!(l.check(Instant::now() + Duration::from_secs(3600)).is_ok());
    }
}
