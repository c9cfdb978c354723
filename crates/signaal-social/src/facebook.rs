//! Facebook Graph API lists: `GET /{page-id}/feed` pages (comments asked for with the
//! `comments{…}` field expansion are read too) and `GET /{post-id}/comments` pages.
//!
//! Each item of `data` is read on its own: one that cannot be read (no `id`, say) is set aside
//! in [`FeedResponse::rejected`] with the reason, for the dead-letter topic, and the rest of the
//! page is read. Comments become signals the way the live worker reads them: the post as
//! `thread_id`, the comment replied to (or the post) as `meta.in_reply_to`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use signaal_core::{brief, Channel, Signal};
use signaal_source::Skip;

use crate::ParseError;

pub const FEED_FIELDS: &str = "id,message,created_time,from,permalink_url,shares";
/// Fields asked of `/{post-id}/comments`.
pub const COMMENT_FIELDS: &str =
    "id,message,created_time,from,parent{id},like_count,comment_count,permalink_url";

/// One Graph list page.
#[derive(Debug, Default)]
pub struct FeedResponse {
    pub data: Vec<Post>,
    pub paging: Option<Paging>,
    /// Items (of `data`, or of a post's `comments`) that could not be read, with the reason.
    pub rejected: Vec<Rejected>,
}

/// An item that is not a readable post or comment: the item as it was, and why.
#[derive(Debug)]
pub struct Rejected {
    pub item: Value,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct Paging {
    pub next: Option<String>,
    pub previous: Option<String>,
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
    #[serde(deserialize_with = "id_string")]
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
    /// The `comments{…}` expansion as sent; [`parse_response`] reads it into `comments`.
    #[serde(default, rename = "comments")]
    comments_edge: Option<Value>,
    /// Comments on this post, or replies to this comment (`comments{…}` field expansion).
    #[serde(skip)]
    pub comments: Vec<Post>,
}

#[derive(Debug, Deserialize)]
pub struct Ref {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct From {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    pub name: Option<String>,
}

/// Graph ids are strings, but some saved payloads (and old API versions) have numbers: both
/// read as the same string.
fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "id is {other}, not a string or number"
        ))),
    }
}

/// Graph timestamps look like `2026-11-17T09:00:00+0000`.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One Graph list page. An error object, a webhook payload, an X response or `[]` is refused
/// with what it looks like; an unreadable item is set aside in `rejected`.
pub fn parse_response(body: &[u8]) -> Result<FeedResponse, ParseError> {
    from_value(serde_json::from_slice(body)?)
}

/// [`parse_response`] for a value already parsed.
pub fn from_value(value: Value) -> Result<FeedResponse, ParseError> {
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(items) if items.is_empty() => return Err(ParseError::Shape(
            "the file is an empty JSON array `[]`, not a Graph API page (an object with `data`)"
                .into(),
        )),
        Value::Array(_) => {
            return Err(ParseError::Shape(
                "the file is a JSON array, not a Graph API page (an object with `data`)".into(),
            ))
        }
        _ => return Err(ParseError::Shape("not a JSON object".into())),
    };
    if let Some(err) = obj.get("error") {
        return Err(ParseError::Shape(format!(
            "graph api error: {}",
            brief(&err.to_string())
        )));
    }
    let items = match obj.remove("data") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ParseError::Shape("`data` is not a list".into())),
        None => return Err(ParseError::Shape(not_a_page(&obj))),
    };
    let paging = match obj.remove("paging") {
        Some(p) => Some(serde_json::from_value(p)?),
        None => None,
    };
    let mut rejected = Vec::new();
    let data = read_items(items, "data", &mut rejected);
    Ok(FeedResponse {
        data,
        paging,
        rejected,
    })
}

/// What an object without `data` is, in words.
fn not_a_page(obj: &Map<String, Value>) -> String {
    if obj.contains_key("object") && obj.contains_key("entry") {
        return "a Facebook page webhook payload (`object`, `entry`), not a Graph API feed or \
                comments page: import it as `facebook-webhook`"
            .into();
    }
    if obj.contains_key("meta") || obj.contains_key("includes") || obj.contains_key("statuses") {
        return "an X API response, not a Graph API page: import it as `twitter`".into();
    }
    let keys: Vec<&str> = obj.keys().take(8).map(String::as_str).collect();
    format!(
        "not a Graph API page: no `data` list (keys: {})",
        keys.join(", ")
    )
}

fn read_items(items: Vec<Value>, list: &str, rejected: &mut Vec<Rejected>) -> Vec<Post> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match Post::deserialize(&item) {
            Ok(mut post) => {
                if let Some(edge) = post.comments_edge.take() {
                    let list = format!("`comments` of `{}`", post.id);
                    match edge {
                        Value::Object(mut edge) => {
                            if let Some(Value::Array(items)) = edge.remove("data") {
                                post.comments = read_items(items, &list, rejected);
                            }
                        }
                        other => rejected.push(Rejected {
                            item: other,
                            reason: format!("{list} is not a Graph list"),
                        }),
                    }
                }
                out.push(post);
            }
            Err(e) => rejected.push(Rejected {
                reason: format!("item {} of {list}: {e}", i + 1),
                item,
            }),
        }
    }
    out
}

