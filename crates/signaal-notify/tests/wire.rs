//! Each wire format posted to a local receiver that checks what arrives: the signed webhook,
//! Slack, Teams, Alertmanager; and how failures are reported.

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::{alert_event, hour, signature_ok, BoxError, Receiver};
use signaal_core::{AlertEventEnvelope, AlertState, Severity};
use signaal_notify::{DeliveryError, Notifier, NotifyConfig, WebhookConfig};

const LINK: &str = "https://signaal.example/alerts/{alert_id}";

fn webhook(url: String, secret: &str) -> Result<WebhookConfig, BoxError> {
    Ok(toml::from_str(&format!(
        "url = \"{url}\"\nsecret = \"{secret}\"\n"
    ))?)
}

#[tokio::test]
async fn webhook_is_signed_and_carries_the_envelope() -> Result<(), BoxError> {
    let rx = Receiver::start().await?;
    rx.check_signatures(b"k3y-0f-s0me-l3ngth");
    let notifier = Notifier::new(5.0)?;
    let event = alert_event("digital_service/twitter", 10, AlertState::Firing, 10);
    let now = Utc::now();
    notifier
        .webhook(
            &webhook(rx.url("/hook"), "k3y-0f-s0me-l3ngth")?,
            &event,
            now,
        )
        .await?;
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.status, 204, "the receiver verified the signature");
    assert_eq!(r.path, "/hook");
    assert_eq!(r.header("x-signaal-event-id"), Some(event.id.as_str()));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ts: i64 = r
        .header("x-signaal-timestamp")
        .ok_or("no timestamp")?
        .parse()?;
    assert_eq!(ts, now.timestamp());
    assert!(signature_ok(b"k3y-0f-s0me-l3ngth", &r.headers, &r.body));
    assert!(
        !signature_ok(b"another key", &r.headers, &r.body),
        "the check can fail"
    );
    // The body is the `signals.alerts` v2 envelope, as its own decoder reads it.
    let env = AlertEventEnvelope::decode(&r.body)?;
    assert_eq!(env.event, event);
    assert_eq!(env.schema_version, 2);

    // The wrong secret: the receiver says 401, which is this message's fault, not an outage.
    let err = notifier
        .webhook(&webhook(rx.url("/hook"), "wrong")?, &event, now)
        .await
        .err()
        .ok_or("a wrongly signed delivery was accepted")?;
    assert!(
        matches!(err, DeliveryError::Status { status: 401, .. }),
        "{err}"
    );
    assert!(!err.sink_down());

    // A secret in a file is read at delivery: a rotated file signs with the new secret.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("secret");
    std::fs::write(&file, "r0tated\n")?;
    rx.check_signatures(b"r0tated");
    let from_file: WebhookConfig = toml::from_str(&format!(
        "url = \"{}\"\nsecret_file = \"{}\"\n",
        rx.url("/hook"),
        file.display()
    ))?;
    notifier.webhook(&from_file, &event, now).await?;
    std::fs::write(&file, "")?;
    let err = notifier
        .webhook(&from_file, &event, now)
        .await
        .err()
        .ok_or("an empty secret file signed a delivery")?;
    assert!(
        err.to_string().contains("is empty") && err.sink_down(),
        "{err}"
    );
    assert_eq!(
        rx.received().iter().filter(|r| r.status == 204).count(),
        2,
        "nothing is sent without a secret"
    );
    Ok(())
}

