//! One email message to one signal.

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use signaal_core::{Channel, Signal};

/// Messages larger than this go to the dead-letter topic instead of being parsed (the default of
/// [`Rules::max_bytes`]).
pub const MAX_MESSAGE_BYTES: usize = 25 * 1024 * 1024;

/// What an organisation tells the parser about its own mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Senders whose mail is not a customer signal (colleagues, the organisation's own systems):
    /// whole addresses (`noreply@gemeente.nl`) or domains (`@gemeente.nl`), case-insensitive.
    pub internal: Vec<String>,
    /// Larger messages go to the dead-letter topic unparsed.
    pub max_bytes: usize,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            internal: Vec::new(),
            max_bytes: MAX_MESSAGE_BYTES,
        }
    }
}

impl Rules {
    /// Whether `address` is one of the organisation's own.
    pub fn is_internal(&self, address: &str) -> bool {
        let address = address.trim().to_ascii_lowercase();
        self.internal.iter().any(|entry| {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.starts_with('@') {
                address.ends_with(&entry)
            } else {
                address == entry
            }
        })
    }

    /// The reason a message of `size` bytes is refused, if it is too large.
    pub fn too_large(&self, size: usize) -> Option<String> {
        (size > self.max_bytes).then(|| {
            format!(
                "message is {size} bytes, over the {}-byte limit",
                self.max_bytes
            )
        })
    }
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Signal(Box<Signal>),
    /// Not a customer signal (auto-reply, bounce, …): counted, not published.
    Skipped(&'static str),
    /// Cannot be read: goes to the dead-letter topic with this reason.
    Rejected(String),
}

/// [`parse_with`] under the default rules.
pub fn parse_message(bytes: &[u8], source: &str) -> Outcome {
    parse_with(bytes, source, &Rules::default())
}

/// Headers at least one of which every real message has.
const IDENTIFYING_HEADERS: [&str; 5] = ["From", "To", "Subject", "Date", "Message-ID"];

/// [`parse_received`] of a message whose arrival time is unknown.
pub fn parse_with(bytes: &[u8], source: &str, rules: &Rules) -> Outcome {
    parse_received(bytes, source, rules, None)
}

/// One message to one signal, or why not. The signal's time is the Date header's; without one,
/// `received` (when the mailbox got it); without that, now.
pub fn parse_received(
    bytes: &[u8],
    source: &str,
    rules: &Rules,
    received: Option<DateTime<Utc>>,
) -> Outcome {
    if let Some(reason) = rules.too_large(bytes.len()) {
        return Outcome::Rejected(reason);
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Outcome::Rejected("message is empty".into());
    }
    let Some(msg) = MessageParser::default().parse(bytes) else {
        return Outcome::Rejected("not an RFC 5322 message".into());
    };
    if !IDENTIFYING_HEADERS
        .iter()
        .any(|h| msg.header_raw(*h).is_some())
    {
        return Outcome::Rejected(
            "not an email message: no From, To, Subject, Date or Message-ID header".into(),
        );
    }
    if let Some(reason) = automatic(&msg) {
        return Outcome::Skipped(reason);
    }
    let from = msg.from().and_then(|a| a.first());
    if from
        .and_then(|a| a.address())
        .is_some_and(|a| rules.is_internal(a))
    {
        return Outcome::Skipped("internal_sender");
    }

    let source_id = match msg.message_id() {
        Some(id) if !id.trim().is_empty() => format!("<{}>", id.trim()),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(bytes))),
    };
    let occurred_at = msg
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single())
        .or(received)
        .unwrap_or_else(Utc::now);
    // HTML-only mail arrives with non-breaking spaces for layout; they are spaces to a reader.
    let body = msg
        .body_text(0)
        .map(|b| b.replace('\u{a0}', " "))
        .unwrap_or_default();
    let text = strip_quotes_and_signature(&body);
    let subject = msg.subject().map(str::to_string);
    if text.trim().is_empty() && subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Outcome::Rejected("message has neither text nor subject".into());
    }

    let references: Vec<String> = msg
        .references()
        .as_text_list()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .or_else(|| msg.references().as_text().map(|s| vec![s.to_string()]))
        .unwrap_or_default();
    let in_reply_to = msg.in_reply_to().as_text().map(str::to_string);
    let thread_id = references
        .first()
        .cloned()
        .or_else(|| in_reply_to.clone())
        .or_else(|| msg.message_id().map(str::to_string))
        .map(|id| format!("<{id}>"));

    let mut meta = Map::new();
    if let Some(name) = from.and_then(|a| a.name()) {
        meta.insert("author_name".into(), Value::from(name));
    }
    if let Some(to) = msg.to().and_then(|a| a.first()).and_then(|a| a.address()) {
        meta.insert("to".into(), Value::from(to));
    }
    if let Some(irt) = &in_reply_to {
        meta.insert("in_reply_to".into(), Value::from(format!("<{irt}>")));
    }
    let attachments: Vec<Value> = msg
        .attachments()
        .map(|part| {
            let ctype = part
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            json!({"name": part.attachment_name(), "type": ctype, "size": part.contents().len()})
        })
        .collect();
    if !attachments.is_empty() {
        meta.insert("attachments".into(), Value::Array(attachments));
    }

    let mut signal = Signal::new(Channel::Email, source, source_id, occurred_at, text);
    signal.author = from.and_then(|a| a.address()).map(|a| a.to_lowercase());
    signal.subject = subject;
    signal.thread_id = thread_id;
    signal.meta = meta;
    Outcome::Signal(Box::new(signal))
}

