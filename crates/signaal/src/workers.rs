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
    All,
}

pub async fn connect_store(cfg: &Config) -> anyhow::Result<Store> {
    Store::connect(&cfg.store.url)
        .await
        .with_context(|| format!("store `{}`", redact_url(&cfg.store.url)))
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

pub async fn setup(cfg: &Config) -> anyhow::Result<()> {
    ensure_topics(&cfg.bus).await.context("creating topics")?;
    let store = connect_store(cfg).await?;
    println!(
        "topics {:?} ready on {}; store ready ({})",
        cfg.bus.topics.all(),
        cfg.bus.brokers,
        store.backend()
    );
    Ok(())
}

/// Spawns the chosen workers and waits for all of them; the first error stops the others.
pub async fn run(which: Worker, cfg: &Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    ensure_topics(&cfg.bus).await.context("creating topics")?;
    let store = connect_store(cfg).await?;
    let publisher = Publisher::new(&cfg.bus)?;
    let mut tasks: JoinSet<anyhow::Result<()>> = JoinSet::new();
    let want = |w: Worker| which == w || which == Worker::All;

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
        for account in &cfg.email.imap {
            let src = account.source(&cfg.email)?;
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
        if let Some(hook) = &cfg.social.webhook {
            let (addr, receiver) = (hook.listen, hook.receiver()?);
            let (p, t) = (publisher.clone(), shutdown.clone());
            tasks.spawn(async move {
                signaal_social::webhook::serve(addr, receiver, p, t)
                    .await
                    .with_context(|| format!("facebook webhook receiver on {addr}"))
            });
        }
    }
    if want(Worker::Classifier) {
        let c = Arc::new(
            Pipeline::new(classifier(cfg)?, cfg.classifier.author_secret.as_bytes())?
                .with_calls(cfg.classifier.calls),
        );
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
    if tasks.is_empty() {
        anyhow::bail!("nothing to run: no sources of this kind are configured");
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "worker failed; stopping the others");
            shutdown.cancel();
            first_error.get_or_insert(e);
        }
    }
    publisher.flush(Duration::from_secs(10));
    store.close().await;
    first_error.map_or(Ok(()), Err)
}
