//! The monthly management report: one self-contained, printable HTML page.
//!
//! [`gather`] reads what the page needs through the same report functions the CLI and the API
//! use (`signaal_api::reports`): the period's summary and the one of the period of the same
//! length just before it, the Pareto lists by theme and by subject, and frequency × impact by
//! theme. [`render_html`] is pure: data and labels in, the page out, with its CSS inline (an
//! `@media print` part for A4), its charts inline as SVG from [`crate::charts`], no script and
//! no reference to anything outside the file, so it can be mailed, archived and printed as is.
//! Headings come in Dutch or English ([`Lang`]); theme and subject names are the taxonomy's
//! ([`Labels`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike as _, Days, NaiveDate, Utc};
use signaal_analysis::pdca::{Measurement, Verdict};
use signaal_analysis::{AnalysisConfig, Quadrant};
use signaal_api::reports::{self, ActionReport, ImpactReport, ParetoReport, Summary};
use signaal_api::{Key, Query, ReportError};
use signaal_store::analysis::Dimension;
use signaal_store::Store;

use crate::charts::{self, escape};

/// Patterns listed in the table; the rest are counted.
const MAX_PATTERNS: usize = 20;

/// The language of the page's own words (headings, legends, verdicts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    #[default]
    Nl,
    En,
}

impl Lang {
    /// The language code (`nl`, `en`): the page's `lang` and the key of subject labels.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }
}

/// The names a reader sees for theme and subject ids (the taxonomy's labels), and the
/// language of the page's own words. An id without a label is shown as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub lang: Lang,
    /// Theme id → label (`reachability` → `bereikbaarheid`).
    pub themes: BTreeMap<String, String>,
    /// Subject id → label in `lang` (`digid` → `DigiD`).
    pub subjects: BTreeMap<String, String>,
}

impl Labels {
    pub fn theme<'a>(&'a self, id: &'a str) -> &'a str {
        self.themes.get(id).map_or(id, String::as_str)
    }

    pub fn subject<'a>(&'a self, id: &'a str) -> &'a str {
        self.subjects.get(id).map_or(id, String::as_str)
    }

    /// A report key for people: `theme`, `subject` or `theme / subject`.
    pub fn key(&self, key: &Key) -> String {
        match (&key.theme, &key.subject) {
            (Some(t), Some(s)) => format!("{} / {}", self.theme(t), self.subject(s)),
            (Some(t), None) => self.theme(t).to_string(),
            (None, Some(s)) => self.subject(s).to_string(),
            (None, None) => words(self.lang).everything.to_string(),
        }
    }
}

/// Everything the page shows, read at `generated_at`.
#[derive(Debug, Clone)]
pub struct ReportData {
    pub generated_at: DateTime<Utc>,
    /// The period's summary (its `query` is the period) and the previous period's: as many
    /// days, ending the day before.
    pub summary: Summary,
    pub previous: Summary,
    /// The period's Pareto lists by theme and by subject.
    pub themes: ParetoReport,
    pub subjects: ParetoReport,
    /// The period's frequency × impact by theme.
    pub impact: ImpactReport,
    /// The recurrence window (`analysis.recurrence.window_days`) that the patterns count in.
    pub window_days: u32,
}

/// The period of the same length as `query`'s that ends the day before it starts, with the
/// same filters.
pub fn previous_period(query: &Query) -> Result<Query, ReportError> {
    let days = u64::try_from((query.to - query.from).num_days() + 1).unwrap_or(1);
    let out_of_range = || {
        ReportError::Invalid(format!(
            "the period before {} ({days} days) starts before the year {}",
            query.from,
            reports::YEARS.start()
        ))
    };
    let to = query.from.pred_opt().ok_or_else(out_of_range)?;
    let from = query
        .from
        .checked_sub_days(Days::new(days))
        .ok_or_else(out_of_range)?;
    if !reports::YEARS.contains(&from.year()) {
        return Err(out_of_range());
    }
    Ok(Query {
        from,
        to,
        ..query.clone()
    })
}

/// Reads the report for `query` (checked by the caller against the taxonomy) at `now`: the
/// summaries of the period and of the one before it, the Pareto lists and the quadrants, side
/// by side.
pub async fn gather(
    store: &Store,
    cfg: &AnalysisConfig,
    query: &Query,
    now: DateTime<Utc>,
) -> Result<ReportData, ReportError> {
    let before = previous_period(query)?;
    let (summary, previous, themes, subjects, impact) = tokio::try_join!(
        reports::summary(store, cfg, query, now),
        reports::summary(store, cfg, &before, now),
        reports::pareto_report(store, query, Dimension::Theme),
        reports::pareto_report(store, query, Dimension::Subject),
        reports::impact_report(store, query, Dimension::Theme),
    )?;
    Ok(ReportData {
        generated_at: now,
        summary,
        previous,
        themes,
        subjects,
        impact,
        window_days: cfg.recurrence.window_days,
    })
}