/// Auto-replies, bounces and bulk mail are not customer signals (RFC 3834, RFC 3464).
fn automatic(msg: &mail_parser::Message<'_>) -> Option<&'static str> {
    let header = |name: &str| msg.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("auto_submitted");
    }
    if header("X-Autoreply").is_some() || header("X-Autorespond").is_some() {
        return Some("auto_reply");
    }
    if header("Precedence")
        .is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"))
    {
        return Some("precedence");
    }
    if msg.is_content_type("multipart", "report")
        || header("Content-Type").is_some_and(|v| v.contains("delivery-status"))
    {
        return Some("delivery_status");
    }
    None
}

/// Drops quoted replies and a `-- ` signature: `>` lines, and everything from an attribution line
/// ("Op … schreef …:", "On … wrote:", also when the mailer wrapped it over two lines), an
/// "-----Original Message-----" separator or an Outlook header block ("Van:" / "From:" followed by
/// "Verzonden:" / "Sent:" / "Date:") on.
pub fn strip_quotes_and_signature(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t == "--" || *line == "-- " {
            break;
        }
        let lower = t.to_lowercase();
        let next = lines.get(i + 1).map(|l| l.trim().to_lowercase());
        let attribution = (lower.starts_with("op ") && lower.contains(" schreef"))
            || (lower.starts_with("on ") && lower.contains(" wrote"));
        let attribution_ends = lower.ends_with(':')
            || next
                .as_deref()
                .is_some_and(|n| !n.is_empty() && n.ends_with(':') && n.len() < 80);
        let outlook_block = (lower.starts_with("van:") || lower.starts_with("from:"))
            && next.as_deref().is_some_and(|n| {
                ["verzonden:", "sent:", "date:", "datum:"]
                    .iter()
                    .any(|h| n.starts_with(h))
            });
        if (attribution && attribution_ends)
            || outlook_block
            || lower.starts_with("-----original message")
            || lower.starts_with("-----oorspronkelijk bericht")
        {
            break;
        }
        if t.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    while kept.last().is_some_and(|l| l.is_empty()) {
        kept.pop();
    }
    let text = kept.join("\n");
    text.trim_start_matches('\n').to_string()
}

