//! Saved X, Graph API and webhook files as `signaal import` reads them, from fixtures in the
//! real formats (`tests/fixtures/`): retweets, comments, Messenger, JSONL captures, and files
//! that are not what they claim to be.

use std::path::Path;

use serde_json::Value;
use signaal_core::Signal;
use signaal_social::{facebook, saved, webhook, x};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const PAGE: &str = "104857600000001";

fn fixture(name: &str) -> Result<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Ok(std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn by_id<'a>(signals: &'a [Signal], source_id: &str) -> Result<&'a Signal> {
    Ok(signals
        .iter()
        .find(|s| s.source_id == source_id)
        .ok_or_else(|| {
            let ids: Vec<&str> = signals.iter().map(|s| s.source_id.as_str()).collect();
            format!("no signal `{source_id}` among {ids:?}")
        })?)
}

fn reasons(skipped: &[signaal_source::Skip]) -> Vec<(&str, &str)> {
    skipped
        .iter()
        .map(|s| (s.reason, s.item.as_str()))
        .collect()
}

const ORIGINAL: &str = "2122603772113850369";

#[test]
fn retweets_are_marked_and_carry_the_originals_words_and_the_original_its_reach() -> Result {
    let resp = x::parse_response(&fixture("x-retweets.json")?)?;
    let own = ["1600000000000000099".to_string()];
    let (signals, skipped) = x::read(&resp, "x", &own);
    // Two retweets of a customer's post, the post itself (only in `includes`), one plain post;
    // the retweet of the organisation's own announcement is not a customer's words.
    assert_eq!(signals.len(), 4, "{signals:#?}");
    assert_eq!(
        reasons(&skipped),
        [("retweet_of_own_post", "2122616648627130369")]
    );
    let full = "@WoonstadNL Al 3 weken geen warm water & niemand belt terug. Dit is <echt> \
                onacceptabel, ik ga naar de huurcommissie als dit zo doorgaat. #woonstad";
    for rt in ["2122610713686970369", "2122616275334074369"] {
        let s = by_id(&signals, rt)?;
        assert_eq!(
            s.meta.get("retweet_of"),
            Some(&Value::from(ORIGINAL)),
            "{rt}"
        );
        assert_eq!(s.text, full, "a retweet reads as the original's full text");
        for reach in ["retweets", "likes", "replies", "quotes"] {
            assert!(!s.meta.contains_key(reach), "{rt} carries `{reach}`");
        }
    }
    let original = by_id(&signals, ORIGINAL)?;
    assert_eq!(original.text, full);
    assert!(!original.meta.contains_key("retweet_of"));
    assert_eq!(original.meta.get("retweets"), Some(&Value::from(17)));
    assert_eq!(original.author.as_deref(), Some("@marieke_b"));
    assert_eq!(
        original.occurred_at.to_rfc3339(),
        "2026-11-17T08:12:30+00:00"
    );
    // `to_signals` (the demo, the contract test) sees the same.
    assert_eq!(x::to_signals(&resp, "x", &own).len(), 4);
    Ok(())
}

#[test]
fn a_post_without_created_at_takes_the_time_in_its_snowflake_id() -> Result {
    let resp = x::parse_response(&fixture("x-retweets.json")?)?;
    let signals = x::to_signals(&resp, "x", &[]);
    let s = by_id(&signals, "2122619501269749761")?;
    assert_eq!(
        s.occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "2026-11-17T09:15:00.123Z"
    );
    Ok(())
}

#[test]
fn x_texts_lose_their_html_escapes() -> Result {
    let batch = saved::read_x("pages.jsonl", &fixture("x-search-pages.jsonl")?, "x", &[])?;
    let s = by_id(&batch.signals, "2122619501269749761")?;
    assert_eq!(
        s.text,
        "@WoonstadNL de monteur zou vandaag komen, niemand geweest & geen bericht"
    );
    for (raw, want) in [
        ("a &amp; b", "a & b"),
        ("&lt;3 &gt;:(", "<3 >:("),
        ("&amp;lt; stays written", "&lt; stays written"),
        ("AT&T &nbsp; &", "AT&T &nbsp; &"),
    ] {
        assert_eq!(x::unescape(raw), want);
    }
    Ok(())
}

