//! X API v2 responses: `GET /2/tweets/search/recent` and `/2/users/:id/mentions` pages, and
//! filtered-stream lines (one post per line).
//!
//! A retweet is not a new customer's words: it keeps its own id (so a redelivery stores nothing
//! twice) but is marked with `meta.retweet_of` (the original's id), takes the original's full
//! text when the response includes it (X cuts a retweet's own text to "RT @x: …"), and carries
//! no engagement counts: those are the original's, and they stay on the original, which is read
//! as a signal of its own when the response includes it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use signaal_core::{brief, Channel, Signal};
use signaal_source::Skip;

use crate::ParseError;

/// Fields requested from the API; the parser reads exactly these.
pub const TWEET_FIELDS: &str =
    "created_at,author_id,conversation_id,lang,public_metrics,in_reply_to_user_id,referenced_tweets";
pub const USER_FIELDS: &str = "username,name,public_metrics";
/// Expansions requested: the author, and the post a retweet, quote or reply refers to with its
/// author, so a retweet can be read as its original's words.
pub const EXPANSIONS: &str = "author_id,referenced_tweets.id,referenced_tweets.id.author_id";

#[derive(Debug, Deserialize)]
pub struct SearchResponse {
    #[serde(default)]
    pub data: Vec<Tweet>,
    #[serde(default)]
    pub includes: Includes,
    #[serde(default)]
    pub meta: Meta,
    /// Partial errors inside a 200 response.
    #[serde(default)]
    pub errors: Vec<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Includes {
    #[serde(default)]
    pub users: Vec<User>,
    /// Posts referred to by the page's posts (`referenced_tweets.id` expansion).
    #[serde(default)]
    pub tweets: Vec<Tweet>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    pub newest_id: Option<String>,
    pub oldest_id: Option<String>,
    #[serde(default)]
    pub result_count: u64,
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Tweet {
    pub id: String,
    pub text: String,
    pub author_id: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub conversation_id: Option<String>,
    pub lang: Option<String>,
    pub in_reply_to_user_id: Option<String>,
    #[serde(default)]
    pub public_metrics: Map<String, Value>,
    /// `retweeted`, `quoted` or `replied_to`, with the other post's id.
    #[serde(default)]
    pub referenced_tweets: Vec<Reference>,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: Option<String>,
    #[serde(default)]
    pub public_metrics: Map<String, Value>,
}

/// One response body: a page (`data` a list) or a filtered-stream line (`data` one post).
/// Anything else — an error body, an API v1.1 response, a Facebook payload, `[]` — is refused
/// with what it looks like, so a wrong file is never read as "no posts".
pub fn parse_response(body: &[u8]) -> Result<SearchResponse, ParseError> {
    from_value(serde_json::from_slice(body)?)
}

/// [`parse_response`] for a value already parsed.
pub fn from_value(mut value: Value) -> Result<SearchResponse, ParseError> {
    if let Some(why) = not_a_page(&value) {
        return Err(ParseError::Shape(why));
    }
    // A stream line carries one post as an object; read it as a page of one.
    if let Some(data) = value.get_mut("data") {
        if data.is_object() {
            let post = data.take();
            *data = Value::Array(vec![post]);
        }
    }
    Ok(serde_json::from_value(value)?)
}

/// Why `value` is not an X API v2 response, in words that name what it looks like instead.
fn not_a_page(value: &Value) -> Option<String> {
    let obj = match value {
        Value::Array(items) if items.is_empty() => {
            return Some("the file is an empty JSON array `[]`, not an X API v2 response".into())
        }
        Value::Array(items) => {
            return Some(format!(
                "the file is a JSON array of {} items (an X API v1.1 timeline, or a list of \
                 posts), not an X API v2 response (an object with `data`, `includes`, `meta`)",
                items.len()
            ))
        }
        Value::Object(obj) => obj,
        _ => return Some("not a JSON object".into()),
    };
    let has = |k: &str| obj.contains_key(k);
    let graph_item = |v: &Value| v.get("message").is_some() && v.get("text").is_none();
    if let Some(Value::Array(items)) = obj.get("data") {
        if items.iter().any(graph_item) {
            return Some(
                "a Graph API page (items with `message`), not an X API v2 response: import it \
                 as `facebook`"
                    .into(),
            );
        }
    }
    if matches!(obj.get("data"), Some(Value::Array(_) | Value::Object(_)))
        || obj.get("meta").is_some_and(Value::is_object)
    {
        return None;
    }
    let text = |k: &str| match obj.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => String::new(),
    };
    let why = if has("statuses") || has("search_metadata") {
        "an X API v1.1 search response (`statuses`); signaal reads API v2 responses \
         (`data`, `includes`, `meta`): save them from `/2/tweets/search/recent`"
            .to_string()
    } else if has("id_str") {
        "an X API v1.1 post (`id_str`), not an X API v2 response".to_string()
    } else if has("title") && (has("status") || has("type") || has("detail")) {
        format!(
            "an X API error response, not a page of posts: {} {}: {}",
            text("status"),
            text("title"),
            text("detail")
        )
    } else if let Some(errors) = obj.get("errors") {
        format!(
            "an X API error response, not a page of posts: {}",
            brief(&errors.to_string())
        )
    } else if has("object") && has("entry") {
        "a Facebook page webhook payload, not an X API v2 response".to_string()
    } else if has("error") {
        format!(
            "a Graph API error response, not an X API v2 response: {}",
            brief(&obj["error"].to_string())
        )
    } else {
        let keys: Vec<&str> = obj.keys().take(8).map(String::as_str).collect();
        format!(
            "not an X API v2 response: no `data` or `meta` (keys: {})",
            keys.join(", ")
        )
    };
    Some(why)
}

/// X escapes `&`, `<` and `>` in post texts (`&amp;`, `&lt;`, `&gt;`) and nothing else; one
/// pass, so a literal `&amp;lt;` becomes `&lt;`, as written.
pub fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let (ch, len) = if rest.starts_with("&amp;") {
            ('&', 5)
        } else if rest.starts_with("&lt;") {
            ('<', 4)
        } else if rest.starts_with("&gt;") {
            ('>', 4)
        } else {
            ('&', 1)
        };
        out.push(ch);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// X's epoch for snowflake ids (2010-11-04T01:42:54.657Z), in Unix milliseconds.
const TWEPOCH_MS: i64 = 1_288_834_974_657;

/// The time in a snowflake id: `(id >> 22) + TWEPOCH_MS`. Ids from before snowflakes (2010,
/// below 2^42) carry no time.
pub fn snowflake_time(id: &str) -> Option<DateTime<Utc>> {
    let id = id.trim().parse::<u64>().ok().filter(|id| *id >= 1 << 42)?;
    let ms = i64::try_from(id >> 22).ok()? + TWEPOCH_MS;
    Utc.timestamp_millis_opt(ms).single()
}

/// Turns one response into signals; posts by `own_user_ids` are left out.
pub fn to_signals(resp: &SearchResponse, source: &str, own_user_ids: &[String]) -> Vec<Signal> {
    read(resp, source, own_user_ids).0
}

/// One response as signals, and the posts that are not signals with the reason (item = post id).
///
/// A retweet becomes a marked signal ([module docs](self)); the original it quotes, when the
/// response includes it (`includes.tweets`), is read too, once. Posts by `own_user_ids` and
/// retweets of them are skipped.
pub fn read(
    resp: &SearchResponse,
    source: &str,
    own_user_ids: &[String],
) -> (Vec<Signal>, Vec<Skip>) {
    let users: HashMap<&str, &User> = resp
        .includes
        .users
        .iter()
        .map(|u| (u.id.as_str(), u))
        .collect();
    let included: HashMap<&str, &Tweet> = resp
        .includes
        .tweets
        .iter()
        .map(|t| (t.id.as_str(), t))
        .collect();
    let mut seen: HashSet<&str> = resp.data.iter().map(|t| t.id.as_str()).collect();
    let own = |t: &Tweet| {
        t.author_id
            .as_deref()
            .is_some_and(|a| own_user_ids.iter().any(|o| o == a))
    };
    let mut signals = Vec::new();
    let mut skipped = Vec::new();
    for t in &resp.data {
        if own(t) {
            skipped.push(Skip::new("own_account", t.id.clone()));
            continue;
        }
        let Some(original_id) = reference(t, "retweeted") else {
            signals.push(signal(t, &users, source));
            continue;
        };
        let original = included.get(original_id).copied();
        if original.is_some_and(own) {
            skipped.push(Skip::new("retweet_of_own_post", t.id.clone()));
            continue;
        }
        let mut s = signal(t, &users, source);
        if let Some(o) = original {
            s.text = unescape(&o.text);
        }
        for k in ["likes", "retweets", "replies", "quotes"] {
            s.meta.remove(k);
        }
        s.meta
            .insert("retweet_of".into(), Value::from(original_id.to_string()));
        signals.push(s);
        if let Some(o) = original {
            if seen.insert(o.id.as_str()) {
                signals.push(signal(o, &users, source));
            }
        }
    }
    (signals, skipped)
}

/// The id of the post `t` refers to as `kind` (`retweeted`, `quoted`, `replied_to`).
fn reference<'a>(t: &'a Tweet, kind: &str) -> Option<&'a str> {
    t.referenced_tweets
        .iter()
        .find(|r| r.kind == kind)
        .map(|r| r.id.as_str())
}

