//! One email message to one signal.

use chrono::{DateTime, TimeZone, Utc};
use std::borrow::Cow;

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
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
    /// Skip mailing-list and bulk mail (`Precedence: list`, `bulk` or `junk`, a `List-Id`
    /// header). Off by default: a complaints address run as a group or list would otherwise lose
    /// every customer's mail.
    pub skip_list_mail: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            internal: Vec::new(),
            max_bytes: MAX_MESSAGE_BYTES,
            skip_list_mail: false,
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

/// Set in a signal's `meta` when stripping quotes left no text and the whole body was kept
/// instead; counted by the worker as `signaal_email_quote_strip_fallback_total`.
pub const QUOTE_STRIP_FALLBACK: &str = "quote_strip_fallback";

/// One message to one signal, or why not. The signal's time is the Date header's; without one,
/// the date of the topmost `Received:` header (the last hop: when the mailbox got it); without
/// that, `received` (IMAP INTERNALDATE, the mbox `From ` line, the file's time); without that, now.
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
    let readable = headers_as_utf8(bytes);
    let Some(msg) = MessageParser::default().parse(&readable[..]) else {
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
    if let Some(reason) = automatic(&msg, rules) {
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
        .or_else(|| received_header_time(&msg))
        .or(received)
        .unwrap_or_else(Utc::now);
    // HTML-only mail arrives with non-breaking spaces for layout, French puts a narrow one before
    // the colon of "a écrit :"; they are spaces to a reader.
    let body = match msg.text_part(0).map(|part| &part.body) {
        Some(PartType::Html(html)) => {
            mail_parser::decoders::html::html_to_text(&html_without_attributes(html))
        }
        Some(PartType::Text(text)) => text.to_string(),
        _ => String::new(),
    }
    .replace(['\u{a0}', '\u{202f}'], " ");
    let (body, uuencoded) = take_uuencoded(&body);
    let mut text = strip_quotes_and_signature(&body);
    let mut fell_back = false;
    if text.is_empty() && !body.trim().is_empty() {
        // Everything looked quoted: the stripper was wrong, not the sender silent.
        text = tidy(body.lines());
        fell_back = true;
    }
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
    let mut attachments: Vec<Value> = msg
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
    attachments.extend(uuencoded.into_iter().map(|uu| {
        json!({"name": uu.name, "type": "application/octet-stream", "size": uu.size, "encoding": uu.encoding})
    }));
    if fell_back {
        meta.insert(QUOTE_STRIP_FALLBACK.into(), Value::Bool(true));
    }
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

/// Machine-made mail is not a customer signal: auto-replies (RFC 3834), bounces and other
/// delivery reports (RFC 3464, a null `Return-Path`, `MAILER-DAEMON`). List and bulk mail is a
/// person's words and is read, unless [`Rules::skip_list_mail`] says otherwise.
fn automatic(msg: &mail_parser::Message<'_>, rules: &Rules) -> Option<&'static str> {
    let header = |name: &str| msg.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if header("Auto-Submitted").is_some_and(|v| !v.starts_with("no")) {
        return Some("auto_submitted");
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence").is_some_and(|v| v == "auto_reply")
    {
        return Some("auto_reply");
    }
    if msg.is_content_type("multipart", "report")
        || header("Content-Type").is_some_and(|v| v.contains("delivery-status"))
    {
        return Some("delivery_status");
    }
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_ascii_lowercase);
    if header("Return-Path").is_some_and(|v| v == "<>")
        || from.is_some_and(|a| a.starts_with("mailer-daemon@"))
    {
        return Some("bounce");
    }
    if rules.skip_list_mail
        && (header("Precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list"))
            || header("List-Id").is_some())
    {
        return Some("list_mail");
    }
    None
}

/// The date of the topmost `Received:` header that has one (after its last `;`, RFC 5321
/// §4.4): the last hop, when the mailbox got the message.
fn received_header_time(msg: &mail_parser::Message<'_>) -> Option<DateTime<Utc>> {
    msg.headers_raw()
        .filter(|(name, _)| name.eq_ignore_ascii_case("Received"))
        .find_map(|(_, value)| date_time(value.rsplit_once(';')?.1))
}

/// An RFC 5322 date, read as mail-parser reads the Date header.
fn date_time(value: &str) -> Option<DateTime<Utc>> {
    let line = format!(
        "{}\r\n",
        value.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    match mail_parser::parsers::MessageStream::new(line.as_bytes()).parse_date() {
        HeaderValue::DateTime(d) if d.is_valid() => Utc.timestamp_opt(d.to_timestamp(), 0).single(),
        _ => None,
    }
}

/// The message with raw 8-bit header lines that are not UTF-8 read as Windows-1252 (a superset
/// of Latin-1), which is what mailers that send them mean; the body is left alone, its charset
/// says what it is.
fn headers_as_utf8(bytes: &[u8]) -> Cow<'_, [u8]> {
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .into_iter()
        .chain(bytes.windows(3).position(|w| w == b"\n\r\n"))
        .min()
        .map_or(bytes.len(), |i| i + 1);
    let head = &bytes[..end];
    if std::str::from_utf8(head).is_ok() {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 64);
    for line in head.split_inclusive(|b| *b == b'\n') {
        match std::str::from_utf8(line) {
            Ok(_) => out.extend_from_slice(line),
            Err(_) => out.extend_from_slice(windows_1252(line).as_bytes()),
        }
    }
    out.extend_from_slice(&bytes[end..]);
    Cow::Owned(out)
}

/// Windows-1252 to text; the five bytes it leaves undefined keep their C1 code points, as the
/// WHATWG encoding standard reads them.
pub fn windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž',
        '\u{8f}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}',
        'ž', 'Ÿ',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9f => HIGH[usize::from(b - 0x80)],
            _ => char::from(b),
        })
        .collect()
}