#[test]
fn jsonl_with_one_page_per_line_is_read() -> Result {
    let batch = saved::read_x("pages.jsonl", &fixture("x-search-pages.jsonl")?, "x", &[])?;
    let mut ids: Vec<&str> = batch.signals.iter().map(|s| s.source_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "2122603772113850369",
            "2122616648627130369",
            "2122619501269749761"
        ]
    );
    assert!(batch.dead_letters.is_empty() && batch.skipped.is_empty());
    Ok(())
}

#[test]
fn saved_filtered_stream_lines_are_read_and_a_cut_off_last_line_is_a_dead_letter() -> Result {
    let batch = saved::read_x(
        "stream.jsonl",
        &fixture("x-filtered-stream.jsonl")?,
        "x",
        &[],
    )?;
    // The post, and a retweet of it (whose included original is the same post, read once).
    assert_eq!(batch.signals.len(), 2, "{:#?}", batch.signals);
    let rt = by_id(&batch.signals, "2122610713686970369")?;
    assert_eq!(rt.meta.get("retweet_of"), Some(&Value::from(ORIGINAL)));
    assert_eq!(
        by_id(&batch.signals, ORIGINAL)?.author.as_deref(),
        Some("@dewi_k")
    );
    assert_eq!(
        reasons(&batch.skipped),
        [("duplicate", ORIGINAL), ("api_error", "stream.jsonl:4")]
    );
    assert_eq!(batch.dead_letters.len(), 1);
    let dl = &batch.dead_letters[0];
    assert_eq!(dl.origin, "stream.jsonl:5");
    assert!(dl.reason.contains("not JSON"), "{}", dl.reason);
    assert!(dl.payload.starts_with(b"{\"data\""));
    Ok(())
}

#[test]
fn error_bodies_and_wrong_files_are_refused_with_what_they_are() -> Result {
    let webhook_body = fixture("webhook-feed.json")?;
    let feed = fixture("facebook-feed-missing-id.json")?;
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("x 401", fixture("x-401.json")?, "401 Unauthorized"),
        ("v1.1", fixture("x-v1.1-search.json")?, "API v1.1"),
        ("[]", fixture("empty-array.json")?, "empty JSON array"),
        ("webhook as x", webhook_body.clone(), "webhook payload"),
        ("graph as x", feed.clone(), "import it as `facebook`"),
        (
            "v1.1 error",
            br#"{"errors":[{"code":89,"message":"Invalid or expired token."}]}"#.to_vec(),
            "Invalid or expired token",
        ),
    ];
    for (what, body, says) in &cases {
        // The parser the worker uses, and the import's reader.
        for result in [
            x::parse_response(body).map(|_| ()),
            saved::read_x("f", body, "x", &[]).map(|_| ()),
        ] {
            match result {
                Err(e) => assert!(e.to_string().contains(says), "{what}: {e}"),
                Ok(()) => panic!("{what}: read as an X response"),
            }
        }
    }
    // The feed reader refuses a webhook body, `[]` and an X page; the webhook reader a feed.
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("webhook as feed", webhook_body, "facebook-webhook"),
        ("[]", fixture("empty-array.json")?, "empty JSON array"),
        ("x as feed", fixture("x-v1.1-search.json")?, "X API"),
    ];
    for (what, body, says) in &cases {
        match saved::read_facebook("f", body, "fb", PAGE) {
            Err(e) => assert!(e.to_string().contains(says), "{what}: {e}"),
            Ok(b) => panic!("{what}: read as a feed: {b:?}"),
        }
    }
    for (what, body, says) in [
        ("feed as webhook", feed, "import it as `facebook`"),
        ("[]", b"[]".to_vec(), "empty JSON array"),
    ] {
        match saved::read_webhook("f", &body, "fb", &[]) {
            Err(e) => assert!(e.to_string().contains(says), "{what}: {e}"),
            Ok(b) => panic!("{what}: read as a webhook: {b:?}"),
        }
    }
    // An empty search result is a page, not an error.
    assert!(
        saved::read_x("f", br#"{"meta":{"result_count":0}}"#, "x", &[])?
            .signals
            .is_empty()
    );
    Ok(())
}