/// Turns a feed page into signals: posts and their comments by anyone but the page itself.
pub fn to_signals(resp: &FeedResponse, source: &str, page_id: &str) -> Vec<Signal> {
    read(resp, source, page_id).0
}

/// A feed page as signals, and the items that are not signals with the reason (item = id).
pub fn read(resp: &FeedResponse, source: &str, page_id: &str) -> (Vec<Signal>, Vec<Skip>) {
    let mut out = (Vec::new(), Vec::new());
    for p in &resp.data {
        match post_signal(p, source, page_id) {
            Ok(s) => out.0.push(s),
            Err(reason) => out.1.push(Skip::new(reason, p.id.clone())),
        }
        read_comments(&p.comments, source, page_id, Some(&p.id), &p.id, &mut out);
    }
    out
}

fn post_signal(p: &Post, source: &str, page_id: &str) -> Result<Signal, &'static str> {
    if p.from.as_ref().is_some_and(|f| f.id == page_id) {
        return Err("own_page");
    }
    let text = p
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .ok_or("no_text")?;
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
    Ok(s)
}

/// Comments (and, nested, their replies) as signals; `replied_to` is what a comment without
/// `parent` answers: the post for top-level comments, the enclosing comment for nested replies.
fn read_comments(
    comments: &[Post],
    source: &str,
    page_id: &str,
    post_id: Option<&str>,
    replied_to: &str,
    out: &mut (Vec<Signal>, Vec<Skip>),
) {
    for c in comments {
        match comment_signal(c, source, page_id, post_id, replied_to) {
            Ok(s) => out.0.push(s),
            Err(reason) => out.1.push(Skip::new(reason, c.id.clone())),
        }
        read_comments(&c.comments, source, page_id, post_id, &c.id, out);
    }
}

fn comment_signal(
    c: &Post,
    source: &str,
    page_id: &str,
    post_id: Option<&str>,
    replied_to: &str,
) -> Result<Signal, &'static str> {
    if c.from.as_ref().is_some_and(|f| f.id == page_id) {
        return Err("own_page");
    }
    let text = c
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .ok_or("no_text")?;
    let occurred_at = parse_time(&c.created_time).unwrap_or_else(Utc::now);
    let mut meta = Map::new();
    meta.insert("page_id".into(), Value::from(page_id));
    meta.insert("item".into(), Value::from("comment"));
    let parent = c.parent.as_ref().map_or(replied_to, |p| p.id.as_str());
    if !parent.is_empty() {
        meta.insert("in_reply_to".into(), Value::from(parent));
    }
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
    s.thread_id = post_id.map(str::to_string);
    s.meta = meta;
    Ok(s)
}

/// One page of `/{post-id}/comments` as signals: comments by anyone but the page itself, with
/// the post as `thread_id` and the comment replied to (or the post) as `in_reply_to`.
pub fn comments_to_signals(
    resp: &FeedResponse,
    source: &str,
    page_id: &str,
    post_id: &str,
) -> Vec<Signal> {
    read_comments_page(resp, source, page_id, Some(post_id)).0
}

/// [`comments_to_signals`] with the skipped items. Without `post_id` (a saved page), each
/// comment's post comes from [`post_of_comment`].
pub fn read_comments_page(
    resp: &FeedResponse,
    source: &str,
    page_id: &str,
    post_id: Option<&str>,
) -> (Vec<Signal>, Vec<Skip>) {
    let mut out = (Vec::new(), Vec::new());
    for c in &resp.data {
        let found;
        let post = match post_id {
            Some(p) => Some(p),
            None => {
                found = post_of_comment(c, page_id);
                found.as_deref()
            }
        };
        let list = std::slice::from_ref(c);
        read_comments(list, source, page_id, post, post.unwrap_or(""), &mut out);
    }
    out
}

/// What a saved Graph page holds.
#[derive(Debug, PartialEq, Eq)]
pub enum PageKind {
    Feed,
    /// A `/{post-id}/comments` page; the post when the page's `paging` URLs name it.
    Comments {
        post_id: Option<String>,
    },
}