fn signal(t: &Tweet, users: &HashMap<&str, &User>, source: &str) -> Signal {
    let user = t.author_id.as_deref().and_then(|a| users.get(a));
    let mut meta = Map::new();
    meta.insert("author_id".into(), t.author_id.clone().into());
    if let Some(u) = user {
        meta.insert("handle".into(), Value::from(u.username.clone()));
        if let Some(f) = u.public_metrics.get("followers_count") {
            meta.insert("followers".into(), f.clone());
        }
        meta.insert(
            "permalink".into(),
            Value::from(format!("https://x.com/{}/status/{}", u.username, t.id)),
        );
    }
    for (k, name) in [
        ("like_count", "likes"),
        ("retweet_count", "retweets"),
        ("reply_count", "replies"),
        ("quote_count", "quotes"),
    ] {
        if let Some(v) = t.public_metrics.get(k) {
            meta.insert(name.into(), v.clone());
        }
    }
    if let Some(l) = &t.lang {
        meta.insert("lang".into(), Value::from(l.clone()));
    }
    if let Some(r) = &t.in_reply_to_user_id {
        meta.insert("in_reply_to_user_id".into(), Value::from(r.clone()));
    }
    if let Some(r) = reference(t, "replied_to") {
        meta.insert("in_reply_to".into(), Value::from(r));
    }
    if let Some(q) = reference(t, "quoted") {
        meta.insert("quote_of".into(), Value::from(q));
    }
    // Without `created_at` (not asked for, or a trimmed save) the id still says when.
    let occurred_at = t
        .created_at
        .or_else(|| snowflake_time(&t.id))
        .unwrap_or_else(Utc::now);
    let mut s = Signal::new(
        Channel::Twitter,
        source,
        t.id.clone(),
        occurred_at,
        unescape(&t.text),
    );
    s.author = user
        .map(|u| format!("@{}", u.username))
        .or_else(|| t.author_id.clone());
    s.thread_id = t.conversation_id.clone();
    s.meta = meta;
    s
}