/// The page's own words in one language.
struct Words {
    title: &'static str,
    period: &'static str,
    days: &'static str,
    previous: &'static str,
    up_to: &'static str,
    generated: &'static str,
    filters: &'static str,
    everything: &'static str,
    key_numbers: &'static str,
    measure: &'static str,
    this_period: &'static str,
    change: &'static str,
    signals: &'static str,
    returning: &'static str,
    patterns_count: &'static str,
    act_now_count: &'static str,
    new: &'static str,
    pareto_themes: &'static str,
    pareto_subjects: &'static str,
    pareto_note: &'static str,
    vital_few: &'static str,
    rest: &'static str,
    cumulative: &'static str,
    theme: &'static str,
    subject: &'static str,
    count: &'static str,
    share: &'static str,
    total: &'static str,
    no_signals: &'static str,
    impact: &'static str,
    impact_note: &'static str,
    mean_impact: &'static str,
    quadrant: &'static str,
    act_now: &'static str,
    watch: &'static str,
    quick_wins: &'static str,
    monitor: &'static str,
    patterns: &'static str,
    patterns_note: &'static str,
    first: &'static str,
    last: &'static str,
    no_patterns: &'static str,
    more: &'static str,
    actions: &'static str,
    no_actions: &'static str,
    owner: &'static str,
    start: &'static str,
    status: &'static str,
    before: &'static str,
    after: &'static str,
    per_week: &'static str,
    not_begun: &'static str,
    fewer: &'static str,
    more_signals: &'static str,
    no_change: &'static str,
    not_enough: &'static str,
    runs_until: &'static str,
    in_both: &'static str,
    rate_ratio: &'static str,
    cannot_measure: &'static str,
    classified_by: &'static str,
    mixed: &'static str,
    not_classified: &'static str,
    months: [&'static str; 12],
    short_months: [&'static str; 12],
}

const NL: Words = Words {
    title: "Klantsignalen: maandrapportage",
    period: "Periode",
    days: "dagen",
    previous: "vergeleken met",
    up_to: "tot en met",
    generated: "Gemaakt op",
    filters: "Alleen",
    everything: "alles",
    key_numbers: "Kerncijfers",
    measure: "Wat",
    this_period: "Deze periode",
    change: "Verandering",
    signals: "Signalen",
    returning: "Klanten die terugkwamen",
    patterns_count: "Patronen (3x of vaker)",
    act_now_count: "Thema's om nu aan te pakken",
    new: "nieuw",
    pareto_themes: "Pareto van thema's",
    pareto_subjects: "Pareto van onderwerpen",
    pareto_note: "De donkere balken zijn de weinige die samen 80 % van de signalen maken.",
    vital_few: "samen 80 %",
    rest: "overige",
    cumulative: "cumulatief",
    theme: "Thema",
    subject: "Onderwerp",
    count: "Aantal",
    share: "Aandeel",
    total: "Totaal (een signaal kan meer dan één thema of onderwerp hebben)",
    no_signals: "Geen signalen in deze periode.",
    impact: "Frequentie × impact",
    impact_note: "Elk thema tegen de medianen van aantal en gemiddelde impact (0–10).",
    mean_impact: "Gemiddelde impact",
    quadrant: "Kwadrant",
    act_now: "nu aanpakken",
    watch: "in de gaten houden",
    quick_wins: "snelle winst",
    monitor: "volgen",
    patterns: "Terugkerende patronen",
    patterns_note: "1x toeval, 2x opmerkelijk, 3x patroon: thema × onderwerp dat 3 keer of vaker voorkwam in de",
    first: "Eerste",
    last: "Laatste",
    no_patterns: "Geen patronen in dit venster.",
    more: "en nog",
    actions: "Verbeteracties",
    no_actions: "Geen verbeteracties geregistreerd.",
    owner: "eigenaar",
    start: "start",
    status: "status",
    before: "voor",
    after: "na",
    per_week: "per week",
    not_begun: "de meting is nog niet begonnen",
    fewer: "minder signalen",
    more_signals: "meer signalen",
    no_change: "geen aanwijzing voor verandering",
    not_enough: "nog niet genoeg gegevens",
    runs_until: "de periode na loopt tot",
    in_both: "signalen in beide perioden samen",
    rate_ratio: "verhouding na/voor",
    cannot_measure: "niet te meten",
    classified_by: "Geclassificeerd door",
    mixed: "verschillende versies; `signaal reclassify` brengt ze naar de huidige",
    not_classified: "Geen geclassificeerde signalen in deze periode.",
    months: [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ],
    short_months: [
        "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ],
};

const EN: Words = Words {
    title: "Customer signals: monthly report",
    period: "Period",
    days: "days",
    previous: "compared with",
    up_to: "up to",
    generated: "Generated",
    filters: "Only",
    everything: "everything",
    key_numbers: "Key numbers",
    measure: "What",
    this_period: "This period",
    change: "Change",
    signals: "Signals",
    returning: "Customers who came back",
    patterns_count: "Patterns (3x or more)",
    act_now_count: "Themes to act on now",
    new: "new",
    pareto_themes: "Pareto of themes",
    pareto_subjects: "Pareto of subjects",
    pareto_note: "The dark bars are the few that together make 80 % of the signals.",
    vital_few: "together 80 %",
    rest: "the rest",
    cumulative: "cumulative",
    theme: "Theme",
    subject: "Subject",
    count: "Count",
    share: "Share",
    total: "Total (a signal can have more than one theme or subject)",
    no_signals: "No signals in this period.",
    impact: "Frequency × impact",
    impact_note: "Each theme against the medians of its count and mean impact (0–10).",
    mean_impact: "Mean impact",
    quadrant: "Quadrant",
    act_now: "act now",
    watch: "watch",
    quick_wins: "quick wins",
    monitor: "monitor",
    patterns: "Recurring patterns",
    patterns_note:
        "1x coincidence, 2x notable, 3x pattern: theme × subject seen 3 times or more in the",
    first: "First",
    last: "Last",
    no_patterns: "No patterns in this window.",
    more: "and",
    actions: "Improvement actions",
    no_actions: "No improvement actions registered.",
    owner: "owner",
    start: "start",
    status: "status",
    before: "before",
    after: "after",
    per_week: "per week",
    not_begun: "the measurement has not begun",
    fewer: "fewer signals",
    more_signals: "more signals",
    no_change: "no evidence of change",
    not_enough: "not yet enough data",
    runs_until: "the after period runs until",
    in_both: "signals in both periods together",
    rate_ratio: "rate ratio after/before",
    cannot_measure: "cannot be measured",
    classified_by: "Classified by",
    mixed: "mixed versions; `signaal reclassify` brings them to the current one",
    not_classified: "No classified signals in this period.",
    months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    short_months: [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Nl => &NL,
        Lang::En => &EN,
    }
}

/// A day for people: `1 november 2026`, `1 November 2026`.
fn date(d: NaiveDate, w: &Words) -> String {
    let month = w.months.get(d.month0() as usize).copied().unwrap_or("");
    format!("{} {month} {}", d.day(), d.year())
}

/// A number with `decimals` decimals, with a decimal comma in Dutch; `∞` for infinity.
fn decimal(v: f64, decimals: usize, lang: Lang) -> String {
    if v.is_infinite() {
        return "∞".into();
    }
    let s = format!("{:.decimals$}", if v.is_nan() { 0.0 } else { v });
    match lang {
        Lang::Nl => s.replace('.', ","),
        Lang::En => s,
    }
}

/// `word` with its first letter a capital.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A share (0–1) as a percentage.
fn percent(share: f64, lang: Lang) -> String {
    format!("{} %", decimal(share * 100.0, 1, lang))
}

/// The change from `previous` to `now`: `+12 %`, `−8 %`, `0 %`, or "new" after nothing.
fn change(now: u64, previous: u64, w: &Words, lang: Lang) -> String {
    if previous == 0 {
        return if now == 0 { "0 %".into() } else { w.new.into() };
    }
    let p = (now as f64 - previous as f64) / previous as f64 * 100.0;
    let rounded = decimal(p.abs(), 0, lang);
    if rounded == "0" {
        "0 %".into()
    } else if p > 0.0 {
        format!("+{rounded} %")
    } else {
        format!("−{rounded} %")
    }
}

/// A p-value as `signaal_analysis::pdca` writes it, in the page's language.
fn p_value(p: f64, lang: Lang) -> String {
    match p {
        _ if p < 0.0001 => format!("< {}", decimal(0.0001, 4, lang)),
        _ if p < 0.001 => format!("= {}", decimal(p, 4, lang)),
        _ if p < 0.1 => format!("= {}", decimal(p, 3, lang)),
        _ => format!("= {}", decimal(p, 2, lang)),
    }
}

fn quadrant_name(q: Quadrant, w: &Words) -> &'static str {
    match q {
        Quadrant::ActNow => w.act_now,
        Quadrant::Watch => w.watch,
        Quadrant::QuickWins => w.quick_wins,
        Quadrant::Monitor => w.monitor,
    }
}

/// The verdict of a measurement in words, and its tone.
fn verdict(m: &Measurement, lang: Lang) -> (String, charts::Tone) {
    let w = words(lang);
    match (m.verdict, &m.rate_ratio) {
        (Verdict::NotYetEnoughData, _) if !m.complete => (
            format!(
                "{}: {} {}",
                w.not_enough,
                w.runs_until,
                date(last_day(m.after.end), w)
            ),
            charts::Tone::Neutral,
        ),
        (Verdict::NotYetEnoughData, _) | (_, None) => (
            format!(
                "{}: {} {}",
                w.not_enough,
                m.before.count.saturating_add(m.after.count),
                w.in_both
            ),
            charts::Tone::Neutral,
        ),
        (v, Some(rr)) => {
            let (headline, p, tone) = match v {
                Verdict::Fewer => (w.fewer, rr.p_fewer, charts::Tone::Good),
                Verdict::More => (w.more_signals, rr.p_more, charts::Tone::Bad),
                _ => (
                    w.no_change,
                    rr.p_fewer.min(rr.p_more),
                    charts::Tone::Neutral,
                ),
            };
            (
                format!(
                    "{headline}: {} {} ({}–{}), p {}",
                    w.rate_ratio,
                    decimal(rr.estimate, 2, lang),
                    decimal(rr.lower, 2, lang),
                    decimal(rr.upper, 2, lang),
                    p_value(p, lang)
                ),
                tone,
            )
        }
    }
}

/// The last day of a window that ends (exclusively) at `end`.
fn last_day(end: DateTime<Utc>) -> NaiveDate {
    let d = end.date_naive();
    if end == d.and_time(chrono::NaiveTime::MIN).and_utc() {
        d.pred_opt().unwrap_or(d)
    } else {
        d
    }
}

/// The days of a window in short: `19 sep – 13 nov 2026`, `8 dec 2026 – 2 feb 2027`.
fn window(start: DateTime<Utc>, end: DateTime<Utc>, w: &Words) -> String {
    let (first, last) = (start.date_naive(), last_day(end));
    let short = |d: NaiveDate| {
        let month = w
            .short_months
            .get(d.month0() as usize)
            .copied()
            .unwrap_or("");
        format!("{} {month}", d.day())
    };
    if first.year() == last.year() {
        format!("{} – {} {}", short(first), short(last), last.year())
    } else {
        format!(
            "{} {} – {} {}",
            short(first),
            first.year(),
            short(last),
            last.year()
        )
    }
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, sans-serif; color: #1f2933; background: #fff; margin: 0 auto;
  max-width: 60rem; padding: 1.5rem; line-height: 1.45; }
header { border-bottom: 3px solid #1d4e89; padding-bottom: .75rem; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; border-bottom: 1px solid #cbd2d9; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
p { margin: .3rem 0; }
.muted { color: #616e7c; }
figure { margin: .75rem 0; }
svg { display: block; max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .5rem 0; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }
th { font-weight: 600; background: #f5f7fa; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.vital td:first-child { border-left: 4px solid #1d4e89; }
.numbers td.n:nth-child(2) { font-weight: 700; font-size: 1.05rem; }
.action { border-top: 1px solid #e4e7eb; padding-top: .5rem; margin-top: 1rem; }
.verdict { font-weight: 600; }
footer { margin-top: 2rem; border-top: 1px solid #cbd2d9; padding-top: .5rem; font-size: .85rem; }
@media print {
  @page { size: A4; margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, tr, .action, .numbers { break-inside: avoid; page-break-inside: avoid; }
  #pareto-subjects, #impact, #patterns, #actions { break-before: page; page-break-before: always; }
  th { background: none; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// The page: heading, key numbers against the previous period, the Pareto charts of themes and
/// subjects with their tables, the frequency × impact scatter, the patterns, the improvement
/// actions with their before/after charts and verdicts, and the classifier versions.
pub fn render_html(data: &ReportData, labels: &Labels) -> String {
    let lang = labels.lang;
    let w = words(lang);
    let q = &data.summary.query;
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"signaal\">\n<title>{} — {} – {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        lang.code(),
        escape(w.title),
        escape(&date(q.from, w)),
        escape(&date(q.to, w)),
    );
    heading(&mut o, data, labels);
    key_numbers(&mut o, data, w, lang);
    pareto_section(
        &mut o,
        "pareto-themes",
        w.pareto_themes,
        w.theme,
        &data.themes,
        labels,
    );
    pareto_section(
        &mut o,
        "pareto-subjects",
        w.pareto_subjects,
        w.subject,
        &data.subjects,
        labels,
    );
    impact_section(&mut o, &data.impact, labels);
    patterns_section(&mut o, data, labels);
    actions_section(&mut o, &data.summary.actions, labels);
    footer(&mut o, data, w);
    o.push_str("</body>\n</html>\n");
    o
}

fn heading(o: &mut String, data: &ReportData, labels: &Labels) {
    let w = words(labels.lang);
    let (q, p) = (&data.summary.query, &data.previous.query);
    let days = (q.to - q.from).num_days() + 1;
    let _ = write!(
        o,
        "<header>\n<h1>{}</h1>\n<p class=\"period\"><strong>{}: {} – {}</strong> ({days} {}); {} {} – {}</p>\n",
        escape(w.title),
        escape(w.period),
        escape(&date(q.from, w)),
        escape(&date(q.to, w)),
        escape(w.days),
        escape(w.previous),
        escape(&date(p.from, w)),
        escape(&date(p.to, w)),
    );
    let mut filters = Vec::new();
    if let Some(t) = &q.theme {
        filters.push(format!("{}: {}", w.theme.to_lowercase(), labels.theme(t)));
    }
    if let Some(s) = &q.subject {
        filters.push(format!(
            "{}: {}",
            w.subject.to_lowercase(),
            labels.subject(s)
        ));
    }
    for (name, value) in [
        ("channel", &q.channel),
        ("cause", &q.cause),
        ("kind", &q.kind),
    ] {
        if let Some(v) = value {
            filters.push(format!("{name}: {v}"));
        }
    }
    if !filters.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"filters\">{}: {}</p>",
            escape(w.filters),
            escape(&filters.join(", "))
        );
    }
    let _ = write!(
        o,
        "<p class=\"generated muted\">{} {}, {} UTC</p>\n</header>\n",
        escape(w.generated),
        escape(&date(data.generated_at.date_naive(), w)),
        data.generated_at.format("%H:%M"),
    );
}

fn key_numbers(o: &mut String, data: &ReportData, w: &Words, lang: Lang) {
    let (s, p) = (&data.summary, &data.previous);
    let rows: [(&str, u64, u64); 4] = [
        (w.signals, s.signals, p.signals),
        (
            w.returning,
            s.returning_customers as u64,
            p.returning_customers as u64,
        ),
        (
            w.patterns_count,
            s.patterns.len() as u64,
            p.patterns.len() as u64,
        ),
        (
            w.act_now_count,
            s.act_now.len() as u64,
            p.act_now.len() as u64,
        ),
    ];
    let _ = write!(
        o,
        "<section id=\"key-numbers\">\n<h2>{}</h2>\n<table class=\"numbers\">\n<thead><tr><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{} – {}</th><th class=\"n\">{}</th></tr></thead>\n<tbody>\n",
        escape(w.key_numbers),
        escape(w.measure),
        escape(w.this_period),
        escape(&date(p.query.from, w)),
        escape(&date(p.query.to, w)),
        escape(w.change),
    );
    for (what, now, before) in rows {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\">{now}</td><td class=\"n\">{before}</td><td class=\"n\">{}</td></tr>",
            escape(what),
            escape(&change(now, before, w, lang)),
        );
    }
    o.push_str("</tbody>\n</table>\n</section>\n");
}

fn pareto_section(
    o: &mut String,
    id: &str,
    title: &str,
    column: &str,
    report: &ParetoReport,
    labels: &Labels,
) {
    let lang = labels.lang;
    let w = words(lang);
    let chart = charts::Pareto {
        caption: charts::Caption {
            title: title.to_string(),
            no_data: w.no_signals.to_string(),
        },
        vital_few: w.vital_few.to_string(),
        rest: w.rest.to_string(),
        cumulative: w.cumulative.to_string(),
        bars: report
            .pareto
            .rows
            .iter()
            .map(|r| charts::ParetoBar {
                key: r.key.label(),
                label: labels.key(&r.key),
                count: r.count,
                share: r.share,
                cumulative_share: r.cumulative_share,
                vital_few: r.vital_few,
                href: None,
            })
            .collect(),
    };
    let _ = write!(
        o,
        "<section id=\"{id}\">\n<h2>{}</h2>\n<figure>{}</figure>\n",
        escape(title),
        charts::pareto(&chart)
    );
    if report.pareto.rows.is_empty() {
        o.push_str("</section>\n");
        return;
    }
    let _ = write!(
        o,
        "<p class=\"muted\">{}</p>\n<table class=\"pareto\">\n<thead><tr><th class=\"n\">#</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></thead>\n<tbody>\n",
        escape(w.pareto_note),
        escape(column),
        escape(w.count),
        escape(w.share),
        escape(&capitalised(w.cumulative)),
    );
    for (i, r) in report.pareto.rows.iter().enumerate() {
        let _ = writeln!(
            o,
            "<tr{}><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if r.vital_few { " class=\"vital\"" } else { "" },
            i + 1,
            escape(&labels.key(&r.key)),
            r.count,
            percent(r.share, lang),
            percent(r.cumulative_share, lang),
        );
    }
    let _ = writeln!(
        o,
        "</tbody>\n<tfoot><tr><td></td><td>{}</td><td class=\"n\">{}</td><td></td><td></td></tr></tfoot>\n</table>\n</section>",
        escape(w.total),
        report.pareto.total
    );
}

fn impact_section(o: &mut String, report: &ImpactReport, labels: &Labels) {
    let lang = labels.lang;
    let w = words(lang);
    let q = &report.quadrants;
    let chart = charts::Scatter {
        caption: charts::Caption {
            title: w.impact.to_string(),
            no_data: w.no_signals.to_string(),
        },
        x_label: w.signals.to_lowercase(),
        y_label: w.mean_impact.to_lowercase(),
        x_split: q.median_count,
        y_split: q.median_impact,
        corners: charts::Corners {
            top_left: w.watch.to_string(),
            top_right: w.act_now.to_string(),
            bottom_left: w.monitor.to_string(),
            bottom_right: w.quick_wins.to_string(),
        },
        points: q
            .rows
            .iter()
            .map(|r| charts::ScatterPoint {
                key: r.key.label(),
                label: labels.key(&r.key),
                frequency: r.count,
                impact: r.mean_impact,
                href: None,
            })
            .collect(),
    };
    let _ = write!(
        o,
        "<section id=\"impact\">\n<h2>{}</h2>\n<p class=\"muted\">{}</p>\n<figure>{}</figure>\n",
        escape(w.impact),
        escape(w.impact_note),
        charts::scatter(&chart)
    );
    if !q.rows.is_empty() {
        let _ = write!(
            o,
            "<table class=\"quadrants\">\n<thead><tr><th>{}</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></thead>\n<tbody>\n",
            escape(w.quadrant),
            escape(w.theme),
            escape(w.count),
            escape(w.mean_impact),
        );
        for r in &q.rows {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(quadrant_name(r.quadrant, w)),
                escape(&labels.key(&r.key)),
                r.count,
                decimal(r.mean_impact, 2, lang),
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
    o.push_str("</section>\n");
}

fn patterns_section(o: &mut String, data: &ReportData, labels: &Labels) {
    let w = words(labels.lang);
    let patterns = &data.summary.patterns;
    let _ = write!(
        o,
        "<section id=\"patterns\">\n<h2>{}</h2>\n<p class=\"muted\">{} {} {} {} {}.</p>\n",
        escape(w.patterns),
        escape(w.patterns_note),
        data.window_days,
        escape(w.days),
        escape(w.up_to),
        escape(&date(data.summary.query.to, w)),
    );
    if patterns.is_empty() {
        let _ = writeln!(o, "<p>{}</p>\n</section>", escape(w.no_patterns));
        return;
    }
    let _ = write!(
        o,
        "<table class=\"patterns\">\n<thead><tr><th>{}</th><th>{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></thead>\n<tbody>\n",
        escape(w.theme),
        escape(w.subject),
        escape(w.count),
        escape(w.first),
        escape(w.last),
    );
    for p in patterns.iter().take(MAX_PATTERNS) {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}x</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(p.key.theme.as_deref().map_or("", |t| labels.theme(t))),
            escape(p.key.subject.as_deref().map_or("", |s| labels.subject(s))),
            p.count,
            escape(&date(p.first.date_naive(), w)),
            escape(&date(p.last.date_naive(), w)),
        );
    }
    o.push_str("</tbody>\n</table>\n");
    if patterns.len() > MAX_PATTERNS {
        let _ = writeln!(
            o,
            "<p class=\"muted\">… {} {}</p>",
            escape(w.more),
            patterns.len() - MAX_PATTERNS
        );
    }
    o.push_str("</section>\n");
}

fn actions_section(o: &mut String, actions: &[ActionReport], labels: &Labels) {
    let lang = labels.lang;
    let w = words(lang);
    let _ = write!(
        o,
        "<section id=\"actions\">\n<h2>{}</h2>\n",
        escape(w.actions)
    );
    if actions.is_empty() {
        let _ = writeln!(o, "<p>{}</p>\n</section>", escape(w.no_actions));
        return;
    }
    for a in actions {
        let act = &a.action;
        let target = labels.key(&Key {
            theme: act.theme.clone(),
            subject: act.subject.clone(),
        });
        let _ = write!(
            o,
            "<article class=\"action\" id=\"action-{}\">\n<h3>#{} {}: {}</h3>\n<p class=\"muted\">{} {} · {} {} · {} {}</p>\n",
            act.id,
            act.id,
            escape(&target),
            escape(&act.description),
            escape(w.owner),
            escape(&act.owner),
            escape(w.start),
            escape(&date(act.start_date, w)),
            escape(w.status),
            escape(&act.status),
        );
        match (&a.measurement, &a.error) {
            (Some(m), _) => {
                let (text, tone) = verdict(m, lang);
                let chart = charts::BeforeAfter {
                    caption: charts::Caption {
                        title: format!("#{} {target}: {} / {}", act.id, w.before, w.after),
                        no_data: w.not_begun.to_string(),
                    },
                    before_label: w.before.to_string(),
                    after_label: w.after.to_string(),
                    unit: w.per_week.to_string(),
                    before: charts::Period {
                        count: m.before.count,
                        rate: m.before.rate_per_week,
                        caption: window(m.before.start, m.before.end, w),
                    },
                    after: charts::Period {
                        count: m.after.count,
                        rate: m.after.rate_per_week,
                        caption: window(m.after.start, m.after.end, w),
                    },
                    verdict: text.clone(),
                    tone,
                };
                // The chart says the verdict (and has it in its accessible name); it says
                // it too when the windows have not begun, in place of the bars.
                let _ = writeln!(o, "<figure>{}</figure>", charts::before_after(&chart));
                if m.before.rate_per_week.is_none() && m.after.rate_per_week.is_none() {
                    let _ = writeln!(o, "<p class=\"verdict\">{}</p>", escape(&text));
                }
            }
            (None, error) => {
                let _ = writeln!(
                    o,
                    "<p class=\"verdict\">{}{}</p>",
                    escape(w.cannot_measure),
                    escape(
                        &error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ),
                );
            }
        }
        o.push_str("</article>\n");
    }
    o.push_str("</section>\n");
}

fn footer(o: &mut String, data: &ReportData, w: &Words) {
    let versions: Vec<String> = data
        .summary
        .classifiers
        .iter()
        .map(|v| {
            format!(
                "{} ({} {})",
                v.classifier,
                v.signals,
                w.signals.to_lowercase()
            )
        })
        .collect();
    let line = match versions.len() {
        0 => w.not_classified.to_string(),
        1 => format!("{} {}.", w.classified_by, versions.join("")),
        _ => format!("{} {}: {}.", w.classified_by, versions.join(", "), w.mixed),
    };
    let _ = writeln!(
        o,
        "<footer id=\"classifiers\">\n<p>{}</p>\n</footer>",
        escape(&line)
    );
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use signaal_analysis::pdca::{PeriodReport, RateRatio};
    use signaal_analysis::recurrence::{Level, Recurring};
    use signaal_analysis::{pareto, quadrants, ImpactRow};
    use signaal_store::analysis::{Action, VersionCount};

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn theme(t: &str) -> Key {
        Key {
            theme: Some(t.into()),
            subject: None,
        }
    }

    fn subject(s: &str) -> Key {
        Key {
            theme: None,
            subject: Some(s.into()),
        }
    }

    fn summary(
        from: &str,
        to: &str,
        signals: u64,
        patterns: usize,
        actions: Vec<ActionReport>,
    ) -> Summary {
        let q = Query::new(day(from), day(to));
        Summary {
            query: q,
            signals,
            classifiers: vec![VersionCount {
                classifier: "default-2026.12.1".into(),
                signals,
            }],
            vital_few: Vec::new(),
            patterns: (0..patterns)
                .map(|i| Recurring {
                    key: Key {
                        theme: Some("digital_service".into()),
                        subject: Some(format!("s{i}")),
                    },
                    level: Level::Pattern,
                    count: 3 + i as u64,
                    first: at(2026, 10, 1),
                    last: at(2026, 11, 20),
                    samples: Vec::new(),
                })
                .collect(),
            returning_customers: 15,
            act_now: Vec::new(),
            actions,
        }
    }

    fn action(id: i64, measurement: Option<Measurement>, error: Option<String>) -> ActionReport {
        ActionReport {
            action: Action {
                id,
                theme: Some("digital_service".into()),
                subject: Some("digid".into()),
                description: "DigiD-koppeling hersteld".into(),
                owner: "ict".into(),
                start_date: day("2026-09-01"),
                status: "done".into(),
                created_at: at(2026, 9, 1),
                updated_at: at(2026, 9, 1),
            },
            measurement,
            error,
        }
    }

    fn measurement() -> Measurement {
        let period = |start, end, count| PeriodReport {
            start,
            end,
            weeks: 8.0,
            count,
            rate_per_week: Some(count as f64 / 8.0),
            volume: None,
        };
        Measurement {
            before: period(at(2026, 7, 7), at(2026, 9, 1), 40),
            after: period(at(2026, 9, 1), at(2026, 10, 27), 12),
            complete: true,
            rate_ratio: Some(RateRatio {
                estimate: 0.3,
                lower: 0.15,
                upper: 0.57,
                confidence: 0.95,
                p_fewer: 0.00002,
                p_more: 0.99999,
                n: 52,
                p0: 0.5,
            }),
            verdict: Verdict::Fewer,
            summary: "fewer signals: rate ratio 0.30 (0.15–0.57), p < 0.0001".into(),
        }
    }

    fn data(theme_counts: &[(&str, u64)], subject_counts: &[(&str, u64)]) -> ReportData {
        let q = Query::new(day("2026-11-01"), day("2026-11-30"));
        let themes = pareto(theme_counts.iter().map(|(k, n)| (theme(k), *n)));
        let subjects = pareto(subject_counts.iter().map(|(k, n)| (subject(k), *n)));
        let impact = quadrants(
            theme_counts
                .iter()
                .enumerate()
                .map(|(i, (k, n))| ImpactRow {
                    key: theme(k),
                    count: *n,
                    impact_sum: *n as f64 * (1.0 + i as f64),
                }),
        );
        ReportData {
            generated_at: Utc
                .with_ymd_and_hms(2026, 12, 1, 7, 30, 0)
                .single()
                .unwrap_or_default(),
            summary: summary(
                "2026-11-01",
                "2026-11-30",
                210,
                3,
                vec![
                    action(1, Some(measurement()), None),
                    action(
                        2,
                        None,
                        Some("the action's windows fall outside the representable dates".into()),
                    ),
                ],
            ),
            previous: summary("2026-10-02", "2026-10-31", 168, 1, Vec::new()),
            themes: ParetoReport {
                query: q.clone(),
                dimension: Dimension::Theme,
                classifiers: Vec::new(),
                pareto: themes,
            },
            subjects: ParetoReport {
                query: q.clone(),
                dimension: Dimension::Subject,
                classifiers: Vec::new(),
                pareto: subjects,
            },
            impact: ImpactReport {
                query: q,
                dimension: Dimension::Theme,
                classifiers: Vec::new(),
                quadrants: impact,
            },
            window_days: 90,
        }
    }

    fn labels(lang: Lang) -> Labels {
        Labels {
            lang,
            themes: [
                ("digital_service", "digitale dienstverlening"),
                ("reachability", "bereikbaarheid"),
                ("payment", "betaling / uitbetaling"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            subjects: [("digid", "DigiD")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The part of the page inside `<section id="…">`.
    fn section<'a>(html: &'a str, id: &str) -> &'a str {
        let open = format!("<section id=\"{id}\">");
        let start = html
            .find(&open)
            .unwrap_or_else(|| panic!("no section {id}"));
        let rest = &html[start..];
        &rest[..rest.find("</section>").unwrap_or(rest.len())]
    }

    fn count(s: &str, needle: &str) -> usize {
        s.matches(needle).count()
    }

    #[test]
    fn the_page_has_every_section_and_a_mark_per_row() {
        let d = data(
            &[
                ("digital_service", 80),
                ("reachability", 60),
                ("payment", 20),
                ("handoffs", 5),
            ],
            &[("digid", 30), ("website", 20), ("app", 2)],
        );
        let html = render_html(&d, &labels(Lang::Nl));
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"nl\">"));
        assert_eq!(count(&html, "<!DOCTYPE html>"), 1);
        assert!(html.trim_end().ends_with("</html>"));
        for id in [
            "key-numbers",
            "pareto-themes",
            "pareto-subjects",
            "impact",
            "patterns",
            "actions",
        ] {
            section(&html, id);
        }
        assert!(html.contains("<footer id=\"classifiers\">"));
        assert!(html.contains("Geclassificeerd door default-2026.12.1 (210 signalen)."));
        assert!(html.contains("@media print"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("src="));
        assert!(!html.contains("href=\"http"));

        let themes = section(&html, "pareto-themes");
        assert_eq!(count(themes, "<svg"), 1);
        assert_eq!(count(themes, r#"class="bar""#), 4);
        assert!(themes.contains(r#"data-key="digital_service" data-value="80""#));
        assert!(themes.contains("<td>digitale dienstverlening</td>"));
        assert!(
            themes.contains("<td>handoffs</td>"),
            "an id without a label shows as itself"
        );
        assert_eq!(
            count(themes, "<tr class=\"vital\">"),
            d.themes.pareto.rows.iter().filter(|r| r.vital_few).count()
        );
        let subjects = section(&html, "pareto-subjects");
        assert_eq!(count(subjects, r#"class="bar""#), 3);
        assert!(subjects.contains("<td>DigiD</td>"));
        let impact = section(&html, "impact");
        assert_eq!(count(impact, r#"class="point""#), 4);
        assert!(impact.contains(">nu aanpakken<"));

        // Key numbers: this period, the one before, the change.
        let numbers = section(&html, "key-numbers");
        assert!(numbers.contains("<td>Signalen</td><td class=\"n\">210</td><td class=\"n\">168</td><td class=\"n\">+25 %</td>"), "{numbers}");
        assert!(numbers
            .contains("<td class=\"n\">3</td><td class=\"n\">1</td><td class=\"n\">+200 %</td>"));
        assert!(numbers
            .contains("<td class=\"n\">15</td><td class=\"n\">15</td><td class=\"n\">0 %</td>"));

        let patterns = section(&html, "patterns");
        assert_eq!(count(patterns, "<tr><td>digitale dienstverlening</td>"), 3);
        assert!(patterns.contains("90 dagen"));

        // Actions: a measured one with two bars and its verdict, one that cannot be measured.
        let actions = section(&html, "actions");
        assert_eq!(count(actions, "<article class=\"action\""), 2);
        assert_eq!(count(actions, r#"class="bar""#), 2);
        assert!(actions.contains(r#"data-key="before" data-value="40""#));
        assert!(actions.contains(r#"data-key="after" data-value="12""#));
        assert!(
            actions.contains(
                "<desc>minder signalen: verhouding na/voor 0,30 (0,15–0,57), p &lt; 0,0001</desc>"
            ),
            "{actions}"
        );
        assert!(actions.contains(">7 jul – 31 aug 2026</text>"), "{actions}");
        assert!(actions.contains(">1 sep – 26 okt 2026</text>"), "{actions}");
        assert!(actions.contains("niet te meten: the action&#39;s windows"));
        assert!(actions.contains("#1 digitale dienstverlening / DigiD: DigiD-koppeling hersteld"));
        assert!(html.contains("Periode: 1 november 2026 – 30 november 2026</strong> (30 dagen); vergeleken met 2 oktober 2026 – 31 oktober 2026"));
        assert!(html.contains("Gemaakt op 1 december 2026, 07:30 UTC"));
    }

    #[test]
    fn english_headings_and_numbers() {
        let html = render_html(&data(&[("payment", 3)], &[]), &labels(Lang::En));
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.contains("<h2>Pareto of themes</h2>"));
        assert!(
            html.contains("fewer signals: rate ratio after/before 0.30 (0.15–0.57), p &lt; 0.0001")
        );
        assert!(html.contains("Period: 1 November 2026 – 30 November 2026"));
        // No subjects: the chart says so, and there is no table.
        let subjects = section(&html, "pareto-subjects");
        assert!(subjects.contains("No signals in this period."));
        assert!(subjects.contains("chart-empty"));
        assert!(!subjects.contains("<table"));
    }

    #[test]
    fn a_label_with_markup_is_shown_as_text() {
        let mut l = labels(Lang::Nl);
        l.themes.insert(
            "payment".into(),
            "<script>alert('x')</script> & \"zo\"".into(),
        );
        let mut d = data(&[("payment", 7), ("reachability", 2)], &[("digid", 1)]);
        d.summary.actions[0].action.description = "<img src=x onerror=alert(1)>".into();
        d.summary.classifiers[0].classifier = "<b>eigen</b>".into();
        let html = render_html(&d, &l);
        assert!(!html.contains("<script"), "markup got through");
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>"));
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;zo&quot;")
        );
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn an_empty_register_gives_a_page_that_says_so() {
        let mut d = data(&[], &[]);
        d.summary = summary("2026-11-01", "2026-11-30", 0, 0, Vec::new());
        d.summary.classifiers.clear();
        d.previous = summary("2026-10-02", "2026-10-31", 0, 0, Vec::new());
        let html = render_html(&d, &labels(Lang::En));
        assert_eq!(
            count(&html, "<svg"),
            3,
            "two Pareto charts and the scatter, each empty"
        );
        assert_eq!(count(&html, "chart-empty"), 3);
        assert!(html.contains("No patterns in this window."));
        assert!(html.contains("No improvement actions registered."));
        assert!(html.contains("No classified signals in this period."));
        assert!(!html.contains("NaN"));
        assert!(section(&html, "key-numbers")
            .contains("<td class=\"n\">0</td><td class=\"n\">0</td><td class=\"n\">0 %</td>"));
    }

    #[test]
    fn the_previous_period_is_as_long_and_ends_the_day_before() -> Result<(), ReportError> {
        let mut q = Query::new(day("2026-11-01"), day("2026-11-30"));
        q.theme = Some("payment".into());
        let p = previous_period(&q)?;
        assert_eq!((p.from, p.to), (day("2026-10-02"), day("2026-10-31")));
        assert_eq!(p.theme.as_deref(), Some("payment"));
        let one = previous_period(&Query::new(day("2026-03-01"), day("2026-03-01")))?;
        assert_eq!((one.from, one.to), (day("2026-02-28"), day("2026-02-28")));
        assert!(matches!(
            previous_period(&Query::new(day("1000-01-05"), day("1000-02-01"))),
            Err(ReportError::Invalid(m)) if m.contains("before the year 1000")
        ));
        Ok(())
    }

    #[test]
    fn changes_and_verdicts_read_well() {
        assert_eq!(change(0, 0, &NL, Lang::Nl), "0 %");
        assert_eq!(change(5, 0, &NL, Lang::Nl), "nieuw");
        assert_eq!(change(50, 100, &EN, Lang::En), "−50 %");
        assert_eq!(change(100, 99, &EN, Lang::En), "+1 %");
        assert_eq!(change(1000, 999, &EN, Lang::En), "0 %");
        let mut m = measurement();
        m.complete = false;
        m.verdict = Verdict::NotYetEnoughData;
        assert_eq!(
            verdict(&m, Lang::Nl).0,
            "nog niet genoeg gegevens: de periode na loopt tot 26 oktober 2026"
        );
        m.complete = true;
        assert_eq!(
            verdict(&m, Lang::En).0,
            "not yet enough data: 52 signals in both periods together"
        );
        m.verdict = Verdict::More;
        m.rate_ratio = m.rate_ratio.map(|r| RateRatio {
            estimate: 2.5,
            upper: f64::INFINITY,
            p_more: 0.0123,
            ..r
        });
        let (text, tone) = verdict(&m, Lang::En);
        assert_eq!(
            text,
            "more signals: rate ratio after/before 2.50 (0.15–∞), p = 0.012"
        );
        assert_eq!(tone, charts::Tone::Bad);
    }
}