#[test]
fn comments_in_a_feed_expansion_are_read_as_comments() -> Result {
    let batch = saved::read_facebook(
        "feed.json",
        &fixture("facebook-feed-with-comments.json")?,
        "fb",
        PAGE,
    )?;
    let post = "104857600000001_1187000000000123";
    let top = "1187000000000123_2203000000000011";
    // The page's announcement and its reply are not signals; three comments and a post are.
    assert_eq!(batch.signals.len(), 4, "{:#?}", batch.signals);
    for (id, in_reply_to) in [
        (top, post),
        ("1187000000000123_2203000000000013", top),
        ("1187000000000123_2203000000000014", post),
    ] {
        let c = by_id(&batch.signals, id)?;
        assert_eq!(c.thread_id.as_deref(), Some(post), "{id}");
        assert_eq!(
            c.meta.get("in_reply_to"),
            Some(&Value::from(in_reply_to)),
            "{id}"
        );
        assert_eq!(c.meta.get("item"), Some(&Value::from("comment")));
    }
    assert_eq!(
        by_id(&batch.signals, top)?.meta.get("likes"),
        Some(&Value::from(9))
    );
    assert_eq!(
        reasons(&batch.skipped),
        [
            ("own_page", post),
            ("own_page", "1187000000000123_2203000000000012")
        ]
    );
    // The worker's parser sees the same comments.
    let resp = facebook::parse_response(&fixture("facebook-feed-with-comments.json")?)?;
    assert_eq!(facebook::to_signals(&resp, "fb", PAGE).len(), 4);
    Ok(())
}

#[test]
fn a_saved_comments_page_is_read_as_comments_of_its_post() -> Result {
    let body = fixture("facebook-comments-saved.json")?;
    let resp = facebook::parse_response(&body)?;
    assert_eq!(
        facebook::page_kind(&resp, PAGE),
        facebook::PageKind::Comments { post_id: None }
    );
    let batch = saved::read_facebook("comments.json", &body, "fb", PAGE)?;
    let post = "104857600000001_1187000000000456";
    assert_eq!(batch.signals.len(), 2);
    let first = by_id(&batch.signals, "1187000000000456_2203000000000077")?;
    assert_eq!(first.thread_id.as_deref(), Some(post));
    assert_eq!(first.meta.get("in_reply_to"), Some(&Value::from(post)));
    let reply = by_id(&batch.signals, "1187000000000456_2203000000000078")?;
    assert_eq!(reply.thread_id.as_deref(), Some(post));
    assert_eq!(
        reply.meta.get("in_reply_to"),
        Some(&Value::from("1187000000000456_2203000000000077"))
    );
    assert_eq!(
        reasons(&batch.skipped),
        [("own_page", "1187000000000456_2203000000000080")]
    );
    // A page whose `paging` URL names the post (the worker's recording) takes it from there,
    // without a page id.
    let recorded = fixture("comments-104857600000001_100000000000040-page-1.json")?;
    let batch = saved::read_facebook("page-1.json", &recorded, "fb", "")?;
    assert!(!batch.signals.is_empty());
    for s in &batch.signals {
        assert_eq!(
            s.thread_id.as_deref(),
            Some("104857600000001_100000000000040")
        );
    }
    Ok(())
}

#[test]
fn a_feed_item_without_id_is_a_dead_letter_and_the_rest_is_read() -> Result {
    let body = fixture("facebook-feed-missing-id.json")?;
    let resp = facebook::parse_response(&body)?;
    assert_eq!(resp.data.len(), 2);
    assert_eq!(resp.rejected.len(), 1);
    let batch = saved::read_facebook("feed.json", &body, "fb", PAGE)?;
    assert_eq!(batch.signals.len(), 2);
    let dl = &batch.dead_letters[0];
    assert_eq!(dl.origin, "feed.json");
    assert!(
        dl.reason.contains("item 2 of data") && dl.reason.contains("missing field `id`"),
        "{}",
        dl.reason
    );
    let item: Value = serde_json::from_slice(&dl.payload)?;
    assert_eq!(item["from"]["name"], "Daan");
    Ok(())
}

