use super::*;

const H: i64 = 3600;
/// Monday 2027-01-04 00:00 UTC, in hours.
const MONDAY: i64 = 1_830_556_800 / H;

fn settings() -> Settings {
    Settings::default()
}

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_900_000_000, 0)
        .single()
        .unwrap_or_default()
}

/// A live alerter with three weeks of quiet history on `theme`: one signal every other hour.
fn with_history(theme: &str) -> (Live, i64) {
    let start = MONDAY;
    let closed = start + 21 * 24 - 1;
    let mut live = Live::new(settings(), Lifecycle::default(), false, start, closed);
    for b in start..=closed {
        live.load_count(theme, None, b, u64::from(b % 2 == 0));
    }
    (live, closed)
}

fn seen<'a>(id: &'a str, at: i64, author: &'a str, text: &'a str) -> Seen<'a> {
    Seen {
        id,
        at,
        channel: "twitter",
        author: Some(author),
        subject: Some("Inloggen lukt niet"),
        text,
        themes: vec!["digital_service"],
    }
}

fn burst(live: &mut Live, bucket: i64, n: usize, authors: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|i| format!("{bucket}-{i}")).collect();
    let names: Vec<String> = (0..n).map(|i| format!("author-{}", i % authors)).collect();
    for (i, id) in ids.iter().enumerate() {
        let s = seen(
            id,
            bucket * H + 60 + i as i64,
            &names[i],
            "DigiD storing: inloggen onmogelijk, storing al de hele ochtend",
        );
        assert_eq!(live.observe(&s), Observed::Counted);
    }
    ids
}

#[test]
fn a_flare_up_fires_once_updates_and_resolves() {
    let (mut live, closed) = with_history("digital_service");
    let b = closed + 1;
    burst(&mut live, b, 25, 20);
    let events = live.close_until(b, now());
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e.state, AlertState::Firing);
    assert_eq!(e.series, "digital_service");
    assert_eq!(e.observed, 20, "twenty people, twenty-five signals");
    assert!(e.expected < 2.0, "expected {}", e.expected);
    assert!(e.p_value < 0.001);
    assert_eq!(e.channels.get("twitter"), Some(&25));
    assert_eq!(e.top_subjects[0].value, "Inloggen lukt niet");
    assert!(
        e.top_words.iter().any(|w| w.value == "inloggen"),
        "{:?}",
        e.top_words
    );
    assert_eq!(e.sample_signal_ids.len(), 10);
    assert_eq!(e.bucket_start.timestamp(), b * H);
    assert_eq!(e.alert_start.timestamp(), b * H);
    // Quiet hours: updates (or a repeat) while it keeps firing, then resolved once the
    // quiet has lasted keep_firing_for (the window test still sees the burst for two hours).
    let later = live.close_until(b + 8, now());
    let states: Vec<AlertState> = later.iter().map(|e| e.state).collect();
    assert_eq!(states.last(), Some(&AlertState::Resolved), "{states:?}");
    assert!(
        states[..states.len() - 1]
            .iter()
            .all(|s| matches!(s, AlertState::Update | AlertState::Repeat)),
        "{states:?}"
    );
    assert!(
        later.len() <= 6,
        "resolved within six quiet hours: {states:?}"
    );
    assert!(later.iter().all(|x| x.alert_id == e.alert_id));
    let resolved = &later[later.len() - 1];
    assert_eq!(resolved.total, 20);
    assert_eq!(resolved.peak, 20);
    assert_eq!(live.open_alerts(), 0);
}

#[test]
fn replays_count_once_and_the_ids_do_not_change() {
    let run = |replay: bool| {
        let (mut live, closed) = with_history("digital_service");
        let b = closed + 1;
        let ids = burst(&mut live, b, 12, 12);
        if replay {
            for id in &ids {
                live.observe(&seen(id, b * H + 5, "someone-else", "nog een keer"));
            }
        }
        live.close_until(b + 1, now())
    };
    let (once, twice) = (run(false), run(true));
    assert!(!once.is_empty());
    assert_eq!(
        once.iter().map(|e| (&e.id, e.observed)).collect::<Vec<_>>(),
        twice
            .iter()
            .map(|e| (&e.id, e.observed))
            .collect::<Vec<_>>()
    );
}

