//! X API v2 `GET /2/tweets/search/recent` responses.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use signaal_core::{Channel, Signal};

use crate::ParseError;

/// Fields requested from the API; the parser reads exactly these.
pub const TWEET_FIELDS: &str =
    "created_at,author_id,conversation_id,lang,public_metrics,in_reply_to_user_id,referenced_tweets";
pub const USER_FIELDS: &str = "username,name,public_metrics";

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
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: Option<String>,
    #[serde(default)]
    pub public_metrics: Map<String, Value>,
}

pub fn parse_response(body: &[u8]) -> Result<SearchResponse, ParseError> {
    Ok(serde_json::from_slice(body)?)
}

/// Turns one search response into signals; tweets by `own_user_ids` are left out.
pub fn to_signals(resp: &SearchResponse, source: &str, own_user_ids: &[String]) -> Vec<Signal> {
    let users: HashMap<&str, &User> = resp
        .includes
        .users
        .iter()
        .map(|u| (u.id.as_str(), u))
        .collect();
    resp.data
        .iter()
        .filter(|t| {
            t.author_id
                .as_ref()
                .is_none_or(|a| !own_user_ids.contains(a))
        })
        .map(|t| {
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
            let mut s = Signal::new(
                Channel::Twitter,
                source,
                t.id.clone(),
                t.created_at.unwrap_or_else(Utc::now),
                t.text.clone(),
            );
            s.author = user
                .map(|u| format!("@{}", u.username))
                .or_else(|| t.author_id.clone());
            s.thread_id = t.conversation_id.clone();
            s.meta = meta;
            s
        })
        .collect()
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
}