/// HTML with every tag reduced to its name, so that attribute values (`alt`, `title`, `href`,
/// a `>` inside one) never reach the text; block ends become line breaks so that an attribution
/// stands on its own line; a quoted reply (`<blockquote type="cite">`, Gmail's `gmail_quote`)
/// becomes a single `>` line, which the quote stripper treats like any quoted block.
pub fn html_without_attributes(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    // Depth inside quoted blockquotes (their content is dropped) and inside all blockquotes
    // within them (to find the matching end).
    let mut quoted_depth = 0usize;
    while let Some(lt) = rest.find('<') {
        if quoted_depth == 0 {
            out.push_str(&rest[..lt]);
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let next = rest[1..].chars().next();
        if matches!(next, Some('!' | '?')) {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
            continue;
        }
        if !next.is_some_and(|c| c.is_ascii_alphabetic() || c == '/') {
            if quoted_depth == 0 {
                out.push_str("&lt;");
            }
            rest = &rest[1..];
            continue;
        }
        // A tag: find its end outside quoted attribute values.
        let bytes = rest.as_bytes();
        let mut i = 1;
        let mut quote = None;
        let mut last = b'<';
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if (b == b'"' || b == b'\'') && last == b'=' => quote = Some(b),
                None if b == b'>' => break,
                None => {}
            }
            if !b.is_ascii_whitespace() {
                last = b;
            }
            i += 1;
        }
        let tag = &rest[..i.min(rest.len())];
        rest = rest.get(i + 1..).unwrap_or("");
        let closing = tag.starts_with("</");
        let name: String = tag
            .trim_start_matches(['<', '/'])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name == "blockquote" {
            let lower = tag.to_ascii_lowercase();
            let quotes_reply = lower.contains("cite")
                || lower.contains("quote\"")
                || lower.contains("gmail_quote");
            match (closing, quoted_depth) {
                (false, 0) if quotes_reply => {
                    quoted_depth = 1;
                    out.push_str("<br>&gt;<br>");
                    continue;
                }
                (false, d) if d > 0 => quoted_depth += 1,
                (true, d) if d > 0 => {
                    quoted_depth -= 1;
                    continue;
                }
                _ => {}
            }
        }
        if quoted_depth > 0 || name.is_empty() {
            continue;
        }
        out.push('<');
        if closing {
            out.push('/');
        }
        out.push_str(&name);
        out.push('>');
        let block_end = matches!(
            name.as_str(),
            "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "table"
        );
        if closing && block_end {
            out.push_str("<br>");
        }
    }
    if quoted_depth == 0 {
        out.push_str(rest);
    }
    out
}