#[test]
fn one_person_posting_twenty_times_is_no_alert() {
    let (mut live, closed) = with_history("digital_service");
    let b = closed + 1;
    burst(&mut live, b, 20, 1);
    assert!(live.close_until(b + 4, now()).is_empty());
    // Two people are not enough either (min_authors 3)…
    let (mut live, closed) = with_history("digital_service");
    burst(&mut live, closed + 1, 20, 2);
    assert!(live.close_until(closed + 4, now()).is_empty());
    // Each person counts once per bucket, so three people make a count of three: under
    // min_count (5). Five people are enough.
    let (mut live, closed) = with_history("digital_service");
    burst(&mut live, closed + 1, 20, 3);
    assert!(live.close_until(closed + 4, now()).is_empty());
    let (mut live, closed) = with_history("digital_service");
    burst(&mut live, closed + 1, 20, 5);
    assert!(!live.close_until(closed + 4, now()).is_empty());
}

#[test]
fn retweets_late_signals_and_themeless_signals_count_nothing() {
    let (mut live, closed) = with_history("digital_service");
    let mut rt = seen("x", (closed + 1) * H, "a", "RT");
    rt.themes.clear();
    assert_eq!(live.observe(&rt), Observed::Nothing);
    let late = seen("y", closed * H, "a", "te laat");
    assert_eq!(live.observe(&late), Observed::Late);
}

#[test]
fn series_per_channel_when_configured() {
    let mut live = Live::new(settings(), Lifecycle::default(), true, MONDAY, MONDAY - 1);
    let mut s = seen("a", MONDAY * H, "p", "tekst");
    live.observe(&s);
    s.id = "b";
    s.channel = "email";
    live.observe(&s);
    assert_eq!(live.series_count(), 3, "theme, theme/twitter, theme/email");
}

#[test]
fn a_rebuilt_alerter_continues_where_the_first_left_off() {
    // The worker's rebuild: history as bare counts up to a few buckets back, the rest stepped
    // again from the signals. Afterwards it emits what the alerter that never stopped emits.
    let (_, closed) = with_history("digital_service");
    let b = closed + 1;
    // The alerter that never stopped stepped every bucket of the history.
    let mut a = Live::new(settings(), Lifecycle::default(), false, MONDAY, MONDAY - 1);
    for h in MONDAY..b {
        if h % 2 == 0 {
            let id = format!("quiet-{h}");
            a.observe(&seen(&id, h * H, "q", "vraag"));
        }
    }
    assert!(a.close_until(closed, now()).is_empty(), "a quiet history");
    burst(&mut a, b, 25, 20);
    let first = a.close_until(b + 1, now());
    assert_eq!(first[0].state, AlertState::Firing);

    let replay_from = b - 5;
    let mut r = Live::new(
        settings(),
        Lifecycle::default(),
        false,
        MONDAY,
        replay_from - 1,
    );
    for h in MONDAY..replay_from {
        r.load_count("digital_service", None, h, u64::from(h % 2 == 0));
    }
    // The quiet history hours inside the replay, then the burst, as signals.
    for h in replay_from..b {
        if h % 2 == 0 {
            let id = format!("quiet-{h}");
            r.observe(&seen(&id, h * H, "q", "vraag"));
        }
    }
    burst(&mut r, b, 25, 20);
    let replayed = r.close_until(b + 1, now());
    assert_eq!(replayed, first, "the replay gives the same events");
    assert_eq!(a.close_until(b + 8, now()), r.close_until(b + 8, now()));
}

#[test]
fn words_skip_stopwords_placeholders_and_repeats() {
    assert_eq!(
        words("De DigiD app werkt niet, DigiD [email] 12345 storing!"),
        vec!["digid", "werkt", "storing"]
    );
}