#[test]
fn webhook_ratings_mentions_edits_and_old_payloads_are_read() -> Result {
    let own = [PAGE.to_string()];
    let parsed =
        webhook::parse_payload(&fixture("webhook-ratings-mention-edit.json")?, "hook", &own)?;
    let signals = &parsed.signals;
    assert_eq!(signals.len(), 4, "{signals:#?}");

    let rating = by_id(signals, "1190000000000555")?;
    assert_eq!(
        rating.text,
        "Drie keer gebeld over de lekkage, niemand komt langs."
    );
    assert_eq!(rating.author.as_deref(), Some("2000000000333333"));
    assert_eq!(rating.meta.get("rating"), Some(&Value::from(1)));
    assert_eq!(
        rating.meta.get("recommendation_type"),
        Some(&Value::from("negative"))
    );
    assert_eq!(
        rating.meta.get("page_id"),
        Some(&Value::from(PAGE)),
        "an integer entry id"
    );

    let mention = by_id(signals, "2000000000555555_1191000000000001")?;
    assert_eq!(mention.author.as_deref(), Some("2000000000555555"));
    assert_eq!(mention.meta.get("author_name"), Some(&Value::from("Anouk")));
    assert_eq!(mention.meta.get("field"), Some(&Value::from("mention")));

    let edit = by_id(signals, "1187000000000123_2203000000000011")?;
    assert_eq!(edit.meta.get("verb"), Some(&Value::from("edit")));

    // A numeric `from.id` keeps the author; no `created_time` takes `entry.time`.
    let status = by_id(signals, "104857600000001_1187000000000999")?;
    assert_eq!(status.author.as_deref(), Some("2000000000777777"));
    assert_eq!(status.occurred_at.timestamp(), 1763373600);

    assert_eq!(
        reasons(&parsed.skipped),
        [
            ("no_text", "1190000000000556"),
            ("no_text", "2000000000666666_1191000000000002"),
            // Old payload: the page's own comment named by a numeric `sender_id`.
            ("own_page", "1187000000000123_2203000000000015"),
        ]
    );
    Ok(())
}

#[test]
fn messenger_messages_are_read_and_the_rest_skipped_with_a_reason() -> Result {
    let batch = saved::read_webhook("m.json", &fixture("webhook-messenger.json")?, "hook", &[])?;
    assert_eq!(batch.signals.len(), 1);
    let m = &batch.signals[0];
    assert_eq!(m.source_id, "m_cGFnZS1tZXNzYWdlLTAwMQ");
    assert_eq!(m.author.as_deref(), Some("6900000000000001"));
    assert_eq!(m.occurred_at.timestamp_millis(), 1763373690456);
    assert_eq!(
        m.thread_id.as_deref(),
        Some("messenger_104857600000001_6900000000000001")
    );
    assert_eq!(m.meta.get("item"), Some(&Value::from("message")));
    assert_eq!(
        reasons(&batch.skipped),
        [
            ("own_page", "m_cGFnZS1tZXNzYWdlLTAwMg"),
            ("no_text", "m_cGFnZS1tZXNzYWdlLTAwMw"),
            ("receipt", "104857600000001/messaging/0"),
            ("receipt", "104857600000001/messaging/0"),
            ("postback", "104857600000001/messaging/0"),
        ]
    );
    Ok(())
}

#[test]
fn a_comments_page_with_graphs_default_fields_is_told_from_a_feed_by_its_ids() -> Result {
    // `GET /{post-id}/comments` without `fields=`: id, message, created_time, from; paging with
    // cursors only. Nothing but the ids says these are comments of post 1187000000000456.
    let body = fixture("facebook-comments-default-fields.json")?;
    let resp = facebook::parse_response(&body)?;
    let post = format!("{PAGE}_1187000000000456");
    assert_eq!(
        facebook::page_kind(&resp, PAGE),
        facebook::PageKind::Comments {
            post_id: Some(post.clone())
        }
    );
    let batch = saved::read_facebook("comments.json", &body, "fb", PAGE)?;
    assert_eq!(batch.signals.len(), 2);
    for s in &batch.signals {
        assert_eq!(s.thread_id.as_deref(), Some(post.as_str()), "{}", s.id);
        assert_eq!(s.meta.get("in_reply_to"), Some(&Value::from(post.as_str())));
    }
    // Without the page id the ids say nothing: read as a feed, as before.
    assert_eq!(facebook::page_kind(&resp, ""), facebook::PageKind::Feed);
    // A feed page's posts carry the page's own id: still a feed.
    let feed = facebook::parse_response(&fixture("facebook-feed-with-comments.json")?)?;
    assert_eq!(facebook::page_kind(&feed, PAGE), facebook::PageKind::Feed);
    Ok(())
}
