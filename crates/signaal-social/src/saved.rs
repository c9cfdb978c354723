//! Saved files for `signaal import`: X API v2 responses, Graph API feed and comments pages, and
//! page webhook bodies, each read into a [`Batch`] (pure: the bytes in, no I/O).
//!
//! A file that is not what its reader expects — an error body, an API v1.1 response, a webhook
//! body given as a feed, `[]` — is an error that says what the file looks like, never "0
//! signals". Inside a file that is the right kind, an unreadable line or item is a dead letter
//! with its reason and the rest is read.
//!
//! X files are one response (pretty-printed or not), or JSONL: one response per line, as
//! tools save search and stream output, or the filtered stream's own lines
//! (`{"data":{…},"includes":{…},"matching_rules":[…]}`). A post seen on several lines is read
//! once (the rest are counted as `duplicate`).

use std::collections::HashSet;

use serde_json::Value;
use signaal_source::{Batch, Skip};

use crate::{dead_letter, facebook, rejected_items, webhook, x, ParseError};

/// An X API v2 file: one response, or one response or stream line per line.
///
/// `origin` names the file in dead letters (`origin:line`).
pub fn read_x(
    origin: &str,
    body: &[u8],
    source: &str,
    own_user_ids: &[String],
) -> Result<Batch, ParseError> {
    let whole = serde_json::from_slice::<Value>(body);
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty());
    let first_is_json = lines
        .next()
        .is_some_and(|(_, l)| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok());
    let value = match whole {
        Ok(value) => value,
        // One JSON value per line.
        Err(_) if first_is_json => return read_x_lines(origin, body, source, own_user_ids),
        Err(e) => return Err(e.into()),
    };
    let resp = x::from_value(value)?;
    let (signals, skipped) = x::read(&resp, source, own_user_ids);
    Ok(Batch {
        signals,
        skipped,
        ..Batch::default()
    })
}

fn read_x_lines(
    origin: &str,
    body: &[u8],
    source: &str,
    own_user_ids: &[String],
) -> Result<Batch, ParseError> {
    let mut batch = Batch::default();
    let mut seen = HashSet::new();
    let mut pages = 0usize;
    let mut first_problem: Option<String> = None;
    for (n, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let at = format!("{origin}:{}", n + 1);
        let value = match serde_json::from_slice::<Value>(line) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("line {} is not JSON: {e}", n + 1);
                first_problem.get_or_insert_with(|| reason.clone());
                batch
                    .dead_letters
                    .push(dead_letter(at, reason, line.to_vec()));
                continue;
            }
        };
        // The stream sends error objects between posts (operational disconnects, rule
        // problems); a search save may hold a page that was only errors.
        let only_errors = value.as_object().is_some_and(|o| {
            o.contains_key("errors") && !o.contains_key("data") && !o.contains_key("meta")
        });
        if only_errors {
            batch.skipped.push(Skip::new("api_error", at));
            continue;
        }
        let resp = match x::from_value(value) {
            Ok(resp) => resp,
            Err(e) => {
                let reason = format!("line {}: {e}", n + 1);
                first_problem.get_or_insert_with(|| reason.clone());
                batch
                    .dead_letters
                    .push(dead_letter(at, reason, line.to_vec()));
                continue;
            }
        };
        pages += 1;
        let (signals, skipped) = x::read(&resp, source, own_user_ids);
        batch.skipped.extend(skipped);
        for s in signals {
            if seen.insert(s.id.clone()) {
                batch.signals.push(s);
            } else {
                batch.skipped.push(Skip::new("duplicate", s.source_id));
            }
        }
    }
    if pages == 0 {
        return Err(ParseError::Shape(format!(
            "no line is an X API v2 response or stream line{}",
            first_problem.map(|p| format!(": {p}")).unwrap_or_default()
        )));
    }
    Ok(batch)
}

/// A Graph API `/feed` page (with any `comments{…}` expansion) or `/{post-id}/comments` page,
/// told apart by [`facebook::page_kind`]. Items that cannot be read are dead letters.
pub fn read_facebook(
    origin: &str,
    body: &[u8],
    source: &str,
    page_id: &str,
) -> Result<Batch, ParseError> {
    let resp = facebook::parse_response(body)?;
    let (signals, skipped) = match facebook::page_kind(&resp, page_id) {
        facebook::PageKind::Comments { post_id } => {
            facebook::read_comments_page(&resp, source, page_id, post_id.as_deref())
        }
        facebook::PageKind::Feed => facebook::read(&resp, source, page_id),
    };
    Ok(Batch {
        signals,
        skipped,
        dead_letters: rejected_items(origin, &resp),
        ..Batch::default()
    })
}

/// A saved page webhook body (the POST body Facebook sent).
pub fn read_webhook(
    _origin: &str,
    body: &[u8],
    source: &str,
    own_page_ids: &[String],
) -> Result<Batch, ParseError> {
    let parsed = webhook::parse_payload(body, source, own_page_ids)?;
    Ok(Batch {
        signals: parsed.signals,
        skipped: parsed.skipped,
        ..Batch::default()
    })
}