#[tokio::test]
async fn slack_gets_the_numbers_and_the_link() -> Result<(), BoxError> {
    let rx = Receiver::start().await?;
    let notifier = Notifier::new(5.0)?;
    let event = alert_event("digital_service", 10, AlertState::Firing, 10);
    let link = format!("https://signaal.example/alerts/{}", event.alert_id);
    notifier
        .slack(&rx.url("/services/T0/B0/tok"), &event, Some(&link))
        .await?;
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/services/T0/B0/tok");
    let body = got[0].json()?;
    let obj = body.as_object().ok_or("not an object")?;
    assert_eq!(obj.len(), 1, "only `text`: {body}");
    let text = body["text"].as_str().ok_or("no text")?;
    for want in [
        "*[FIRING] digital_service (warning)*",
        "42 signals 2027-01-15 18:00–19:00 UTC",
        "expected 3.1",
        "threshold 9",
        "p = 2.50e-9 (farrington)",
        "Channels: twitter 30, email 12",
        // Slack's three escapes.
        "Inloggen &lt;DigiD&gt; &amp; co (5)",
    ] {
        assert!(text.contains(want), "`{want}` missing from {text}");
    }
    assert!(
        text.ends_with(&format!("<{link}|Open the alert>")),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn teams_gets_a_message_card() -> Result<(), BoxError> {
    let rx = Receiver::start().await?;
    let notifier = Notifier::new(5.0)?;
    let mut event = alert_event("digital_service", 10, AlertState::Repeat, 12);
    event.severity = Severity::Critical;
    let link = format!("https://signaal.example/alerts/{}", event.alert_id);
    notifier
        .teams(&rx.url("/webhookb2/x"), &event, Some(&link))
        .await?;
    let got = rx.accepted();
    assert_eq!(got.len(), 1);
    let card = got[0].json()?;
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["@context"], "http://schema.org/extensions");
    assert_eq!(card["summary"], "digital_service repeat");
    assert_eq!(card["title"], "\\[REPEAT\\] digital\\_service (critical)");
    assert_eq!(card["themeColor"], "D13438");
    let text = card["text"].as_str().ok_or("no text")?;
    for want in [
        "digital\\_service: repeat — 42 signals 2027-01-15 20:00–21:00 UTC",
        "expected 3.1, threshold 9",
        "62 signals since 2027-01-15 18:00 UTC",
        "Inloggen \\<DigiD\\> & co (5)",
        &format!("[Open the alert]({link})"),
    ] {
        assert!(text.contains(want), "`{want}` missing from {text}");
    }
    assert_eq!(card["potentialAction"][0]["@type"], "OpenUri");
    assert_eq!(
        card["potentialAction"][0]["targets"][0]["uri"],
        link.as_str()
    );

    // Resolved is green, and without a link there is no action.
    let resolved = alert_event("digital_service", 10, AlertState::Resolved, 13);
    notifier
        .teams(&rx.url("/webhookb2/x"), &resolved, None)
        .await?;
    let card = rx.accepted()[1].json()?;
    assert_eq!(card["themeColor"], "2EB67D");
    assert!(card.get("potentialAction").is_none(), "{card}");
    Ok(())
}

#[tokio::test]
async fn alertmanager_gets_one_alert_with_labels_and_times() -> Result<(), BoxError> {
    let rx = Receiver::start().await?;
    let notifier = Notifier::new(5.0)?;
    let now = Utc
        .with_ymd_and_hms(2027, 1, 15, 9, 0, 7)
        .single()
        .ok_or("time")?;
    let firing = alert_event("payment/email", 10, AlertState::Firing, 10);
    let link = format!("https://signaal.example/alerts/{}", firing.alert_id);
    notifier
        .alertmanager(&rx.url("/"), &firing, Some(&link), now)
        .await?;
    let resolved = alert_event("payment/email", 10, AlertState::Resolved, 13);
    notifier
        .alertmanager(&format!("http://{}", rx.addr), &resolved, None, now)
        .await?;
    let got = rx.accepted();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter().all(|r| r.path == "/api/v2/alerts"),
        "{:?}",
        got[0].path
    );
    let alerts = got[0].json()?;
    let list = alerts.as_array().ok_or("not an array")?;
    assert_eq!(list.len(), 1);
    let a = &list[0];
    assert_eq!(
        a["labels"],
        serde_json::json!({
            "alertname": "SignaalSpike",
            "theme": "payment",
            "severity": "warning",
            "series": "payment/email",
            "channel": "email",
        })
    );
    assert_eq!(a["startsAt"], "2027-01-15T18:00:00Z");
    assert_eq!(
        a["endsAt"], "2027-01-15T12:00:07Z",
        "firing: delivery time + 3 buckets"
    );
    assert_eq!(a["generatorURL"], link.as_str());
    let summary = a["annotations"]["summary"].as_str().ok_or("no summary")?;
    assert!(
        summary.starts_with("payment/email: firing — 42 signals"),
        "{summary}"
    );
    let description = a["annotations"]["description"]
        .as_str()
        .ok_or("no description")?;
    assert!(
        description.contains("Top words: storing (17)"),
        "{description}"
    );

    let r = &got[1].json()?[0];
    assert_eq!(
        r["endsAt"], "2027-01-15T22:00:00Z",
        "resolved: the bucket's end"
    );
    assert_eq!(r["startsAt"], "2027-01-15T18:00:00Z");
    assert!(r.get("generatorURL").is_none());
    assert_eq!(hour(14), resolved.bucket_end);

    // Without a channel there is no `channel` label.
    let theme_only = alert_event("payment", 10, AlertState::Update, 11);
    notifier
        .alertmanager(&rx.url(""), &theme_only, None, now)
        .await?;
    let labels = rx.accepted()[2].json()?[0]["labels"].clone();
    assert!(labels.get("channel").is_none(), "{labels}");
    Ok(())
}