/// Tweet ids are decimal snowflakes: compare them as numbers, not strings.
pub fn newer(a: &str, b: &str) -> bool {
    match (a.parse::<u128>(), b.parse::<u128>()) {
        (Ok(x), Ok(y)) => x > y,
        _ => a.len() > b.len() || (a.len() == b.len() && a > b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"data":[
      {"id":"1858000000000000002","text":"@gemeente DigiD werkt weer niet #storing","author_id":"11","created_at":"2026-11-17T09:00:00.000Z","conversation_id":"1858000000000000002","lang":"nl","public_metrics":{"retweet_count":3,"reply_count":1,"like_count":7,"quote_count":0}},
      {"id":"1858000000000000001","text":"Onze excuses, we kijken ernaar","author_id":"99","created_at":"2026-11-17T09:05:00.000Z","conversation_id":"1858000000000000002","lang":"nl","public_metrics":{}}],
      "includes":{"users":[{"id":"11","username":"jan","name":"Jan","public_metrics":{"followers_count":120}},{"id":"99","username":"gemeente","name":"Gemeente"}]},
      "meta":{"newest_id":"1858000000000000002","oldest_id":"1858000000000000001","result_count":2,"next_token":"b26v89c19zqg8o3f"},
      "errors":[{"title":"Not Found Error","detail":"Could not find user with id: [12]."}]}"#;

    #[test]
    fn joins_users_and_drops_own_posts() -> Result<(), ParseError> {
        let resp = parse_response(BODY.as_bytes())?;
        assert_eq!(resp.meta.next_token.as_deref(), Some("b26v89c19zqg8o3f"));
        assert_eq!(resp.errors.len(), 1);
        let signals = to_signals(&resp, "search", &["99".to_string()]);
        assert_eq!(signals.len(), 1);
        let s = &signals[0];
        assert_eq!(s.author.as_deref(), Some("@jan"));
        assert_eq!(s.meta.get("followers"), Some(&Value::from(120)));
        assert_eq!(s.meta.get("retweets"), Some(&Value::from(3)));
        assert_eq!(s.thread_id.as_deref(), Some("1858000000000000002"));
        assert_eq!(s.occurred_at.to_rfc3339(), "2026-11-17T09:00:00+00:00");
        Ok(())
    }

    #[test]
    fn empty_result_has_no_data_key() -> Result<(), ParseError> {
        let resp = parse_response(br#"{"meta":{"result_count":0}}"#)?;
        assert!(resp.data.is_empty());
        assert!(newer("1858000000000000010", "999999999999999999"));
        Ok(())
    }

    #[test]
    fn snowflake_ids_carry_their_time() {
        for (id, want) in [
            ("2122619501269749761", Some("2026-11-17T09:15:00.123Z")),
            // The smallest id read as a snowflake: 2^42, 2^20 ms after X's epoch.
            ("4398046511104", Some("2010-11-04T02:00:23.233Z")),
            // Sequential ids from before snowflakes carry no time.
            ("20", None),
            ("29700859247", None),
            ("not a number", None),
        ] {
            let got =
                snowflake_time(id).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            assert_eq!(got.as_deref(), want, "{id}");
        }
    }
}
