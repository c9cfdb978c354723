//! The page's charts: the API's reports put into [`crate::charts`]' shapes, in the page's
//! language, each bar and point linking to the signals behind it.

use signaal_api::reports::{ActionReport, ImpactReport, Key, ParetoReport};
use signaal_api::timeline::TimelineSeries;

use crate::charts;
use crate::page::{Labels, Lang};

fn words(lang: Lang, nl: &str, en: &str) -> String {
    match lang {
        Lang::Nl => nl.to_string(),
        Lang::En => en.to_string(),
    }
}

fn key_id(k: &Key) -> String {
    match (&k.theme, &k.subject) {
        (Some(t), Some(s)) => format!("{t}/{s}"),
        (Some(t), None) => t.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => String::new(),
    }
}

/// A Pareto chart of a report; `href` gives a bar's drill-down link.
pub fn pareto(
    r: &ParetoReport,
    labels: &Labels,
    lang: Lang,
    href: &dyn Fn(&Key) -> Option<String>,
) -> String {
    charts::pareto(&charts::Pareto {
        caption: charts::Caption {
            title: words(lang, "Pareto", "Pareto"),
            no_data: words(
                lang,
                "Geen signalen in deze periode.",
                "No signals in this period.",
            ),
        },
        vital_few: words(lang, "de belangrijkste 80 %", "the vital few (80 %)"),
        rest: words(lang, "de rest", "the rest"),
        cumulative: words(lang, "cumulatief", "cumulative"),
        bars: r
            .pareto
            .rows
            .iter()
            .map(|row| charts::ParetoBar {
                key: key_id(&row.key),
                label: labels.key(&row.key, lang),
                count: row.count,
                share: row.share,
                cumulative_share: row.cumulative_share,
                vital_few: row.vital_few,
                href: href(&row.key),
            })
            .collect(),
    })
}

/// One series of a timeline with its band and the alerter's markers.
pub fn timeline(s: &TimelineSeries, labels: &Labels, lang: Lang) -> String {
    let months_nl = [
        "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ];
    let months_en = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    use chrono::Datelike;
    charts::timeline(&charts::Timeline {
        caption: charts::Caption {
            title: labels.key(&s.key, lang),
            no_data: words(lang, "Geen signalen.", "No signals."),
        },
        count: words(lang, "signalen", "signals"),
        expected: words(lang, "verwacht", "expected"),
        upper: words(lang, "bovengrens", "upper bound"),
        marks: charts::Marks::Points,
        buckets: s
            .buckets
            .iter()
            .map(|b| {
                let m = b.start.month0() as usize;
                let month = match lang {
                    Lang::Nl => months_nl[m % 12],
                    Lang::En => months_en[m % 12],
                };
                charts::Bucket {
                    key: b.start.to_string(),
                    label: format!("{} {month}", b.start.day()),
                    count: b.signals,
                    expected: b.expected,
                    upper: b.upper,
                    alerts: s
                        .alerts
                        .iter()
                        .filter(|a| a.day == b.start)
                        .map(|a| charts::AlertMark {
                            state: a.state.clone(),
                            label: match lang {
                                Lang::Nl => format!(
                                    "{}: {} ({} om {})",
                                    a.state,
                                    a.series,
                                    a.observed,
                                    a.bucket_start.format("%H:%M")
                                ),
                                Lang::En => format!(
                                    "{}: {} ({} at {})",
                                    a.state,
                                    a.series,
                                    a.observed,
                                    a.bucket_start.format("%H:%M")
                                ),
                            },
                        })
                        .collect(),
                    href: None,
                }
            })
            .collect(),
    })
}

/// Frequency × impact with the medians as the quadrants' lines.
pub fn scatter(
    r: &ImpactReport,
    labels: &Labels,
    lang: Lang,
    href: &dyn Fn(&Key) -> Option<String>,
) -> String {
    charts::scatter(&charts::Scatter {
        caption: charts::Caption {
            title: words(lang, "Frequentie × impact", "Frequency × impact"),
            no_data: words(
                lang,
                "Geen signalen in deze periode.",
                "No signals in this period.",
            ),
        },
        x_label: words(lang, "aantal signalen", "signals"),
        y_label: words(lang, "gemiddelde impact (0–10)", "mean impact (0–10)"),
        x_split: r.quadrants.median_count,
        y_split: r.quadrants.median_impact,
        corners: charts::Corners {
            top_left: words(lang, "in de gaten houden", "watch"),
            top_right: words(lang, "nu aanpakken", "act now"),
            bottom_left: words(lang, "volgen", "monitor"),
            bottom_right: words(lang, "snelle winst", "quick wins"),
        },
        points: r
            .quadrants
            .rows
            .iter()
            .map(|row| charts::ScatterPoint {
                key: key_id(&row.key),
                label: labels.key(&row.key, lang),
                frequency: row.count,
                impact: row.mean_impact,
                href: href(&row.key),
            })
            .collect(),
    })
}

/// An action's before and after windows with its verdict.
pub fn before_after(a: &ActionReport, lang: Lang) -> String {
    let Some(m) = &a.measurement else {
        return String::new();
    };
    let period = |p: &signaal_analysis::pdca::PeriodReport| charts::Period {
        count: p.count,
        rate: p.rate_per_week,
        caption: format!(
            "{} – {}",
            p.start.format("%Y-%m-%d"),
            p.end.format("%Y-%m-%d")
        ),
    };
    let tone = match m.verdict {
        signaal_analysis::pdca::Verdict::Fewer => charts::Tone::Good,
        signaal_analysis::pdca::Verdict::More => charts::Tone::Bad,
        _ => charts::Tone::Neutral,
    };
    charts::before_after(&charts::BeforeAfter {
        caption: charts::Caption {
            title: a.action.description.clone(),
            no_data: words(lang, "Nog niet te meten.", "Not measurable yet."),
        },
        before_label: words(lang, "voor", "before"),
        after_label: words(lang, "na", "after"),
        unit: words(lang, "per week", "per week"),
        before: period(&m.before),
        after: period(&m.after),
        verdict: m.summary.clone(),
        tone,
    })
}
