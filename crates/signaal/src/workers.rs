//! Starting workers from configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use signaal_bus::{ensure_topics, Publisher};
use signaal_classifier::{Classifier, Pipeline};
use signaal_store::{redact_url, Store};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    Email,
    Phone,
    Social,
    Classifier,
    Alerter,
    Stats,
    All,
}

pub async fn connect_store(cfg: &Config) -> anyhow::Result<Store> {
    Store::connect(&cfg.store.url)
        .await
        .with_context(|| format!("store `{}`", redact_url(&cfg.store.url)))
}

/// How long a broker may take to accept a TCP connection at start-up.
const BROKER_PROBE: Duration = Duration::from_secs(5);

/// The addresses of `bus.brokers` as librdkafka reads them: comma-separated, an optional
/// `PROTOCOL://` in front, Kafka's port 9092 when none is given.
fn broker_addresses(brokers: &str) -> Vec<String> {
    brokers
        .split(',')
        .map(|b| b.trim())
        .filter(|b| !b.is_empty())
        .map(|b| b.split_once("://").map_or(b, |(_, rest)| rest))
        .map(|b| {
            let has_port = match b.strip_prefix('[') {
                Some(v6) => v6.split_once("]:").is_some(),
                // `host:port`; a bare IPv6 address has colons too, and is left as it is.
                None => b.contains(':'),
            };
            if has_port {
                b.to_string()
            } else {
                format!("{b}:9092")
            }
        })
        .collect()
}

/// Fails at once, naming every address and why, when no broker of `bus.brokers` takes a TCP
/// connection: librdkafka would retry in silence until an admin request times out a minute
/// later. One broker that answers is enough; the client finds the others.
pub async fn reach_kafka(brokers: &str) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for addr in broker_addresses(brokers) {
        match tokio::time::timeout(BROKER_PROBE, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                failures.push(format!("{addr} (connection refused)"));
            }
            Ok(Err(e)) => failures.push(format!("{addr} ({e})")),
            Err(_) => failures.push(format!(
                "{addr} (no answer in {} s)",
                BROKER_PROBE.as_secs()
            )),
        }
    }
    anyhow::bail!("cannot reach Kafka at {}", failures.join(", "))
}

/// Kafka first (topics), then the register: what every worker and `setup` needs, each failure
/// naming the address that could not be reached.
async fn connect(cfg: &Config) -> anyhow::Result<Store> {
    signaal_store::check_url(&cfg.store.url).context("store")?;
    reach_kafka(&cfg.bus.brokers).await?;
    ensure_topics(&cfg.bus)
        .await
        .with_context(|| format!("creating topics on Kafka at `{}`", cfg.bus.brokers))?;
    connect_store(cfg).await
}

pub fn classifier(cfg: &Config) -> anyhow::Result<Classifier> {
    Ok(match &cfg.classifier.taxonomy {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read taxonomy `{}`", path.display()))?;
            Classifier::from_toml(&text)
                .with_context(|| format!("taxonomy `{}`", path.display()))?
        }
        None => Classifier::default_taxonomy()?,
    })
}

