//! The simulation study: `cargo bench -p signaal-detect --bench simulation -- [SERIES] [SEED]
//! [level=low|medium|high] [setting=value…]`. Prints, per level and outbreak, each detector's
//! probability of detection, false alerts per series per week and median time to detection
//! (buckets), then the core's speed and memory. `setting=value` overrides a field of
//! `[alerter.detect]` (`days=14`, `alpha=0.002`) for tuning.

use std::time::Instant;

use signaal_detect::lifecycle::Lifecycle;
use signaal_detect::sim::{run, Cell, Detector, Level, Outbreak};
use signaal_detect::Settings;

fn main() {
    let all: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (pairs, args): (Vec<&String>, Vec<&String>) = all.iter().partition(|a| a.contains('='));
    let series: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(100);
    let seed: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2026);
    let mut only = None;
    let mut overrides = serde_json::Map::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if key == "level" {
            only = Some(value.to_ascii_lowercase());
            continue;
        }
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        overrides.insert(key.to_string(), value);
    }
    let settings: Settings = match serde_json::from_value(serde_json::Value::Object(overrides)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("simulation: bad setting: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = settings.validate() {
        eprintln!("simulation: {e}");
        std::process::exit(2);
    }
    println!("settings: {settings:?}");
    let life = Lifecycle::default();
    println!("{series} series per cell, seed {seed}; 8 weeks of history, 4 weeks evaluated, hourly buckets, NB baseline (φ = 1.5) with daily and weekly seasonality");
    println!("Oracle: true means, last 1 or 2 buckets; OracleThree: true means, last 3 buckets summed; both calibrated to 0.23 false alerts / series / week on other draws");
    println!();
    println!("| level | outbreak | detector | detected | false alerts / series / week | median delay (buckets) |");
    println!("|---|---|---|---|---|---|");
    let mut assessed = 0u64;
    let mut signaal_secs = 0.0;
    for level in [Level::Low, Level::Medium, Level::High] {
        if only
            .as_deref()
            .is_some_and(|o| !format!("{level:?}").eq_ignore_ascii_case(o))
        {
            continue;
        }
        for outbreak in [
            Outbreak::None,
            Outbreak::Burst { factor: 3.0 },
            Outbreak::Burst { factor: 5.0 },
            Outbreak::Rise { factor: 2.0 },
        ] {
            for detector in [
                Detector::FixedThreshold,
                Detector::EarsC1,
                Detector::Signaal,
                Detector::Oracle,
                Detector::OracleThree,
            ] {
                let cell = Cell {
                    level,
                    outbreak,
                    series,
                    seed,
                };
                let started = Instant::now();
                let s = run(cell, detector, &settings, &life);
                if detector == Detector::Signaal {
                    signaal_secs += started.elapsed().as_secs_f64();
                }
                assessed += s.assessments;
                let detected = if outbreak == Outbreak::None {
                    "–".to_string()
                } else {
                    format!("{:.0} %", 100.0 * s.detection())
                };
                let delay = s
                    .median_delay()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "–".into());
                println!(
                    "| {level:?} ({}/h) | {} | {detector:?} | {detected} | {:.3} | {delay} |",
                    level.mean(),
                    describe(outbreak),
                    s.false_per_week()
                );
            }
        }
    }
    println!();
    memory(&settings);
    println!(
        "signaal detector: {assessed} bucket assessments (each a Watch step: regression, window, CUSUM, guard, lifecycle) in {signaal_secs:.1} s — {:.0} a second on one core",
        assessed as f64 / signaal_secs
    );
}

fn describe(o: Outbreak) -> String {
    match o {
        Outbreak::None => "none".into(),
        Outbreak::Burst { factor } => format!("3-hour burst ×{factor}"),
        Outbreak::Rise { factor } => format!("2-day rise to ×{factor}"),
    }
}

/// The process's resident memory, from `/proc/self/status` (Linux), in bytes.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// 10,000 series, each with its whole history filled: what they take.
fn memory(settings: &Settings) {
    const SERIES: usize = 10_000;
    let before = rss();
    let buckets = settings.history_buckets() as i64 + 1;
    let series: Vec<signaal_detect::Series> = (0..SERIES)
        .map(|i| {
            let mut s = signaal_detect::Series::new(settings, 0);
            for b in 0..buckets {
                s.set(b, (b as u64 + i as u64) % 7, b % 97 == 0);
            }
            s
        })
        .collect();
    let after = rss();
    let heap: usize = series.iter().map(|s| s.heap_bytes()).sum::<usize>()
        + SERIES * std::mem::size_of::<signaal_detect::Series>();
    let mib = |b: f64| b / (1024.0 * 1024.0);
    println!();
    println!(
        "memory: {SERIES} series with {buckets} buckets of history each: {:.1} MiB counted \
         ({:.0} bytes a series){}",
        mib(heap as f64),
        heap as f64 / SERIES as f64,
        match (before, after) {
            (Some(b), Some(a)) => format!(
                ", resident memory grew {:.1} MiB",
                mib(a.saturating_sub(b) as f64)
            ),
            _ => String::new(),
        }
    );
    drop(series);
}
