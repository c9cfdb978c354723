//! The IMAP source against a real Dovecot server (scripts/dovecot-local, started by scripts/test).

mod common;

use common::{drop_database, fresh_database, service_env, Result};
use futures::TryStreamExt;
use signaal_bus::{BusConfig, Publisher};
use signaal_email::imap::{connect, poll_once, AfterCommit, Auth, ImapConfig, ImapError, Security};
use signaal_store::Store;

fn config(name: &str, security: Security, auth: Auth, folder: &str) -> Result<ImapConfig> {
    let var = if security == Security::Tls {
        "SIGNAAL_TEST_IMAPS"
    } else {
        "SIGNAAL_TEST_IMAP"
    };
    let addr = service_env(var)?;
    let (_, port) = addr.rsplit_once(':').ok_or("address without port")?;
    Ok(ImapConfig {
        name: name.into(),
        // The certificate is for `localhost` and 127.0.0.1; connect by name to check it.
        host: "localhost".into(),
        port: port.parse()?,
        security,
        ca_file: Some(service_env("SIGNAAL_TEST_IMAP_CA")?.into()),
        auth,
        folders: vec![folder.into()],
        after: AfterCommit::Nothing,
        batch: 2,
    })
}

fn password() -> Auth {
    Auth::Password {
        user: "signaal".into(),
        password: "signaal-secret".into(),
    }
}

fn message(n: u32) -> String {
    format!(
        "From: Klant {n} <klant{n}@example.nl>\r\nTo: klantcontact@gemeente.nl\r\nSubject: Brief {n}\r\n\
         Message-ID: <imap-test-{n}-{}@example.nl>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\n\
         Ik snap de brief niet die ik kreeg.\r\n",
        std::process::id()
    )
}

#[tokio::test]
async fn new_mail_is_read_once_and_seen_flags_are_left_alone() -> Result {
    let db = format!("imap_{}", std::process::id());
    let (url, admin) = fresh_database(&db).await?;
    let store = Store::connect(&url).await?;
    let bus = BusConfig {
        brokers: service_env("SIGNAAL_TEST_BROKERS")?,
        ..BusConfig::default()
    };
    signaal_bus::ensure_topics(&bus).await?;
    let publisher = Publisher::new(&bus)?;
    let folder = format!("t{}", std::process::id());
    let cfg = config("imap-test", Security::StartTls, password(), &folder)?;

    // A person's session: creates the folder, delivers mail, reads one message.
    let mut person = connect(&cfg).await?;
    person.create(&folder).await?;
    for n in 1..=3 {
        person
            .append(
                &folder,
                Some(if n == 1 { "(\\Seen)" } else { "()" }),
                None,
                message(n),
            )
            .await?;
    }

    let first = poll_once(&cfg, &publisher, &store).await?;
    assert_eq!(first.published, 3, "three messages, in batches of two");
    assert_eq!(
        poll_once(&cfg, &publisher, &store).await?.published,
        0,
        "nothing twice"
    );

    // Flags are what the person left: signaal fetched with BODY.PEEK[].
    person.select(&folder).await?;
    let unseen = person.uid_search("UNSEEN").await?;
    assert_eq!(unseen.len(), 2, "signaal must not mark mail read");

    // The person marks everything read and new mail arrives: only the new mail is read.
    person
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await?
        .try_collect::<Vec<_>>()
        .await?;
    person.append(&folder, None, None, message(4)).await?;
    assert_eq!(poll_once(&cfg, &publisher, &store).await?.published, 1);

    let cursors = store.cursors("imap-test").await?;
    let cursor = cursors.get(&format!("imap:{folder}")).ok_or("no cursor")?;
    assert!(cursor.ends_with(":4"), "cursor {cursor} should be at UID 4");

    person.delete(&folder).await?;
    person.logout().await?;
    drop(store);
    drop_database(&admin, &db).await?;
    Ok(())
}

#[tokio::test]
async fn xoauth2_over_imaps_and_a_wrong_token_is_a_clear_error() -> Result {
    let good = Auth::XOAuth2 {
        user: "oauth".into(),
        token: "signaal-test-token".into(),
    };
    let mut s = connect(&config("x", Security::Tls, good, "INBOX")?).await?;
    s.select("INBOX").await?;
    s.logout().await?;

    let bad = Auth::XOAuth2 {
        user: "oauth".into(),
        token: "expired".into(),
    };
    match connect(&config("x", Security::Tls, bad, "INBOX")?).await {
        Err(ImapError::Login { user, .. }) => assert_eq!(user, "oauth"),
        Err(e) => return Err(format!("want a login error, got {e}").into()),
        Ok(_) => return Err("a wrong token was accepted".into()),
    }
    Ok(())
}
