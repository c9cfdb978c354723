//! The detector on made-up histories whose truth is known.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Poisson};

use super::*;

/// Hour 0 of a Monday (2026-11-02 00:00 UTC), as a bucket number.
const MONDAY: i64 = 1_793_577_600 / 3600;

fn draw(rng: &mut StdRng, mean: f64) -> u64 {
    Poisson::new(mean.max(1e-9))
        .map(|p| p.sample(rng) as u64)
        .unwrap_or(0)
}

/// A series watched for `days` days before `MONDAY + days·24`, each bucket drawn by `mean(b)`.
fn history(settings: &Settings, days: i64, seed: u64, mean: impl Fn(i64) -> f64) -> (Series, i64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = MONDAY;
    let now = start + days * 24;
    let mut s = Series::new(settings, start);
    for b in start..now {
        let a = assess(settings, &s, b, 0);
        let y = draw(&mut rng, mean(b));
        s.close(settings, b, y, &a);
        // The history itself has no alarms here: tests of exclusion set them explicitly.
        s.set(b, y, false);
    }
    (s, now)
}

#[test]
fn the_default_settings_are_valid_and_bad_ones_are_named() {
    assert_eq!(Settings::default().validate(), Ok(()));
    let bad = Settings {
        bucket_seconds: 7000,
        ..Settings::default()
    };
    assert_eq!(bad.validate(), Err(SettingsError::Bucket(7000)));
    let bad = Settings {
        alpha: 0.0,
        ..Settings::default()
    };
    assert!(matches!(
        bad.validate(),
        Err(SettingsError::Range { name: "alpha", .. })
    ));
}

#[test]
fn a_steady_series_gets_its_mean_and_a_poisson_threshold() {
    let st = Settings::default();
    let (s, now) = history(&st, 42, 1, |_| 5.0);
    let a = assess(&st, &s, now, 5);
    assert_eq!(a.method, Method::Farrington);
    assert!((a.expected - 5.0).abs() < 1.0, "{a:?}");
    assert!(!a.exceeded);
    assert!(a.baseline >= 50, "{a:?}");
    // Poisson(5) at α = 0.001: the upper bound is 13 or so.
    assert!((11.0..=16.0).contains(&a.upper), "{a:?}");
    let spike = assess(&st, &s, now, 25);
    assert!(spike.exceeded && spike.p_value < 1e-6, "{spike:?}");
}

#[test]
fn monday_morning_is_expected_to_be_busy() {
    let st = Settings::default();
    // Mondays (weekday of MONDAY) at 9–10 h have 20 signals on average, other days 4.
    let monday = weekday(&st, MONDAY);
    let mean = |b: i64| {
        let hour = b.rem_euclid(24);
        if weekday(&st, b) == monday && (9..=10).contains(&hour) {
            20.0
        } else {
            4.0
        }
    };
    let (s, now) = history(&st, 42, 2, mean);
    // `now` is a Monday 00:00; 9 hours later.
    let nine = now + 9;
    let busy = assess(&st, &s, nine, 24);
    assert_eq!(busy.method, Method::Farrington);
    assert!(
        !busy.exceeded,
        "an ordinary Monday morning is no spike: {busy:?}"
    );
    assert!(busy.expected > 12.0, "{busy:?}");
    let tuesday = assess(&st, &s, nine + 24, 24);
    assert!(
        tuesday.exceeded,
        "24 on a Tuesday morning is a spike: {tuesday:?}"
    );
}

#[test]
fn a_quiet_series_alarms_on_a_few_signals() {
    let st = Settings::default();
    let (s, now) = history(&st, 21, 3, |_| 0.0);
    let one = assess(&st, &s, now, 1);
    assert!(!one.exceeded, "{one:?}");
    let three = assess(&st, &s, now, 3);
    assert!(three.exceeded, "{three:?}");
    assert!(three.expected < 0.05);
}

