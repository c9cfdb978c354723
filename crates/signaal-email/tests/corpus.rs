//! Mail as it really arrives: every message under `tests/corpus/` goes through the parser and must
//! come out as sensible text, or be skipped or dead-lettered with a clear reason. Never a panic.

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use signaal_email::{parse_message, parse_received, parse_with, Outcome, Rules};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// What one corpus message must become.
enum Want {
    /// A signal whose text contains every `has`, none of `lacks`, with this subject.
    Signal {
        subject: &'static str,
        has: &'static [&'static str],
        lacks: &'static [&'static str],
    },
    Skipped(&'static str),
    /// Dead-lettered with a reason containing this.
    Rejected(&'static str),
}

const CASES: &[(&str, Want)] = &[
    (
        "latin1-quoted-printable.eml",
        Want::Signal {
            subject: "Café op de hoek: geen antwoord",
            has: &["voor het café, en nog steeds geen antwoord", "écht niet"],
            lacks: &["=E9", "=\n"],
        },
    ),
    (
        "windows-1252-base64.eml",
        Want::Signal {
            subject: "Aanslag onjuist",
            has: &["€ 1.240", "“dat ligt aan u”"],
            lacks: &[],
        },
    ),
    (
        "html-only.eml",
        Want::Signal {
            subject: "Website werkt niet",
            has: &[
                "op \"verzenden\" klik. Ik heb het al vijf keer geprobeerd.",
                "Beste meneer/mevrouw,",
            ],
            lacks: &["<", "color", "tracking", "&nbsp;", "&quot;", "\u{a0}"],
        },
    ),
    (
        "alternative.eml",
        Want::Signal {
            subject: "Afspraak niet nagekomen",
            has: &["PLAIN-VERSION"],
            lacks: &["HTML-VERSION", "<p>"],
        },
    ),
    (
        "nested-multipart.eml",
        Want::Signal {
            subject: "Bezwaar met bijlage",
            has: &["Hierbij mijn bezwaar tegen de beschikking."],
            lacks: &["%PDF", "<p>", "multi-part message"],
        },
    ),
    (
        "broken-boundary.eml",
        Want::Signal {
            subject: "Nog steeds niets gehoord",
            has: &["Ik wacht al zes weken op een reactie"],
            lacks: &["--b1"],
        },
    ),
    (
        "missing-headers.eml",
        Want::Signal {
            subject: "klacht",
            has: &["Waarom moet ik mijn verhaal steeds opnieuw vertellen?"],
            lacks: &[],
        },
    ),
    (
        "invalid-utf8.eml",
        Want::Signal {
            subject: "Ongeldige tekens",
            has: &["De brief was onleesbar", "en ik begrijp er niets van."],
            lacks: &[],
        },
    ),
    (
        "bare-8bit-lf.eml",
        Want::Signal {
            subject: "Compliment",
            has: &["Zó behulpzaam!"],
            lacks: &[],
        },
    ),
    (
        "outlook-reply.eml",
        Want::Signal {
            subject: "RE: Uw melding 2026-4411",
            has: &["derde keer dat ik word doorverwezen"],
            lacks: &["QUOTED-ORIGINAL", "Verzonden:", "Van:"],
        },
    ),
    (
        "gmail-wrapped-attribution.eml",
        Want::Signal {
            subject: "Re: Uw aanvraag",
            has: &["Ik heb nog steeds geen uitkering ontvangen."],
            lacks: &["QUOTED-ORIGINAL", "schreef", "klantcontact@gemeente.nl>:"],
        },
    ),
    (
        "reply-and-signature.eml",
        Want::Signal {
            subject: "Re: Parking permit",
            has: &["Nobody has answered my question"],
            lacks: &["SIGNATURE-LINE", "QUOTED-ORIGINAL", "wrote:"],
        },
    ),
    (
        "subject-only.eml",
        Want::Signal {
            subject: "Waarom krijg ik twee aanslagen voor hetzelfde jaar?",
            has: &[],
            lacks: &[],
        },
    ),
    (
        "unknown-charset.eml",
        Want::Signal {
            subject: "Vreemde tekenset",
            has: &["Het loket was dicht"],
            lacks: &[],
        },
    ),
    (
        "reply-below-quote.eml",
        Want::Signal {
            subject: "Re: Uw melding over de lantaarnpaal",
            has: &["Dat is nu negen werkdagen geleden en de paal is nog steeds kapot.\nHet is donker op de stoep en mijn moeder is er gisteren gestruikeld."],
            lacks: &["QUOTED-ORIGINAL", "schreef", "SIGNATURE-LINE", "Met vriendelijke groet"],
        },
    ),
    (
        "interleaved-reply.eml",
        Want::Signal {
            subject: "Re: Your question about the parking permit",
            has: &["Yes, three times, and every time the form said \"session expired\".\n\nNo, nothing ever arrived."],
            lacks: &["QUOTED-ORIGINAL", "wrote:"],
        },
    ),
    (
        "only-quoted.eml",
        Want::Signal {
            subject: "Fwd: aanslag",
            has: &["> Ik heb twee aanslagen voor hetzelfde jaar gekregen.\n> Welke moet ik betalen?"],
            lacks: &[],
        },
    ),
    (
        "undated-received.eml",
        Want::Signal {
            subject: "Geen datum",
            has: &["ik wacht al drie weken op antwoord"],
            lacks: &[],
        },
    ),
    (
        "latin1-raw-headers.eml",
        Want::Signal {
            subject: "Klacht over café terras – geluidsoverlast",
            has: &["Het terras van het café op de hoek"],
            lacks: &["\u{fffd}"],
        },
    ),
    (
        "uuencoded-attachment.eml",
        Want::Signal {
            subject: "Foto van de kapotte stoeptegel",
            has: &["De stoeptegel voor nummer 14 ligt al maanden los, zie de foto.\n\nGroet, Kees"],
            lacks: &["begin 644", "M  $\"", "\nend", "`"],
        },
    ),
    (
        "html-attributes.eml",
        Want::Signal {
            subject: "Re: Afvalpas",
            has: &["Mijn afvalpas werkt al twee weken niet bij de container.", "de site"],
            lacks: &[
                "ALT-TEXT", "bakkerij", "width", "TITLE-TEXT", "hier'", "HREF-TITLE",
                "naar de site", "x=2", "QUOTED-ORIGINAL", "schreef", ">",
            ],
        },
    ),
    (
        "french-reply.eml",
        Want::Signal {
            subject: "Re: Votre demande",
            has: &["Je n’ai toujours reçu aucune réponse à ma demande de remboursement."],
            lacks: &["QUOTED-ORIGINAL", "a écrit", "Le lun.", "klantcontact@gemeente.nl"],
        },
    ),
    (
        "mailing-list.eml",
        Want::Signal {
            subject: "Wachttijd telefoon",
            has: &["45 minuten in de wacht"],
            lacks: &[],
        },
    ),
    ("bounce-plain.eml", Want::Skipped("bounce")),
    ("bounce-dsn.eml", Want::Skipped("delivery_status")),
    ("out-of-office.eml", Want::Skipped("auto_submitted")),
    ("not-a-message.eml", Want::Rejected("not an email message")),
];

#[test]
fn every_corpus_message_parses_to_text_or_a_reason() -> Result {
    let mut listed: Vec<&str> = CASES.iter().map(|(f, _)| *f).collect();
    listed.sort_unstable();
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus())?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    on_disk.sort();
    assert_eq!(listed, on_disk, "every corpus file has an expectation");

    for (file, want) in CASES {
        let bytes = std::fs::read(corpus().join(file))?;
        let got = parse_message(&bytes, "corpus");
        match (want, &got) {
            (
                Want::Signal {
                    subject,
                    has,
                    lacks,
                },
                Outcome::Signal(s),
            ) => {
                assert_eq!(s.subject.as_deref(), Some(*subject), "{file}");
                for h in *has {
                    assert!(
                        s.text.contains(h),
                        "{file}: `{h}` missing from {:?}",
                        s.text
                    );
                }
                for l in *lacks {
                    assert!(!s.text.contains(l), "{file}: `{l}` left in {:?}", s.text);
                }
                // Whatever went in, the text that goes on is valid, trimmed UTF-8.
                assert_eq!(s.text.trim(), s.text, "{file}");
            }
            (Want::Skipped(reason), Outcome::Skipped(r)) => assert_eq!(reason, r, "{file}"),
            (Want::Rejected(reason), Outcome::Rejected(r)) => {
                assert!(r.contains(reason), "{file}: reason {r:?}")
            }
            (_, got) => panic!("{file}: unexpected {got:?}"),
        }
    }
    Ok(())
}