/// The learned layer as configured (`[classifier.learned]`), or `None` when it is off.
pub fn learned(cfg: &Config) -> anyhow::Result<Option<signaal_classifier::learned::Learned>> {
    cfg.classifier
        .learned
        .load()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

pub async fn setup(cfg: &Config) -> anyhow::Result<()> {
    let store = connect(cfg).await?;
    println!(
        "topics {:?} ready on {}; store ready ({})",
        cfg.bus.topics.all(),
        cfg.bus.brokers,
        store.backend()
    );
    Ok(())
}

/// Spawns the chosen workers and waits for all of them; the first error stops the others.
///
/// Everything that can be checked without the network — is there anything to run, the author
/// secret and taxonomy, IMAP accounts, webhook secrets, the register's URL — is checked before
/// Kafka or the database is contacted: a missing secret is reported as such, at once, not after
/// a minute of waiting for a broker that happens to be down.
pub async fn run(which: Worker, cfg: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let want = |w: Worker| which == w || which == Worker::All;
    let social = &cfg.social;
    let something = (want(Worker::Email)
        && !(cfg.email.folders.is_empty() && cfg.email.imap.is_empty()))
        || (want(Worker::Phone) && !cfg.phone.inboxes.is_empty())
        || (want(Worker::Social)
            && !(social.x.is_empty()
                && social.facebook.is_empty()
                && social.x_stream.is_empty()
                && social.webhook.is_none()))
        || want(Worker::Classifier)
        || want(Worker::Alerter)
        || want(Worker::Stats);
    if !something {
        anyhow::bail!("nothing to run: no sources of this kind are configured");
    }
    let pipeline = if want(Worker::Classifier) {
        Some(Arc::new(
            Pipeline::new(classifier(cfg)?, cfg.classifier.author_secret.as_bytes())?
                .with_learned(learned(cfg)?)
                .with_calls(cfg.classifier.calls)
                .with_impact(
                    cfg.analysis.impact.clone(),
                    cfg.analysis.recurrence.window_days,
                ),
        ))
    } else {
        None
    };
    let imap = if want(Worker::Email) {
        cfg.email
            .imap
            .iter()
            .map(|account| account.source(&cfg.email))
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let webhook = match (&cfg.social.webhook, want(Worker::Social)) {
        (Some(hook), true) => Some((hook.listen, hook.receiver()?)),
        _ => None,
    };

    let store = connect(cfg).await?;
    let publisher = Publisher::new(&cfg.bus)?;
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();

    if want(Worker::Email) {
        for f in &cfg.email.folders {
            let src = signaal_email::worker::EmailSource {
                name: f.name.clone(),
                path: f.path.clone(),
                poll_interval: Duration::from_secs(cfg.email.poll_seconds),
                rules: cfg.email.rules(),
            };
            let (p, s, t) = (publisher.clone(), store.clone(), shutdown.clone());
            tasks.spawn(async move {
                signaal_email::worker::run(src, p, s, t).await;
                Ok(())
            });
        }
        for src in imap {
            let (p, s, t) = (publisher.clone(), store.clone(), shutdown.clone());
            tasks.spawn(async move {
                signaal_email::imap::run(src, p, s, t).await;
                Ok(())
            });
        }
    }
    if want(Worker::Phone) {
        for inbox in &cfg.phone.inboxes {
            let src = signaal_phone::worker::PhoneSource {
                name: inbox.name.clone(),
                inbox: inbox.path.clone(),
                format: inbox.format(),
                poll_interval: Duration::from_secs(cfg.phone.poll_seconds),
            };
            let (p, s, t) = (publisher.clone(), store.clone(), shutdown.clone());
            tasks.spawn(async move {
                signaal_phone::worker::run(src, p, s, t).await;
                Ok(())
            });
        }
    }
    if want(Worker::Social) {
        let every = Duration::from_secs(cfg.social.poll_seconds);
        use signaal_social::worker::SocialSource;
        let sources = cfg.social.x.iter().cloned().map(SocialSource::X);
        let sources = sources.chain(
            cfg.social
                .facebook
                .iter()
                .cloned()
                .map(SocialSource::Facebook),
        );
        for src in sources {
            let (p, s, t) = (publisher.clone(), store.clone(), shutdown.clone());
            tasks.spawn(async move { Ok(signaal_social::worker::run(src, every, p, s, t).await?) });
        }
        for stream in &cfg.social.x_stream {
            let (src, p, s, t) = (
                stream.clone(),
                publisher.clone(),
                store.clone(),
                shutdown.clone(),
            );
            tasks.spawn(async move { Ok(signaal_social::stream::run(src, p, s, t).await?) });
        }
        if let Some((addr, receiver)) = webhook {
            let (p, t) = (publisher.clone(), shutdown.clone());
            tasks.spawn(async move {
                signaal_social::webhook::serve(addr, receiver, p, t)
                    .await
                    .with_context(|| format!("facebook webhook receiver on {addr}"))
            });
        }
    }
    if let Some(c) = pipeline {
        let (bus, settings, p, s, t) = (
            cfg.bus.clone(),
            cfg.classifier.worker,
            publisher.clone(),
            store.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            Ok(signaal_classifier::worker::run(&bus, settings, c, p, s, t).await?)
        });
    }
    if want(Worker::Alerter) {
        let (bus, a, p, s, t) = (
            cfg.bus.clone(),
            cfg.alerter.clone(),
            publisher.clone(),
            store.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move { Ok(signaal_alerter::run(&bus, a, p, s, t).await?) });
    }
    if want(Worker::Stats) {
        let (bus, settings, p, s, t) = (
            cfg.bus.clone(),
            cfg.stats,
            publisher.clone(),
            store.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move { Ok(signaal_alerter::stats::run(&bus, settings, p, s, t).await?) });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = result {
            tracing::error!(error = %crate::error_chain(&e), "worker failed; stopping the others");
            shutdown.cancel();
            first_error.get_or_insert(e);
        }
    }
    publisher.flush(Duration::from_secs(10));
    store.close().await;
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_are_read_as_librdkafka_reads_them() {
        for (brokers, want) in [
            ("127.0.0.1:19092", vec!["127.0.0.1:19092"]),
            (
                "kafka-0:9092, kafka-1:9093",
                vec!["kafka-0:9092", "kafka-1:9093"],
            ),
            ("kafka", vec!["kafka:9092"]),
            (
                "SASL_SSL://broker.example:9094",
                vec!["broker.example:9094"],
            ),
            ("PLAINTEXT://kafka", vec!["kafka:9092"]),
            ("[::1]:9092,[::1]", vec!["[::1]:9092", "[::1]:9092"]),
            ("::1", vec!["::1"]),
            (" , ", vec![]),
        ] {
            assert_eq!(broker_addresses(brokers), want, "{brokers}");
        }
    }
}