/// An attachment sent the pre-MIME way, inside the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uuencoded {
    pub name: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// `uuencode` or `base64` (`begin-base64`).
    pub encoding: &'static str,
}

/// The text without its uuencoded attachments (`begin 644 name` … `end`, `begin-base64 644
/// name` … `====`), and the attachments. A `begin` line not followed by well-formed encoded
/// lines and their end is text and stays.
pub fn take_uuencoded(body: &str) -> (String, Vec<Uuencoded>) {
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match uu_block(&lines[i..]) {
            Some((consumed, uu)) => {
                found.push(uu);
                i += consumed;
            }
            None => {
                kept.push(lines[i]);
                i += 1;
            }
        }
    }
    if found.is_empty() {
        return (body.to_string(), found);
    }
    (kept.join("\n"), found)
}

/// A uuencoded block at the start of `lines`: how many lines it takes, and what it holds.
fn uu_block(lines: &[&str]) -> Option<(usize, Uuencoded)> {
    let first = lines.first()?.trim_end();
    let (base64, rest) = if let Some(r) = first.strip_prefix("begin-base64 ") {
        (true, r)
    } else {
        (false, first.strip_prefix("begin ")?)
    };
    let (mode, name) = rest.split_once(' ')?;
    if !(3..=4).contains(&mode.len()) || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut size = 0usize;
    for (n, line) in lines.iter().enumerate().skip(1) {
        let line = line.trim_end_matches('\r');
        if base64 {
            if line == "====" {
                return Some((n + 1, uu(name, size, "base64")));
            }
            let valid = !line.is_empty()
                && line
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
            if !valid {
                return None;
            }
            let pad = line.bytes().rev().take_while(|b| *b == b'=').count();
            size += (line.len() / 4 * 3).saturating_sub(pad);
        } else {
            if line == "end" {
                return Some((n + 1, uu(name, size, "uuencode")));
            }
            // Each line: a length character, then characters from ` ` to `` ` ``; some
            // encoders drop trailing spaces, so an empty line is a zero-length one.
            if !line.bytes().all(|b| (32..=96).contains(&b)) {
                return None;
            }
            let len = line
                .bytes()
                .next()
                .map_or(0, |b| usize::from((b - 32) & 63));
            // A line holds 4 characters per 3 bytes; a length the line cannot hold is not uu.
            if len.div_ceil(3) * 4 > line.len().saturating_sub(1) + 2 {
                return None;
            }
            size += len;
        }
    }
    None
}

fn uu(name: &str, size: usize, encoding: &'static str) -> Uuencoded {
    Uuencoded {
        name: name.to_string(),
        size,
        encoding,
    }
}