#[test]
fn attachments_are_metadata_only() -> Result {
    let bytes = std::fs::read(corpus().join("nested-multipart.eml"))?;
    let Outcome::Signal(s) = parse_message(&bytes, "corpus") else {
        return Err("nested-multipart.eml is not a signal".into());
    };
    let attachments = s.meta["attachments"].as_array().ok_or("no attachments")?;
    let pdf = attachments
        .iter()
        .find(|a| a["type"] == "application/pdf")
        .ok_or("no pdf")?;
    // RFC 2231 encoded name, decoded; size of the decoded content; no content.
    assert_eq!(pdf["name"], "bezwaar beschikking €.pdf");
    assert_eq!(pdf["size"], 9 + 256 * 8);
    assert!(!s.text.contains("PDF"));
    Ok(())
}

#[test]
fn missing_message_id_gives_a_stable_content_hash() -> Result {
    let bytes = std::fs::read(corpus().join("missing-headers.eml"))?;
    let (Outcome::Signal(a), Outcome::Signal(b)) =
        (parse_message(&bytes, "x"), parse_message(&bytes, "x"))
    else {
        return Err("missing-headers.eml is not a signal".into());
    };
    assert!(a.source_id.starts_with("sha256:"), "{}", a.source_id);
    assert_eq!(a.id, b.id, "a replay gets the same id");
    assert_eq!(a.author, None);
    Ok(())
}

