//! Facebook Graph API `GET /{page-id}/feed` responses.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use signaal_core::{Channel, Signal};

use crate::ParseError;

pub const FEED_FIELDS: &str = "id,message,created_time,from,permalink_url,shares";
/// Fields asked of `/{post-id}/comments`.
pub const COMMENT_FIELDS: &str =
    "id,message,created_time,from,parent{id},like_count,comment_count,permalink_url";

#[derive(Debug, Deserialize)]
pub struct FeedResponse {
    #[serde(default)]
    pub data: Vec<Post>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    pub next: Option<String>,
    #[serde(default)]
    pub cursors: Option<Cursors>,
}

#[derive(Debug, Deserialize)]
pub struct Cursors {
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Post {
    pub id: String,
    pub message: Option<String>,
    pub created_time: String,
    pub from: Option<From>,
    pub permalink_url: Option<String>,
    pub shares: Option<Map<String, Value>>,
    /// Comments: the comment replied to (absent for a top-level comment).
    pub parent: Option<Ref>,
    pub like_count: Option<u64>,
    pub comment_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Ref {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct From {
    pub id: String,
    pub name: Option<String>,
}

/// Graph timestamps look like `2026-11-17T09:00:00+0000`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

pub fn parse_response(body: &[u8]) -> Result<FeedResponse, ParseError> {
    let value: Value = serde_json::from_slice(body)?;
    if let Some(err) = value.get("error") {
        return Err(ParseError::Shape(format!("graph api error: {err}")));
    }
    Ok(serde_json::from_value(value)?)
}

/// Posts with text, not by the page itself, become signals.
pub fn to_signals(resp: &FeedResponse, source: &str, page_id: &str) -> Vec<Signal> {
    resp.data
        .iter()
        .filter(|p| p.from.as_ref().is_none_or(|f| f.id != page_id))
        .filter_map(|p| {
            let text = p.message.clone().filter(|m| !m.trim().is_empty())?;
            let occurred_at = parse_time(&p.created_time).unwrap_or_else(Utc::now);
            let mut meta = Map::new();
            if let Some(u) = &p.permalink_url {
                meta.insert("permalink".into(), Value::from(u.clone()));
            }
            if let Some(n) = p.shares.as_ref().and_then(|s| s.get("count")) {
                meta.insert("shares".into(), n.clone());
            }
            if let Some(name) = p.from.as_ref().and_then(|f| f.name.clone()) {
                meta.insert("author_name".into(), Value::from(name));
            }
            meta.insert("page_id".into(), Value::from(page_id));
            let mut s = Signal::new(Channel::Facebook, source, p.id.clone(), occurred_at, text);
            s.author = p.from.as_ref().map(|f| f.id.clone());
            s.thread_id = Some(p.id.clone());
            s.meta = meta;
            Some(s)
        })
        .collect()
}

/// One page of `/{post-id}/comments` as signals: comments by anyone but the page itself, with
/// the post as `thread_id` and the comment replied to (or the post) as `in_reply_to`.
pub fn comments_to_signals(
    resp: &FeedResponse,
    source: &str,
    page_id: &str,
    post_id: &str,
) -> Vec<Signal> {
    resp.data
        .iter()
        .filter(|c| c.from.as_ref().is_none_or(|f| f.id != page_id))
        .filter_map(|c| {
            let text = c.message.clone().filter(|m| !m.trim().is_empty())?;
            let occurred_at = parse_time(&c.created_time).unwrap_or_else(Utc::now);
            let mut meta = Map::new();
            meta.insert("page_id".into(), Value::from(page_id));
            meta.insert("item".into(), Value::from("comment"));
            let parent = c.parent.as_ref().map_or(post_id, |p| p.id.as_str());
            meta.insert("in_reply_to".into(), Value::from(parent));
            for (k, v) in [("likes", c.like_count), ("replies", c.comment_count)] {
                if let Some(v) = v {
                    meta.insert(k.into(), Value::from(v));
                }
            }
            if let Some(u) = &c.permalink_url {
                meta.insert("permalink".into(), Value::from(u.clone()));
            }
            if let Some(name) = c.from.as_ref().and_then(|f| f.name.clone()) {
                meta.insert("author_name".into(), Value::from(name));
            }
            let mut s = Signal::new(Channel::Facebook, source, c.id.clone(), occurred_at, text);
            s.author = c.from.as_ref().map(|f| f.id.clone());
            s.thread_id = Some(post_id.to_string());
            s.meta = meta;
            Some(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_page_maps_to_signals() -> Result<(), ParseError> {
        let body = br#"{"data":[
          {"id":"123_1","message":"Monteur is weer niet komen opdagen!","created_time":"2026-11-17T09:00:00+0000","from":{"name":"Piet","id":"555"},"permalink_url":"https://www.facebook.com/123/posts/1","shares":{"count":4}},
          {"id":"123_2","message":"Wij helpen u graag via DM","created_time":"2026-11-17T09:10:00+0000","from":{"name":"Woonstad","id":"123"}},
          {"id":"123_3","created_time":"2026-11-17T09:20:00+0000","from":{"name":"Foto","id":"556"}}],
          "paging":{"cursors":{"before":"QVFIUm","after":"QVFIUn"},"next":"https://graph.facebook.com/v21.0/123/feed?after=QVFIUn"}}"#;
        let resp = parse_response(body)?;
        let signals = to_signals(&resp, "page", "123");
        assert_eq!(signals.len(), 1);
        assert_eq!(
            signals[0].occurred_at.to_rfc3339(),
            "2026-11-17T09:00:00+00:00"
        );
        assert_eq!(signals[0].meta.get("shares"), Some(&Value::from(4)));
        assert!(resp.paging.and_then(|p| p.next).is_some());
        Ok(())
    }

    #[test]
    fn error_objects_are_errors() {
        let body = br#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}"#;
        assert!(matches!(parse_response(body), Err(ParseError::Shape(m)) if m.contains("190")));
    }
}