/// Drops quoted replies and a `-- ` signature, keeping every line the sender wrote: above the
/// quote, below it and between quoted passages. `>` lines go wherever they are; an attribution
/// line ("On … wrote:", "Op … schreef …:", "Le … a écrit :", "Am … schrieb …:", also when the
/// mailer wrapped it over two lines) goes with them. An attribution not followed by `>` lines
/// introduces an original that was pasted without marks, and so does an "-----Original
/// Message-----" separator or an Outlook header block ("Van:" / "From:" followed by "Verzonden:" /
/// "Sent:" / "Date:"): everything from there on is the original.
pub fn strip_quotes_and_signature(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if t == "--" || line == "-- " {
            break;
        }
        let lower = t.to_lowercase();
        let next = lines.get(i + 1).map(|l| l.trim().to_lowercase());
        if let Some(taken) = attribution(&lower, next.as_deref()) {
            let quote_follows = lines[i + taken..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim_start().starts_with('>'));
            if !quote_follows {
                break;
            }
            i += taken;
            continue;
        }
        let outlook_block = (lower.starts_with("van:") || lower.starts_with("from:"))
            && next.as_deref().is_some_and(|n| {
                ["verzonden:", "sent:", "date:", "datum:"]
                    .iter()
                    .any(|h| n.starts_with(h))
            });
        if outlook_block
            || lower.starts_with("-----original message")
            || lower.starts_with("-----oorspronkelijk bericht")
        {
            break;
        }
        if !t.starts_with('>') {
            kept.push(line);
        }
        i += 1;
    }
    tidy(kept.into_iter())
}

/// How many lines an attribution at this line takes (1, or 2 when wrapped), if it is one:
/// an opening word, the verb, and a colon at the end.
fn attribution(lower: &str, next: Option<&str>) -> Option<usize> {
    const FORMS: [(&str, &str); 6] = [
        ("on ", " wrote"),
        ("op ", " schreef"),
        ("le ", " a écrit"),
        ("am ", " schrieb"),
        ("el ", " escribió"),
        ("il ", " ha scritto"),
    ];
    let (_, verb) = FORMS.iter().find(|(open, _)| lower.starts_with(open))?;
    if lower.contains(verb) && lower.ends_with(':') {
        return Some(1);
    }
    // Wrapped: "Op … schreef Naam <" / "adres>:", or "Le …, Naam <adres>" / "a écrit :".
    let next = next.filter(|n| !n.is_empty() && n.len() < 80 && n.ends_with(':'))?;
    let joined = format!("{lower} {next}");
    joined.contains(verb).then_some(2)
}