#[test]
fn an_earlier_outbreak_does_not_raise_the_baseline() {
    let st = Settings::default();
    let (mut s, now) = history(&st, 42, 4, |_| 3.0);
    let before = assess(&st, &s, now, 0);
    // Yesterday at this hour ± 1 there was a flare-up of 40 an hour, and it alarmed.
    for b in now - 25..=now - 23 {
        s.set(b, 40, true);
    }
    let after = assess(&st, &s, now, 0);
    assert!(
        (after.expected - before.expected).abs() < 0.3,
        "{before:?} vs {after:?}"
    );
    // Had it not alarmed, down-weighting still keeps most of it out.
    for b in now - 25..=now - 23 {
        s.set(b, 40, false);
    }
    let unflagged = assess(&st, &s, now, 0);
    assert!(unflagged.expected < before.expected + 1.5, "{unflagged:?}");
}

#[test]
fn a_short_history_is_judged_by_ears_and_says_so() {
    let st = Settings::default();
    let (s, now) = history(&st, 2, 5, |_| 4.0);
    let a = assess(&st, &s, now, 4);
    assert_eq!(a.method, Method::EarsC2);
    assert!(!a.exceeded);
    let b = assess(&st, &s, now, 20);
    assert!(b.exceeded, "{b:?}");
    let fresh = Series::new(&st, now);
    let c = assess(&st, &fresh, now, 50);
    assert_eq!(c.method, Method::Insufficient);
    assert!(!c.exceeded);
}

#[test]
fn ears_does_not_alarm_on_two_signals_where_a_third_is_usual() {
    let st = Settings::default();
    // Seven buckets of history with one signal in two of them: EARS's own statistic calls two
    // signals a spike (its deviation is floored at half a signal), a Poisson count would not.
    let start = MONDAY;
    let mut s = Series::new(&st, start);
    for (i, y) in [0, 1, 0, 0, 0, 1, 0, 0, 0, 0].into_iter().enumerate() {
        let b = start + i as i64;
        let a = assess(&st, &s, b, y);
        s.close(&st, b, y, &a);
    }
    let now = start + 10;
    let two = assess(&st, &s, now, 2);
    assert!(matches!(two.method, Method::EarsC2 | Method::EarsC3));
    assert!(!two.exceeded, "{two:?}");
    let six = assess(&st, &s, now, 6);
    assert!(six.exceeded, "{six:?}");
}

#[test]
fn the_cusum_catches_a_slow_rise_under_the_threshold() {
    let st = Settings::default();
    let (mut s, now) = history(&st, 42, 6, |_| 5.0);
    // From now on 9 an hour: under the per-bucket threshold (about 13) every hour.
    let mut rng = StdRng::seed_from_u64(7);
    let mut found = None;
    for h in 0..48 {
        let b = now + h;
        let y = draw(&mut rng, 9.0).min(12);
        let a = assess(&st, &s, b, y);
        let cusum = s.close(&st, b, y, &a);
        if cusum && !a.exceeded {
            found = Some(h);
            break;
        }
    }
    let h = found.expect("the CUSUM never alarmed on a doubled rate");
    assert!(h < 12, "the CUSUM took {h} hours");
}

#[test]
fn the_cusum_stays_quiet_on_an_ordinary_week() {
    let st = Settings::default();
    let (mut s, now) = history(&st, 42, 8, |_| 5.0);
    let mut rng = StdRng::seed_from_u64(9);
    let mut alarms = 0;
    for b in now..now + 24 * 7 {
        let y = draw(&mut rng, 5.0);
        let a = assess(&st, &s, b, y);
        alarms += usize::from(s.close(&st, b, y, &a) || a.exceeded);
    }
    assert!(alarms <= 1, "{alarms} alarms in an ordinary week");
}

#[test]
fn series_keep_a_bounded_history_and_treat_gaps_as_zero() {
    let st = Settings::default();
    let mut s = Series::new(&st, 100);
    s.set(100, 3, false);
    s.set(105, 7, true);
    assert_eq!(s.get(99), None, "before the series was watched");
    assert_eq!(s.get(100), Some((3, false)));
    assert_eq!(s.get(103), Some((0, false)), "no signals is zero");
    assert_eq!(s.get(105), Some((7, true)));
    assert_eq!(s.get(106), None, "not yet closed");
    s.set(105 + 5_000, 1, false);
    assert_eq!(s.get(105), None, "forgotten past the history kept");
    assert_eq!(s.end() - s.get_front(), st.history_buckets() as i64);
}