/// Tells a saved `/comments` page from a `/feed` page: by the path of its `paging` URLs, else
/// by its items (comments have `parent`, `like_count`, `comment_count`, or a permalink with
/// `comment_id=`; posts have none of these), else — Graph's default fields carry none of that —
/// by the ids: a page's posts are `{page_id}_{post}`, the comments of one post
/// `{post}_{comment}` with one `{post}` that is not the page's id.
pub fn page_kind(resp: &FeedResponse, page_id: &str) -> PageKind {
    let from_url = resp.paging.as_ref().and_then(|p| {
        [&p.next, &p.previous]
            .into_iter()
            .flatten()
            .find_map(|url| comments_url_post(url))
    });
    if let Some(post_id) = from_url {
        return PageKind::Comments {
            post_id: Some(post_id),
        };
    }
    let comment_like = |p: &Post| {
        p.parent.is_some()
            || p.like_count.is_some()
            || p.comment_count.is_some()
            || p.permalink_url
                .as_deref()
                .is_some_and(|u| u.contains("comment_id="))
    };
    if !resp.data.is_empty() && resp.data.iter().all(comment_like) {
        return PageKind::Comments { post_id: None };
    }
    let prefixes: Vec<&str> = resp
        .data
        .iter()
        .filter_map(|p| p.id.split_once('_').map(|(prefix, _)| prefix))
        .collect();
    let one_post = prefixes.len() == resp.data.len()
        && prefixes.first().is_some_and(|first| {
            !page_id.is_empty() && *first != page_id && prefixes.iter().all(|p| p == first)
        });
    match prefixes.first() {
        Some(post) if one_post => PageKind::Comments {
            post_id: Some(format!("{page_id}_{post}")),
        },
        _ => PageKind::Feed,
    }
}

/// `https://graph.facebook.com/v21.0/{post-id}/comments?…` → the post id.
fn comments_url_post(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let mut segments = path.trim_end_matches('/').rsplit('/');
    if segments.next()? != "comments" {
        return None;
    }
    let post = segments.next()?;
    (!post.is_empty() && post.bytes().all(|b| b.is_ascii_digit() || b == b'_'))
        .then(|| post.to_string())
}

/// The post a comment belongs to, for a saved comments page that does not name it: from the
/// permalink (`…/{page}/posts/{post}?comment_id=…` or `permalink.php?story_fbid={post}&id={page}`),
/// else from the comment id (`{post}_{comment}`, where `{post}` lacks the page id prefix that
/// post ids carry: `page_id` supplies it).
pub fn post_of_comment(c: &Post, page_id: &str) -> Option<String> {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(url) = &c.permalink_url {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let Some(i) = segments.iter().position(|s| *s == "posts") {
            if let (Some(page), Some(post)) =
                (i.checked_sub(1).map(|j| segments[j]), segments.get(i + 1))
            {
                if numeric(page) && numeric(post) {
                    return Some(format!("{page}_{post}"));
                }
            }
        }
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(k)?.strip_prefix('='))
        };
        if let (Some(post), Some(page)) = (param("story_fbid"), param("id")) {
            if numeric(page) && numeric(post) {
                return Some(format!("{page}_{post}"));
            }
        }
    }
    let (prefix, _) = c.id.rsplit_once('_')?;
    if prefix.contains('_') {
        Some(prefix.to_string())
    } else if numeric(page_id) {
        Some(format!("{page_id}_{prefix}"))
    } else {
        None
    }
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

    fn comment(id: &str, permalink: Option<&str>) -> Result<Post, serde_json::Error> {
        serde_json::from_value(serde_json::json!({
            "id": id, "message": "m", "created_time": "2026-11-17T09:00:00+0000",
            "permalink_url": permalink,
        }))
    }

    #[test]
    fn a_comments_post_is_found_in_the_permalink_or_the_id() -> Result<(), serde_json::Error> {
        let page = "104857600000001";
        for (id, permalink, page_id, want) in [
            ("77_88", Some("https://www.facebook.com/104857600000001/posts/77?comment_id=88"), "", Some("104857600000001_77")),
            ("77_88", Some("https://www.facebook.com/104857600000001/posts/77/?comment_id=88"), "", Some("104857600000001_77")),
            ("77_88", Some("https://www.facebook.com/permalink.php?story_fbid=77&id=104857600000001&comment_id=88"), "", Some("104857600000001_77")),
            // A vanity name in the permalink says nothing; the id and the page id do.
            ("77_88", Some("https://www.facebook.com/woonstad/posts/77?comment_id=88"), page, Some("104857600000001_77")),
            ("77_88", None, page, Some("104857600000001_77")),
            ("104857600000001_77_88", None, "", Some("104857600000001_77")),
            ("77_88", None, "", None),
            ("88", None, page, None),
        ] {
            assert_eq!(post_of_comment(&comment(id, permalink)?, page_id).as_deref(), want, "{id} {permalink:?}");
        }
        for (url, want) in [
            (
                "https://graph.facebook.com/v21.0/104857600000001_77/comments?after=QVFI",
                Some("104857600000001_77"),
            ),
            (
                "https://graph.facebook.com/v21.0/104857600000001/feed?after=QVFI",
                None,
            ),
            ("https://graph.facebook.com/v21.0/me/comments", None),
        ] {
            assert_eq!(comments_url_post(url).as_deref(), want, "{url}");
        }
        Ok(())
    }
}