/// Lines as one text: trailing spaces off, runs of blank lines (left where quotes were) made one,
/// no blank lines at either end.
fn tidy<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in lines {
        let line = line.trim_end();
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
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
    fn automatic_mail_is_skipped_and_empty_mail_is_rejected() {
        let ooo = "From: a@b.nl\r\nAuto-Submitted: auto-replied\r\nSubject: Afwezig\r\n\r\nIk ben afwezig\r\n";
        assert_eq!(
            parse_message(ooo.as_bytes(), "x"),
            Outcome::Skipped("auto_submitted")
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

    /// What is machine-made is skipped; list and bulk mail only with `skip_list_mail`.
    #[test]
    fn only_machine_made_mail_is_skipped_by_default() {
        let lists = Rules {
            skip_list_mail: true,
            ..Rules::default()
        };
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            // (extra headers, outcome by default, outcome with skip_list_mail)
            ("Precedence: bulk\r\n", None, Some("list_mail")),
            ("Precedence: list\r\n", None, Some("list_mail")),
            ("Precedence: junk\r\n", None, Some("list_mail")),
            (
                "List-Id: <klachten.lists.example>\r\n",
                None,
                Some("list_mail"),
            ),
            ("Auto-Submitted: no\r\n", None, None),
            (
                "Auto-Submitted: auto-generated\r\n",
                Some("auto_submitted"),
                Some("auto_submitted"),
            ),
            (
                "Precedence: auto_reply\r\n",
                Some("auto_reply"),
                Some("auto_reply"),
            ),
            (
                "X-Autoreply: yes\r\n",
                Some("auto_reply"),
                Some("auto_reply"),
            ),
            ("Return-Path: <>\r\n", Some("bounce"), Some("bounce")),
            ("Sender: x@y.nl\r\n", None, None),
        ];
        let outcome = |raw: &str, rules: &Rules| match parse_with(raw.as_bytes(), "x", rules) {
            Outcome::Skipped(r) => Some(r),
            Outcome::Signal(_) => None,
            Outcome::Rejected(r) => panic!("rejected: {r}"),
        };
        for (headers, default, with_lists) in cases {
            let raw =
                format!("From: a@b.nl\r\n{headers}Subject: nieuws\r\n\r\nhet loket was dicht\r\n");
            assert_eq!(outcome(&raw, &Rules::default()), *default, "{headers}");
            assert_eq!(
                outcome(&raw, &lists),
                *with_lists,
                "{headers} with skip_list_mail"
            );
        }
        let daemon =
            "From: MAILER-DAEMON@mx.example\r\nSubject: failure notice\r\n\r\nniet bezorgd\r\n";
        assert_eq!(outcome(daemon, &Rules::default()), Some("bounce"));
    }

    #[test]
    fn quotes_are_stripped_wherever_they_are() {
        let cases: &[(&str, &str)] = &[
            // Top-posted: the reply above the quote.
            ("Nog steeds niets.\n\nOp 16 nov. 2026 schreef Gemeente:\n> oud\n", "Nog steeds niets."),
            // Bottom-posted: the reply under the quote.
            ("Op 16 nov. 2026 schreef Gemeente:\n> oud\n> ouder\n\nNog steeds niets.\n", "Nog steeds niets."),
            // Interleaved.
            (
                "On Tue, 17 Nov 2026, X <x@y> wrote:\n> vraag 1\nantwoord 1\n\n> vraag 2\n\nantwoord 2\n",
                "antwoord 1\n\nantwoord 2",
            ),
            // Wrapped attributions, Dutch and French; French with its space before the colon.
            ("Op ma 23 nov. 2026 om 10:02 schreef Gemeente <\ngemeente@x.nl>:\n> oud\nNee.\n", "Nee."),
            ("Le lun. 16 nov. 2026 à 14:02, Gemeente <\ngemeente@x.nl> a écrit :\n> vieux\nNon.\n", "Non."),
            ("Merci.\nLe 9 nov. 2026 à 08:00, Claire a écrit :\n> vieux\n", "Merci."),
            ("Danke.\n\nAm 9. Nov. 2026 um 08:00 schrieb Amt <amt@x.de>:\n> alt\n", "Danke."),
            // An attribution over an original pasted without `>`: everything below is the original.
            ("Nee.\n\nOn Mon, 9 Nov 2026, X wrote:\n\noud bericht\nnog meer\n", "Nee."),
            // Outlook: the original follows unquoted.
            ("Zie onder.\n\nVan: Gemeente\nVerzonden: maandag\nOnderwerp: x\n\noud\n", "Zie onder."),
            // A signature ends the text; a quoted one does not.
            ("> -- \n> oud\nMijn antwoord.\n-- \nJan\n", "Mijn antwoord."),
            // A sentence that starts like an attribution but has no verb and colon is text.
            ("On Monday I called twice.\nNobody answered.\n", "On Monday I called twice.\nNobody answered."),
        ];
        for (body, want) in cases {
            assert_eq!(strip_quotes_and_signature(body), *want, "{body:?}");
        }
    }

    #[test]
    fn uuencoded_blocks_leave_the_text() {
        type Found<'a> = &'a [(&'a str, usize, &'a str)];
        let cases: &[(&str, &str, Found)] = &[
            (
                "Zie bijlage.\nbegin 644 a.txt\n#86)C\n`\nend\nGroet",
                "Zie bijlage.\nGroet",
                &[("a.txt", 3, "uuencode")],
            ),
            (
                "Foto:\nbegin-base64 644 foto.png\naGFsbG8=\n====\n",
                "Foto:",
                &[("foto.png", 5, "base64")],
            ),
            // Not uuencode: no `end`, lower-case text, no mode.
            ("begin 644 a.txt\n#86)C\n", "begin 644 a.txt\n#86)C\n", &[]),
            (
                "begin 644 brief\nik begin opnieuw\nend",
                "begin 644 brief\nik begin opnieuw\nend",
                &[],
            ),
            ("begin here\nend", "begin here\nend", &[]),
        ];
        for (body, text, found) in cases {
            let (got, uu) = take_uuencoded(body);
            assert_eq!(got, *text, "{body:?}");
            let uu: Vec<(&str, usize, &str)> = uu
                .iter()
                .map(|u| (u.name.as_str(), u.size, u.encoding))
                .collect();
            assert_eq!(uu, *found, "{body:?}");
        }
    }

    #[test]
    fn html_tags_lose_their_attributes() {
        let cases: &[(&str, &str)] = &[
            ("<img alt=\"a > b\" src=x>tekst", "<img>tekst"),
            ("<a href='x?a=1>2' title=\"t\">link</a>", "<a>link</a>"),
            ("<p class=x>een</p><div>twee</div>", "<p>een</p><div>twee</div><br>"),
            ("a < b en c > d", "a &lt; b en c > d"),
            ("<!-- <p>weg</p> -->blijft<!DOCTYPE html>", "blijft"),
            (
                "Op x schreef y:<blockquote type=\"cite\">oud<blockquote>ouder</blockquote>oud</blockquote>nieuw",
                "Op x schreef y:<br>&gt;<br>nieuw",
            ),
            ("<blockquote style=\"margin:0 0 0 40px\">ingesprongen</blockquote>", "<blockquote>ingesprongen</blockquote><br>"),
            ("<img alt=\"nooit gesloten", "<img>"),
        ];
        for (html, want) in cases {
            assert_eq!(html_without_attributes(html), *want, "{html:?}");
        }
    }

    /// An HTML reply written under the quoted message keeps the words under the quote.
    #[test]
    fn html_replies_below_a_quote_keep_the_reply() {
        let raw =
            "From: a@b.nl\r\nSubject: Re: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<div>Op ma 23 nov. 2026 om 10:02 schreef Gemeente &lt;g@x.nl&gt;:</div>\
<blockquote type=\"cite\"><div>oud bericht</div></blockquote>\
<div>Nog steeds geen <b title=\"a > b\">antwoord</b>.</div>\r\n";
        let s = signal(raw);
        assert_eq!(s.text, "Nog steeds geen antwoord.");
    }

    #[test]
    fn raw_8bit_headers_are_windows_1252_and_utf8_stays() {
        let cases: &[(&[u8], &str)] = &[
            (b"Subject: caf\xe9 \x80 5\r\n\r\nx\r\n", "café € 5"),
            ("Subject: café\r\n\r\nx\r\n".as_bytes(), "café"),
            (b"Subject: caf\xe9\n\nbody \xe9\n", "café"),
        ];
        for (raw, want) in cases {
            let Outcome::Signal(s) = parse_message(raw, "x") else {
                panic!("{raw:?}: no signal");
            };
            assert_eq!(s.subject.as_deref(), Some(*want), "{raw:?}");
        }
    }

    #[test]
    fn received_header_dates() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "from a by b; Tue, 17 Nov 2026 09:31:12 +0100 (CET)",
                Some("2026-11-17T08:31:12+00:00"),
            ),
            (
                "from a by b\r\n\tfor <x@y>;\r\n\tTue, 17 Nov 2026 09:31:12 +0000",
                Some("2026-11-17T09:31:12+00:00"),
            ),
            (
                "from a (x; y) by b; 17 Nov 2026 09:31:12 GMT",
                Some("2026-11-17T09:31:12+00:00"),
            ),
            ("from a by b", None),
            ("from a by b; gisteren", None),
        ];
        for (value, want) in cases {
            let raw = format!("Received: {value}\r\nSubject: x\r\n\r\ny\r\n");
            let Outcome::Signal(s) = parse_received(raw.as_bytes(), "x", &Rules::default(), None)
            else {
                panic!("{value}: no signal");
            };
            let got = s.occurred_at.to_rfc3339();
            match want {
                Some(w) => assert_eq!(got, *w, "{value}"),
                None => assert!(
                    s.occurred_at > Utc::now() - chrono::Duration::minutes(1),
                    "{value}: {got}"
                ),
            }
        }
    }
}