#[tokio::test]
async fn failures_say_why_without_the_url() -> Result<(), BoxError> {
    let notifier = Notifier::new(0.5)?;
    let event = alert_event("payment", 10, AlertState::Firing, 10);

    let rx = Receiver::start().await?;
    rx.always(500);
    let err = notifier
        .slack(&rx.url("/services/T0/B0/s3cr3t-t0ken"), &event, None)
        .await
        .err()
        .ok_or("a 500 counted as delivered")?;
    assert!(
        matches!(err, DeliveryError::Status { status: 500, .. }),
        "{err}"
    );
    assert!(err.sink_down());
    rx.always(404);
    let err = notifier
        .slack(&rx.url("/services/T0/B0/s3cr3t-t0ken"), &event, None)
        .await
        .err()
        .ok_or("a 404 counted as delivered")?;
    assert_eq!(err.to_string(), "HTTP 404");
    assert!(
        !err.sink_down(),
        "a refusal of one message is not an outage"
    );
    rx.always(302);
    let err = notifier
        .teams(&rx.url("/x"), &event, None)
        .await
        .err()
        .ok_or("a redirect counted as delivered")?;
    assert!(err.to_string().starts_with("HTTP 302"), "{err}");

    // Slow: the timeout.
    rx.always(0);
    rx.delay(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let err = notifier
        .slack(&rx.url("/services/T0/B0/s3cr3t-t0ken"), &event, None)
        .await
        .err()
        .ok_or("a delivery past the timeout counted")?;
    assert!(matches!(err, DeliveryError::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Down: the port is closed.
    let addr = rx.addr;
    drop(rx);
    let err = notifier
        .slack(
            &format!("http://{addr}/services/T0/B0/s3cr3t-t0ken"),
            &event,
            None,
        )
        .await
        .err()
        .ok_or("a closed port accepted")?;
    assert!(matches!(err, DeliveryError::Connect(_)), "{err}");
    assert!(err.sink_down());
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    Ok(())
}

#[test]
fn link_placeholders_are_filled_in() -> Result<(), BoxError> {
    let cfg: NotifyConfig = toml::from_str(&format!("link = \"{LINK}\""))?;
    cfg.validate()?;
    let event = alert_event("payment", 10, AlertState::Firing, 10);
    assert_eq!(
        cfg.link_for(&event),
        Some(format!("https://signaal.example/alerts/{}", event.alert_id))
    );
    Ok(())
}