/// When a message lacks a Date header the file's time is the next best thing.
pub fn fallback_time(modified: Option<std::time::SystemTime>) -> DateTime<Utc> {
    modified.map(DateTime::<Utc>::from).unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(raw: &str) -> Signal {
        match parse_message(raw.as_bytes(), "inbox") {
            Outcome::Signal(s) => *s,
            other => panic!("expected a signal, got {other:?}"),
        }
    }

    const PLAIN: &str = "From: Jan Jansen <Jan@Example.nl>\r\nTo: klachten@gemeente.nl\r\n\
Subject: Brief over WOZ\r\nMessage-ID: <abc@example.nl>\r\nDate: Tue, 17 Nov 2026 09:30:00 +0100\r\n\
\r\nGeachte heer,\r\n\r\nDie brief snapt toch niemand.\r\n\r\nOp 16 nov. 2026 schreef Gemeente:\r\n> oude tekst\r\n";

    #[test]
    fn plain_message_becomes_a_signal() {
        let s = signal(PLAIN);
        assert_eq!(s.source_id, "<abc@example.nl>");
        assert_eq!(s.author.as_deref(), Some("jan@example.nl"));
        assert_eq!(s.subject.as_deref(), Some("Brief over WOZ"));
        assert_eq!(s.text, "Geachte heer,\n\nDie brief snapt toch niemand.");
        assert_eq!(s.occurred_at.to_rfc3339(), "2026-11-17T08:30:00+00:00");
        assert_eq!(s.thread_id.as_deref(), Some("<abc@example.nl>"));
        assert_eq!(
            s.meta.get("author_name").and_then(|v| v.as_str()),
            Some("Jan Jansen")
        );
    }

    #[test]
    fn without_a_date_header_the_arrival_time_dates_the_signal() -> Result<(), String> {
        let received = Utc.with_ymd_and_hms(2026, 11, 2, 8, 15, 0).single();
        let undated = "From: a@b.nl\r\nSubject: formulier\r\n\r\nfoutmelding\r\n";
        let at = |raw: &str| match parse_received(raw.as_bytes(), "t", &Rules::default(), received)
        {
            Outcome::Signal(s) => Ok(s.occurred_at.to_rfc3339()),
            other => Err(format!("{other:?}")),
        };
        assert_eq!(at(undated)?, "2026-11-02T08:15:00+00:00");
        // The Date header, when there is one, is the sender's time and wins.
        assert_eq!(at(PLAIN)?, "2026-11-17T08:30:00+00:00");
        Ok(())
    }

    #[test]
    fn replay_gives_the_same_id_and_missing_message_id_hashes_content() {
        assert_eq!(signal(PLAIN).id, signal(PLAIN).id);
        let no_id = "From: a@b.nl\r\nSubject: x\r\n\r\nhallo\r\n";
        let s = signal(no_id);
        assert!(s.source_id.starts_with("sha256:"), "{}", s.source_id);
        assert_eq!(s.id, signal(no_id).id);
    }

    #[test]
    fn replies_thread_on_references() {
        let raw = "From: a@b.nl\r\nMessage-ID: <r2@b.nl>\r\nIn-Reply-To: <r1@b.nl>\r\n\
References: <r0@b.nl> <r1@b.nl>\r\nSubject: Re: x\r\n\r\nNog steeds geen reactie\r\n";
        let s = signal(raw);
        assert_eq!(s.thread_id.as_deref(), Some("<r0@b.nl>"));
        assert_eq!(
            s.meta.get("in_reply_to").and_then(|v| v.as_str()),
            Some("<r1@b.nl>")
        );
    }

    #[test]
    fn automatic_mail_is_skipped_and_junk_is_rejected() {
        let ooo = "From: a@b.nl\r\nAuto-Submitted: auto-replied\r\nSubject: Afwezig\r\n\r\nIk ben afwezig\r\n";
        assert_eq!(
            parse_message(ooo.as_bytes(), "x"),
            Outcome::Skipped("auto_submitted")
        );
        let bulk = "From: a@b.nl\r\nPrecedence: bulk\r\nSubject: nieuws\r\n\r\nnieuws\r\n";
        assert_eq!(
            parse_message(bulk.as_bytes(), "x"),
            Outcome::Skipped("precedence")
        );
        assert!(
            matches!(parse_message(b"   \r\n", "x"), Outcome::Rejected(r) if r.contains("empty"))
        );
    }

    #[test]
    fn windows_1252_and_quoted_printable_decode() {
        let raw = b"From: a@b.nl\r\nSubject: =?windows-1252?Q?Caf=E9?=\r\nContent-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nIk ben zeer teleurgesteld =E9n boos=\r\n \x80 10\r\n";
        let Outcome::Signal(s) = parse_message(raw, "x") else {
            panic!("expected a signal")
        };
        assert_eq!(s.subject.as_deref(), Some("Café"));
        assert_eq!(s.text, "Ik ben zeer teleurgesteld én boos € 10");
    }
}