/// A message with a large attachment: over the limit it is dead-lettered with the size, under it
/// the attachment is metadata and the text is read.
#[test]
fn huge_attachments() -> Result {
    let mut raw = String::from(
        "From: a@voorbeeld.nl\r\nSubject: Foto's van de lekkage\r\nMessage-ID: <huge@voorbeeld.nl>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"h\"\r\n\r\n--h\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nZie de foto's: het lekt al drie weken.\r\n--h\r\n\
         Content-Type: image/jpeg; name=\"lek.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    );
    let line =
        "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsN\r\n";
    while raw.len() < 12 * 1024 * 1024 {
        raw.push_str(line);
    }
    raw.push_str("--h--\r\n");

    let small_limit = Rules {
        max_bytes: 10 * 1024 * 1024,
        ..Rules::default()
    };
    match parse_with(raw.as_bytes(), "x", &small_limit) {
        Outcome::Rejected(r) => assert!(
            r.contains(&format!("{} bytes", raw.len())) && r.contains("10485760-byte limit"),
            "{r}"
        ),
        other => return Err(format!("want a rejection, got {other:?}").into()),
    }
    let Outcome::Signal(s) = parse_with(raw.as_bytes(), "x", &Rules::default()) else {
        return Err("a 12 MB message is under the default limit".into());
    };
    assert_eq!(s.text, "Zie de foto's: het lekt al drie weken.");
    let size = s.meta["attachments"][0]["size"].as_u64().ok_or("no size")?;
    assert!(size > 8 * 1024 * 1024, "decoded size {size}");
    assert_eq!(s.meta["attachments"][0]["name"], "lek.jpg");
    Ok(())
}

#[test]
fn internal_senders_are_skipped() -> Result {
    let rules = Rules {
        internal: vec!["@gemeente.nl".into(), "noreply@belastingdienst.nl".into()],
        ..Rules::default()
    };
    let from = |addr: &str| {
        format!(
            "From: {addr}\r\nSubject: doorgestuurd\r\nMessage-ID: <{addr}>\r\n\r\nzie onder\r\n"
        )
    };
    for internal in ["Collega@Gemeente.nl", "noreply@belastingdienst.nl"] {
        assert_eq!(
            parse_with(from(internal).as_bytes(), "x", &rules),
            Outcome::Skipped("internal_sender"),
            "{internal}"
        );
    }
    for customer in [
        "klant@voorbeeld.nl",
        "x@nietgemeente.nl",
        "info@belastingdienst.nl",
    ] {
        assert!(
            matches!(
                parse_with(from(customer).as_bytes(), "x", &rules),
                Outcome::Signal(_)
            ),
            "{customer}"
        );
    }
    Ok(())
}

/// Damaged mail never panics the parser: every corpus message cut short at many points and with
/// bytes overwritten (boundary, header and encoding characters, NUL, invalid UTF-8) still gives a
/// signal, a skip or a reason.
#[test]
fn damaged_corpus_messages_never_panic() -> Result {
    const NASTY: &[u8] = b"\x00\r\n-=:;\"<>?\xff\xc3 ";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        // xorshift64: deterministic, so a failure names a reproducible variant.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut variants = 0;
    for entry in std::fs::read_dir(corpus())? {
        let path = entry?.path();
        let original = std::fs::read(&path)?;
        let n = original.len().max(1);
        for cut in 0..32 {
            let bytes = &original[..n * cut / 32];
            let label = format!("{} cut at {}", path.display(), bytes.len());
            check_no_panic(bytes, &label)?;
            variants += 1;
        }
        for round in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..=(next() % 8) {
                let at = (next() as usize) % n.min(bytes.len()).max(1);
                let b = NASTY[(next() as usize) % NASTY.len()];
                if let Some(slot) = bytes.get_mut(at) {
                    *slot = b;
                }
            }
            check_no_panic(&bytes, &format!("{} variant {round}", path.display()))?;
            variants += 1;
        }
    }
    assert!(variants > 3000, "{variants}");
    Ok(())
}

