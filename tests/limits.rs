//! Input too large for one Kafka message (1,000,000 bytes by default), through the running workers
//! into Apache Kafka and PostgreSQL. Before signaal cut such input to size, one 3 MB file in a
//! mail folder failed every publish of its batch: the worker retried it forever and nothing after
//! it was read.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use common::{
    base_config, drop_database, dry_run_ids, fresh_database, kcat_read, run_setup, service_env,
    signaal_bin, start_worker, wait_for_signals, Result, Workers,
};
use signaal_bus::{MAX_DEAD_LETTER_BYTES, MAX_RAW_BYTES};
use signaal_core::{MAX_SUBJECT_BYTES, MAX_TEXT_BYTES};
use sqlx::Row;

/// Bytes that are no message at all: 2.7 MB of base64 noise, as a stray export would be.
fn noise(bytes: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(bytes + bytes / 76);
    for i in 0..bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(char::from(alphabet[(state % 64) as usize]));
        if i % 76 == 75 {
            out.push('\n');
        }
    }
    out
}

#[tokio::test]
async fn oversized_input_is_cut_to_size_or_dead_lettered_and_the_rest_flows() -> Result {
    let bin = signaal_bin()?;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let run = common::unique("limits");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let (mail, calls) = (dir.path().join("mail"), dir.path().join("calls"));
    std::fs::create_dir_all(&mail)?;
    std::fs::create_dir_all(&calls)?;

    // Mail: noise (first, so it would block what follows), a 1 MB complaint with a 5 KB subject,
    // and an ordinary one.
    let noise = noise(2_700_000);
    std::fs::write(mail.join("a-noise.eml"), &noise)?;
    let long_text = "Ik ben boos over de brief die ik kreeg. ".repeat(26_000);
    let long_subject = "Brief ".repeat(900);
    std::fs::write(
        mail.join("b-long.eml"),
        format!(
            "From: a@voorbeeld.nl\r\nSubject: {long_subject}\r\nMessage-ID: <long-{run}@x>\r\n\r\n{long_text}\r\n"
        ),
    )?;
    std::fs::write(
        mail.join("c-short.eml"),
        format!(
            "From: b@voorbeeld.nl\r\nSubject: Aanslag\r\nMessage-ID: <short-{run}@x>\r\n\r\n\
             Ik snap de aanslag niet.\r\n"
        ),
    )?;
    // Calls: a 540 KB agent note, and a row with a column too many carrying as much (under the
    // reader's 1 MiB line limit, over the 512 KiB a dead letter keeps; longer lines are
    // refused unread, see signaal-phone's tests).
    let header =
        "call_id;started_at;caller;agent;queue;wait_seconds;talk_seconds;transfers;disposition;notes\n";
    let note = "klant hangt al een uur in de wacht ".repeat(15_500);
    let export = format!(
        "{header}K-1;02-11-2026 10:00;0612345678;a1;algemeen;30;60;0;opgelost;{note}\n\
         K-2;02-11-2026 10:05;0612345679;a1;algemeen;30;60;0;opgelost;extra;{note}\n\
         K-3;02-11-2026 10:10;0612345670;a2;zorg;20;90;1;opgelost;brief onduidelijk\n"
    );
    let export_path = calls.join("export.csv");
    std::fs::write(&export_path, export)?;
    std::fs::File::options()
        .write(true)
        .open(&export_path)?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;

    let toml = format!(
        "{}[email]\npoll_seconds = 1\n[[email.folders]]\nname = \"mail\"\npath = \"{}\"\n\
         [phone]\npoll_seconds = 1\n[[phone.inboxes]]\nname = \"calls\"\npath = \"{}\"\n",
        base_config(&run, &brokers, &db, 1),
        mail.display(),
        calls.display()
    );
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, toml)?;

    // The dry runs apply the same limits: what they print is what the workers publish.
    let mut expected = dry_run_ids(&bin, &config, &["email", &mail.to_string_lossy()])?;
    expected.extend(dry_run_ids(
        &bin,
        &config,
        &["phone", &export_path.to_string_lossy()],
    )?);
    assert_eq!(expected.len(), 4, "two mails and two calls: {expected:?}");

    run_setup(&bin, &config)?;
    let start =
        |worker: &str| start_worker(&config, worker, &dir.path().join(format!("{worker}.log")));
    let mut workers = Workers(vec![
        ("email".into(), start("email")?),
        ("phone".into(), start("phone")?),
        ("classifier".into(), start("classifier")?),
    ]);
    let store = signaal_store::Store::connect(&db).await?;
    wait_for_signals(&store, expected.len(), Duration::from_secs(90)).await?;
    workers.terminate()?;
    let logs = ["email", "phone", "classifier"]
        .iter()
        .map(|w| std::fs::read_to_string(dir.path().join(format!("{w}.log"))).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    assert_eq!(stored, expected, "every signal in the register:\n{logs}");

    // The long texts are cut, at most MAX_TEXT_BYTES, and say how long they were.
    let pool = sqlx::PgPool::connect(&db).await?;
    let rows = sqlx::query(
        "select source_id, length(text) as chars, octet_length(text) as bytes, \
         octet_length(coalesce(subject, '')) as subject_bytes, meta->'truncated' as truncated \
         from signals order by source_id",
    )
    .fetch_all(&pool)
    .await?;
    let mut cut = Vec::new();
    for row in &rows {
        let bytes: i32 = row.try_get("bytes")?;
        let subject_bytes: i32 = row.try_get("subject_bytes")?;
        assert!(bytes as usize <= MAX_TEXT_BYTES);
        assert!(subject_bytes as usize <= MAX_SUBJECT_BYTES);
        let truncated: Option<serde_json::Value> = row.try_get("truncated")?;
        if let Some(t) = truncated {
            cut.push((row.try_get::<String, _>("source_id")?, t));
        }
    }
    // The original sizes are those of the text as read (trailing white space dropped).
    assert_eq!(
        cut,
        vec![
            (
                format!("<long-{run}@x>"),
                serde_json::json!({"text": long_text.trim_end().len(), "subject": long_subject.trim_end().len()})
            ),
            (
                "K-1".to_string(),
                serde_json::json!({"text": note.trim_end().len()})
            ),
        ],
        "{logs}"
    );
    pool.close().await;

    // What could not be read at all is on the DLQ once, its beginning kept and its size told.
    let dlq = kcat_read(&brokers, &format!("{run}.dlq"))?;
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    let letter = |origin: &str| {
        dlq.iter()
            .find(|(_, headers, _)| headers.contains(origin))
            .map(|(_, headers, payload)| (headers.clone(), payload.len()))
            .ok_or(format!("no dead letter from {origin}"))
    };
    let (noise_headers, noise_len) = letter("a-noise.eml")?;
    assert_eq!(noise_len, MAX_DEAD_LETTER_BYTES);
    assert!(
        noise_headers.contains(&format!("signaal-dlq-truncated-from={}", noise.len())),
        "{noise_headers}"
    );
    let (row_headers, row_len) = letter("export.csv:3")?;
    assert_eq!(row_len, MAX_DEAD_LETTER_BYTES);
    assert!(
        row_headers.contains("signaal-dlq-truncated-from="),
        "{row_headers}"
    );
    // Every raw record fitted with room to spare for the classification.
    for (_, _, payload) in kcat_read(&brokers, &format!("{run}.raw"))? {
        assert!(payload.len() <= MAX_RAW_BYTES, "{} bytes", payload.len());
    }
    for (_, _, payload) in kcat_read(&brokers, &format!("{run}.classified"))? {
        assert!(payload.len() < 1_000_000, "{} bytes", payload.len());
    }

    store.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}
