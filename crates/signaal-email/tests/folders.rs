//! Mail on disk as people keep it: an mbox without extension, messages saved under any name,
//! Maildir++ subfolders. What a file holds decides how it is read, not its name; a file given by
//! itself that is not mail is refused with a reason.

use std::path::{Path, PathBuf};

use signaal_email::worker::read_path;
use signaal_email::Rules;
use signaal_source::Batch;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn drop_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/drop")
}

fn subjects(batch: &Batch) -> Vec<String> {
    let mut s: Vec<String> = batch
        .signals
        .iter()
        .map(|s| s.subject.clone().unwrap_or_default())
        .collect();
    s.sort();
    s
}

#[test]
fn a_folder_is_read_by_content_not_by_names() -> Result {
    // The Maildir also has `.Sent` and `.Verzonden items`: the organisation's own replies are
    // not customers' mail, and are not read.
    let batch = read_path("drop", &drop_folder(), &Rules::default())?;
    assert_eq!(
        subjects(&batch),
        [
            "Derde bericht",
            "In de inbox",
            "In een Maildir++ submap",
            "Nog een keer",
            "Opgeslagen als tekstbestand",
            "Vuilnis niet opgehaald",
        ]
    );
    // `notities.txt`, `dovecot-uidlist` and the empty `maildirfolder` marker are not mail and
    // are passed over, not dead-lettered.
    assert!(batch.dead_letters.is_empty(), "{:?}", batch.dead_letters);
    assert!(batch.skipped.is_empty());
    let keys: Vec<&str> = batch.checkpoints.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.iter().any(|k| k.ends_with("/archief#2")), "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.ends_with("/Maildir/.Klachten/new/1763380000.M2P202.mx1.voorbeeld")),
        "{keys:?}"
    );
    Ok(())
}

/// A body line starting with `From ` that the writer did not quote, mboxrd quoting, and an
/// mboxcl2 message whose Content-Length covers a forwarded `From ` line and header.
#[test]
fn from_lines_in_bodies_do_not_split_mbox_messages() -> Result {
    let dir = tempfile::tempdir()?;
    // Named `.mbox` too: the old reader cut this file into five messages at its `From ` lines.
    let path = dir.path().join("archief.mbox");
    std::fs::copy(drop_folder().join("archief"), &path)?;
    let batch = read_path("mbox", &path, &Rules::default())?;
    assert_eq!(batch.signals.len(), 3, "{:#?}", batch.signals);
    assert!(batch.dead_letters.is_empty(), "{:?}", batch.dead_letters);
    // `>>From ` was the sender's `>From `: a quoted line, which the text leaves out.
    assert_eq!(
        batch.signals[0].text,
        "Het vuilnis is weer niet opgehaald.\n\nFrom what I hear the whole street has the same problem.\nFrom now on I will call every week."
    );
    let found = signaal_email::folder::scan(&path, &|_| false, 1, usize::MAX)?;
    let raw = String::from_utf8_lossy(&found[0].bytes);
    assert!(
        raw.ends_with(
            "\nFrom now on I will call every week.\n>From the newsletter: quoted twice.\n"
        ),
        "{raw}"
    );
    let second = &batch.signals[1];
    assert_eq!(second.subject.as_deref(), Some("Nog een keer"));
    assert!(
        second.text.contains(
            "Hieronder de mail die ik eerder stuurde:\nFrom klant@voorbeeld.nl Mon Nov  2 08:00:00 2026\nSubject: eerste poging\n\nGraag een nieuwe afvalpas."
        ),
        "{:?}",
        second.text
    );
    // No Date header, no Received header: the `From ` line dates the message.
    assert_eq!(
        batch.signals[2].occurred_at.to_rfc3339(),
        "2026-11-17T11:00:00+00:00"
    );
    Ok(())
}

#[test]
fn files_given_by_themselves_are_sniffed_and_non_mail_is_refused() -> Result {
    let one = |name: &str| read_path("x", &drop_folder().join(name), &Rules::default());
    assert_eq!(
        subjects(&one("losse-mail.txt")?),
        ["Opgeslagen als tekstbestand"]
    );
    assert_eq!(one("archief")?.signals.len(), 3);
    let error = one("notities.txt")
        .err()
        .ok_or("notities.txt was accepted")?;
    let message = error.to_string();
    assert!(
        message.contains("notities.txt")
            && message.contains("neither an email message")
            && message.contains("nor an mbox file"),
        "{message}"
    );
    // An empty file is an mbox spool with nothing in it yet: no messages, no error.
    let dir = tempfile::tempdir()?;
    let spool = dir.path().join("klachten");
    std::fs::write(&spool, "")?;
    let batch = read_path("x", &spool, &Rules::default())?;
    assert!(batch.signals.is_empty() && batch.dead_letters.is_empty());
    Ok(())
}

/// What sniffing says of the corpus: every message is a message, the one file that is not mail
/// is neither.
#[test]
fn every_corpus_message_sniffs_as_a_message() -> Result {
    use signaal_email::folder::{sniff, Shape};
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for entry in std::fs::read_dir(&corpus)? {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        let want = if path.ends_with("not-a-message.eml") {
            None
        } else {
            Some(Shape::Message)
        };
        assert_eq!(sniff(&bytes), want, "{}", path.display());
    }
    Ok(())
}