fn check_no_panic(bytes: &[u8], label: &str) -> Result {
    let outcome = std::panic::catch_unwind(|| parse_message(bytes, "damaged"))
        .map_err(|_| format!("the parser panicked on {label}"))?;
    if let Outcome::Rejected(reason) = &outcome {
        assert!(!reason.is_empty(), "{label}: a rejection without a reason");
    }
    Ok(())
}

fn corpus_signal(file: &str, rules: &Rules) -> Result<signaal_core::Signal> {
    let bytes = std::fs::read(corpus().join(file))?;
    match parse_with(&bytes, "corpus", rules) {
        Outcome::Signal(s) => Ok(*s),
        other => Err(format!("{file}: want a signal, got {other:?}").into()),
    }
}

/// Stripping that leaves nothing keeps the whole body and says so, for the worker's count;
/// stripping that leaves the sender's words does not.
#[test]
fn a_body_that_is_all_quote_is_kept_whole_and_flagged() -> Result {
    let s = corpus_signal("only-quoted.eml", &Rules::default())?;
    assert_eq!(
        s.meta.get("quote_strip_fallback"),
        Some(&serde_json::Value::Bool(true))
    );
    let s = corpus_signal("reply-below-quote.eml", &Rules::default())?;
    assert_eq!(s.meta.get("quote_strip_fallback"), None);
    Ok(())
}

/// Without a Date header the topmost Received header (the last hop) dates the message, before
/// the file's time.
#[test]
fn an_undated_message_takes_its_time_from_the_topmost_received_header() -> Result {
    let bytes = std::fs::read(corpus().join("undated-received.eml"))?;
    let file_time = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).single();
    let Outcome::Signal(s) = parse_received(&bytes, "corpus", &Rules::default(), file_time) else {
        return Err("undated-received.eml is not a signal".into());
    };
    assert_eq!(s.occurred_at.to_rfc3339(), "2026-11-17T08:31:12+00:00");
    Ok(())
}

/// Raw 8-bit header values are read as Windows-1252, also in the sender's name.
#[test]
fn raw_latin1_headers_are_read_as_windows_1252() -> Result {
    let s = corpus_signal("latin1-raw-headers.eml", &Rules::default())?;
    assert_eq!(s.meta["author_name"], "René Dubois");
    assert_eq!(s.author.as_deref(), Some("rene.dubois@voorbeeld.nl"));
    Ok(())
}

/// A uuencoded attachment is metadata, like a MIME one.
#[test]
fn uuencoded_attachments_are_metadata_only() -> Result {
    let s = corpus_signal("uuencoded-attachment.eml", &Rules::default())?;
    let attachments = s.meta["attachments"].as_array().ok_or("no attachments")?;
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0]["name"], "stoeptegel.jpg");
    assert_eq!(attachments[0]["size"], 512);
    assert_eq!(attachments[0]["encoding"], "uuencode");
    Ok(())
}

/// List and bulk mail is read by default; `skip_list_mail` skips it. Machine-made mail is
/// skipped either way.
#[test]
fn list_mail_is_read_unless_the_switch_says_skip() -> Result {
    let skip_lists = Rules {
        skip_list_mail: true,
        ..Rules::default()
    };
    corpus_signal("mailing-list.eml", &Rules::default())?;
    let bytes = std::fs::read(corpus().join("mailing-list.eml"))?;
    assert_eq!(
        parse_with(&bytes, "corpus", &skip_lists),
        Outcome::Skipped("list_mail")
    );
    for (file, reason) in [
        ("out-of-office.eml", "auto_submitted"),
        ("bounce-dsn.eml", "delivery_status"),
        ("bounce-plain.eml", "bounce"),
    ] {
        let bytes = std::fs::read(corpus().join(file))?;
        for rules in [&Rules::default(), &skip_lists] {
            assert_eq!(
                parse_with(&bytes, "corpus", rules),
                Outcome::Skipped(reason),
                "{file}"
            );
        }
    }
    Ok(())
}
