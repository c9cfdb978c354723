//! The coordinator's page, rendered on the server: one request, every view for the filters in
//! the URL (so a view can be shared and survives a reload), charts as inline SVG from
//! [`crate::charts`] whose bars and points link to the signals behind them. The little
//! JavaScript (`assets/app.js`) only runs the live feed.
//!
//! Only what the register and `signals.classified` hold is shown: redacted texts and author
//! pseudonyms.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use signaal_api::reports::{self, Key, Query, ReportError};
use signaal_store::analysis::Dimension;

use crate::server::WebState;

/// Signals listed under the charts (the drill-down).
const LISTED: usize = 25;

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }
}

/// A text of the page in both languages.
pub fn t(lang: Lang, key: &str) -> &'static str {
    let (nl, en) = match key {
        "title" => (
            "signaal — wat klanten zeggen",
            "signaal — what customers say",
        ),
        "filters" => ("Filters", "Filters"),
        "from" => ("Van", "From"),
        "to" => ("Tot en met", "To"),
        "theme" => ("Thema", "Theme"),
        "subject" => ("Onderwerp", "Subject"),
        "channel" => ("Kanaal", "Channel"),
        "cause" => ("Oorzaak", "Cause"),
        "kind" => ("Soort", "Kind"),
        "all" => ("alle", "all"),
        "apply" => ("Toepassen", "Apply"),
        "clear" => ("Wissen", "Clear"),
        "live" => ("Binnenkomend", "Live feed"),
        "live_hint" => (
            "Nieuwe signalen verschijnen hier zodra ze geclassificeerd zijn.",
            "New signals appear here as soon as they are classified.",
        ),
        "pareto" => ("Pareto", "Pareto"),
        "pareto_themes" => ("Thema's", "Themes"),
        "pareto_subjects" => ("Onderwerpen", "Subjects"),
        "timeline" => ("Verloop per dag", "Daily timeline"),
        "timeline_hint" => (
            "Aantal per dag, de verwachte band van de detector en de meldingen van de alerter.",
            "Signals per day, the detector's expected band and the alerter's alerts.",
        ),
        "impact" => ("Frequentie × impact", "Frequency × impact"),
        "recurrence" => ("Herhaling", "Recurrence"),
        "recurrence_hint" => (
            "1x toeval, 2x opvallend, 3x patroon — patronen eerst.",
            "1x coincidence, 2x notable, 3x pattern — patterns first.",
        ),
        "actions" => ("Verbeteracties", "Improvement actions"),
        "signals" => ("Signalen", "Signals"),
        "more" => ("Volgende", "Next"),
        "none" => (
            "Geen signalen in deze selectie.",
            "No signals in this selection.",
        ),
        "no_actions" => ("Nog geen verbeteracties.", "No improvement actions yet."),
        "no_patterns" => (
            "Geen herhaling in dit venster.",
            "No recurrence in this window.",
        ),
        "level" => ("Niveau", "Level"),
        "group" => ("Thema / onderwerp / klant", "Theme / subject / customer"),
        "new_signals" => ("nieuw", "new"),
        "count" => ("Aantal", "Count"),
        "last" => ("Laatst", "Last"),
        "customer" => ("Klant (pseudoniem)", "Customer (pseudonym)"),
        "owner" => ("Eigenaar", "Owner"),
        "since" => ("Sinds", "Since"),
        "verdict" => ("Oordeel", "Verdict"),
        "total" => ("signalen", "signals"),
        "pattern" => ("patroon", "pattern"),
        "notable" => ("opvallend", "notable"),
        "coincidence" => ("toeval", "coincidence"),
        "classified_by" => ("Geclassificeerd door", "Classified by"),
        "connected" => ("verbonden", "connected"),
        "disconnected" => ("verbinding weg, opnieuw…", "disconnected, retrying…"),
        "reset" => (
            "Een deel van de stroom is gemist: herlaad de pagina voor de nieuwste signalen.",
            "Part of the stream was missed: reload the page for the newest signals.",
        ),
        _ => ("?", "?"),
    };
    match lang {
        Lang::Nl => nl,
        Lang::En => en,
    }
}

/// Theme and subject labels from the taxonomy.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// Theme id → the taxonomy's label (the organisation's language).
    pub themes: Vec<(String, String)>,
    /// Subject id → label per language.
    pub subjects: Vec<(String, BTreeMap<String, String>)>,
}

impl Labels {
    /// From `/api/v1/themes` and `/api/v1/subjects` as served.
    pub fn from_taxonomy(themes: &serde_json::Value, subjects: &serde_json::Value) -> Labels {
        let themes = themes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                let id = t["id"].as_str()?;
                Some((
                    id.to_string(),
                    t["label"].as_str().unwrap_or(id).to_string(),
                ))
            })
            .collect();
        let subjects = subjects
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let id = s["id"].as_str()?;
                let labels = s["label"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect();
                Some((id.to_string(), labels))
            })
            .collect();
        Labels { themes, subjects }
    }

    /// A theme's label: the taxonomy's in Dutch, the id in words in English (the taxonomy has
    /// one label per theme, in the organisation's language).
    pub fn theme(&self, id: &str, lang: Lang) -> String {
        match lang {
            Lang::Nl => self
                .themes
                .iter()
                .find(|(t, _)| t == id)
                .map_or_else(|| id.to_string(), |(_, l)| l.clone()),
            Lang::En => humanise(id),
        }
    }

    pub fn subject(&self, id: &str, lang: Lang) -> String {
        self.subjects
            .iter()
            .find(|(s, _)| s == id)
            .and_then(|(_, l)| l.get(lang.code()).or_else(|| l.values().next()))
            .cloned()
            .unwrap_or_else(|| humanise(id))
    }

    pub fn key(&self, k: &Key, lang: Lang) -> String {
        match (&k.theme, &k.subject) {
            (Some(t), Some(s)) => format!("{} / {}", self.theme(t, lang), self.subject(s, lang)),
            (Some(t), None) => self.theme(t, lang),
            (None, Some(s)) => self.subject(s, lang),
            (None, None) => "—".into(),
        }
    }
}

/// `response_time` → `Response time`.
pub fn humanise(id: &str) -> String {
    let s = id.replace('_', " ");
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// HTML-escapes text and attribute values (as the charts do).
pub use crate::charts::escape as esc;

/// The page's query parameters: the filters, the language and the signal list's cursor.
/// Parameters it does not know (a tracker's, a dashboard link's) are ignored: the page is for
/// people following links.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub channel: Option<String>,
    pub cause: Option<String>,
    pub kind: Option<String>,
    pub lang: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Failed(String),
}

impl From<ReportError> for PageError {
    fn from(e: ReportError) -> PageError {
        match e {
            ReportError::Invalid(m) => PageError::Invalid(m),
            e => PageError::Failed(e.to_string()),
        }
    }
}

impl From<signaal_store::StoreError> for PageError {
    fn from(e: signaal_store::StoreError) -> PageError {
        match e {
            signaal_store::StoreError::Invalid(m) => PageError::Invalid(m),
            e => PageError::Failed(e.to_string()),
        }
    }
}

fn set(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
}

fn day(name: &str, v: &str) -> Result<NaiveDate, PageError> {
    let d = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .filter(|_| v.len() == 10)
        .ok_or_else(|| {
            PageError::Invalid(format!("`{name}` = {v:?} is not a date (YYYY-MM-DD)"))
        })?;
    reports::check_year(name, d).map_err(|e| PageError::Invalid(e.to_string()))?;
    Ok(d)
}

impl PageParams {
    pub fn lang(&self) -> Lang {
        match self.lang.as_deref() {
            Some("en") => Lang::En,
            _ => Lang::Nl,
        }
    }

    /// The report query: the last year up to today unless the URL says otherwise.
    pub fn query(&self, vocabulary: &reports::Vocabulary) -> Result<Query, PageError> {
        let to = match set(&self.to) {
            Some(v) => day("to", &v)?,
            None => Utc::now().date_naive(),
        };
        let from = match set(&self.from) {
            Some(v) => day("from", &v)?,
            None => to
                .checked_sub_months(chrono::Months::new(12))
                .and_then(|d| d.succ_opt())
                .ok_or_else(|| PageError::Invalid("`to` is too early".into()))?,
        };
        let q = Query {
            from,
            to,
            theme: set(&self.theme),
            subject: set(&self.subject),
            channel: set(&self.channel),
            cause: set(&self.cause),
            kind: set(&self.kind),
        };
        q.validate(vocabulary)?;
        Ok(q)
    }
}

/// The URL of the page for `q` (and `lang`), with `extra` set on top: how a bar links to the
/// signals behind it.
pub fn url(q: &Query, lang: Lang, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = vec![
        ("from".into(), q.from.to_string()),
        ("to".into(), q.to.to_string()),
    ];
    for (k, v) in [
        ("theme", &q.theme),
        ("subject", &q.subject),
        ("channel", &q.channel),
        ("cause", &q.cause),
        ("kind", &q.kind),
    ] {
        if let Some(v) = v {
            pairs.push((k.into(), v.clone()));
        }
    }
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push(((*k).into(), (*v).into()));
    }
    if lang == Lang::En {
        pairs.push(("lang".into(), "en".into()));
    }
    let mut out = String::from("/?");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Wraps each evidence span of `text` in `<mark>`: `spans` are UTF-8 byte offsets (as the
/// classifier gives them) with the label of what they triggered. Spans that overlap are merged,
/// spans outside the text or inside a character are left out.
pub fn highlight(text: &str, spans: &[(usize, usize, String)]) -> String {
    let mut spans: Vec<(usize, usize, String)> = spans
        .iter()
        .filter(|(s, e, _)| {
            s < e && *e <= text.len() && text.is_char_boundary(*s) && text.is_char_boundary(*e)
        })
        .cloned()
        .collect();
    spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut merged: Vec<(usize, usize, Vec<String>)> = Vec::new();
    for (s, e, label) in spans {
        match merged.last_mut() {
            Some(last) if s < last.1 => {
                last.1 = last.1.max(e);
                if !last.2.contains(&label) {
                    last.2.push(label);
                }
            }
            _ => merged.push((s, e, vec![label])),
        }
    }
    let mut out = String::with_capacity(text.len() + merged.len() * 32);
    let mut at = 0;
    for (s, e, labels) in merged {
        out.push_str(&esc(&text[at..s]));
        let _ = write!(
            out,
            "<mark title=\"{}\">{}</mark>",
            esc(&labels.join(", ")),
            esc(&text[s..e])
        );
        at = e;
    }
    out.push_str(&esc(&text[at..]));
    out
}

/// Evidence spans of a stored classification (`themes` or `subjects` JSON of a listed signal).
fn spans(tags: &serde_json::Value, label: impl Fn(&str) -> String) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    for tag in tags.as_array().into_iter().flatten() {
        let Some(id) = tag["id"].as_str().or_else(|| tag.as_str()) else {
            continue;
        };
        for ev in tag["evidence"].as_array().into_iter().flatten() {
            if ev.get("field").is_some_and(|f| !f.is_null()) {
                continue;
            }
            let (Some(s), Some(e)) = (ev["start"].as_u64(), ev["end"].as_u64()) else {
                continue;
            };
            out.push((s as usize, e as usize, label(id)));
        }
    }
    out
}

fn tag_ids(tags: &serde_json::Value) -> Vec<String> {
    tags.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str().or_else(|| t.as_str()).map(String::from))
        .collect()
}

/// A signal as the list and the live feed show it.
fn signal_item(s: &signaal_store::analysis::ListedSignal, labels: &Labels, lang: Lang) -> String {
    let mut sp = spans(&s.themes, |id| labels.theme(id, lang));
    sp.extend(spans(&s.subjects, |id| labels.subject(id, lang)));
    let mut chips = String::new();
    for id in tag_ids(&s.themes) {
        let _ = write!(
            chips,
            "<span class=\"chip theme\" data-theme=\"{}\">{}</span>",
            esc(&id),
            esc(&labels.theme(&id, lang))
        );
    }
    for id in tag_ids(&s.subjects) {
        let _ = write!(
            chips,
            "<span class=\"chip subject\" data-subject=\"{}\">{}</span>",
            esc(&id),
            esc(&labels.subject(&id, lang))
        );
    }
    format!(
        "<li class=\"signal\" data-id=\"{id}\"><div class=\"meta\"><time datetime=\"{at}\">{when}</time> \
         <span class=\"chip channel\">{channel}</span> <span class=\"chip kind\">{kind}</span> \
         <span class=\"chip cause\">{cause}</span>{impact}</div>{subject}<p class=\"text\">{text}</p>\
         <div class=\"tags\">{chips}</div></li>",
        id = esc(&s.id),
        at = s.occurred_at.to_rfc3339(),
        when = s.occurred_at.format("%Y-%m-%d %H:%M"),
        channel = esc(&s.channel),
        kind = esc(&s.kind),
        cause = esc(&s.cause),
        impact = s
            .impact
            .map(|i| format!(" <span class=\"chip impact\">impact {i:.1}</span>"))
            .unwrap_or_default(),
        subject = s
            .subject
            .as_deref()
            .map(|x| format!("<p class=\"mail-subject\">{}</p>", esc(x)))
            .unwrap_or_default(),
        text = highlight(&s.text, &sp),
    )
}

/// A bare page with an error message (400 and 500).
pub fn error_page(message: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>signaal</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/assets/app.css\"></head>\
         <body><main><h1>signaal</h1><p class=\"error\" role=\"alert\">{}</p>\
         <p><a href=\"/\">Start again</a></p></main></body></html>",
        esc(message)
    )
}

fn options(name: &str, current: &Option<String>, all: &str, items: &[(String, String)]) -> String {
    let mut out = format!("<option value=\"\">{}</option>", esc(all));
    for (value, label) in items {
        let sel = if current.as_deref() == Some(value.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<option value=\"{}\"{sel}>{}</option>",
            esc(value),
            esc(label)
        );
    }
    format!("<select id=\"f-{name}\" name=\"{name}\">{out}</select>")
}

fn pairs(values: &[&str]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|v| ((*v).to_string(), humanise(v)))
        .collect()
}

/// Renders the whole page for `p`.
pub async fn render(s: &WebState, p: &PageParams) -> Result<String, PageError> {
    let lang = p.lang();
    let q = p.query(&s.app.vocabulary)?;
    let store = &s.app.store;
    let after = p
        .after
        .as_deref()
        .filter(|a| !a.is_empty())
        .map(signaal_api::http::parse_cursor)
        .transpose()
        .map_err(PageError::Invalid)?;
    let filter = q.filter();
    let now = Utc::now();
    let (by_theme, by_subject, timeline, impact, recurrence, actions, listed) = tokio::try_join!(
        async { Ok::<_, PageError>(reports::pareto_report(store, &q, Dimension::Theme).await?) },
        async { Ok::<_, PageError>(reports::pareto_report(store, &q, Dimension::Subject).await?) },
        async {
            Ok::<_, PageError>(
                signaal_api::timeline::timeline(store, &s.app.detect, &q, Dimension::Theme, 5)
                    .await?,
            )
        },
        async { Ok::<_, PageError>(reports::impact_report(store, &q, Dimension::Theme).await?) },
        async {
            Ok::<_, PageError>(
                reports::recurrence_report(store, &s.app.analysis.recurrence, &q).await?,
            )
        },
        async {
            Ok::<_, PageError>(
                reports::actions_report(store, &s.app.analysis.action, now, false).await?,
            )
        },
        async { Ok::<_, PageError>(store.signals_page(&filter, after, LISTED).await?) },
    )?;
    let labels = &s.labels;

    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"{code}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/assets/app.css\"></head><body>\
         <header><h1>{title}</h1><nav class=\"lang\" aria-label=\"language\">{langs}</nav></header><main>",
        code = lang.code(),
        title = esc(t(lang, "title")),
        langs = format_args!(
            "<a href=\"{}\"{}>NL</a> <a href=\"{}\"{}>EN</a>",
            esc(&url_lang(&q, Lang::Nl)),
            if lang == Lang::Nl { " aria-current=\"true\"" } else { "" },
            esc(&url_lang(&q, Lang::En)),
            if lang == Lang::En { " aria-current=\"true\"" } else { "" },
        ),
    );

    // Filters: a GET form, so they live in the URL.
    let themes: Vec<(String, String)> = labels
        .themes
        .iter()
        .map(|(id, _)| (id.clone(), labels.theme(id, lang)))
        .collect();
    let subjects: Vec<(String, String)> = labels
        .subjects
        .iter()
        .map(|(id, _)| (id.clone(), labels.subject(id, lang)))
        .collect();
    let _ = write!(
        h,
        "<form id=\"filters\" method=\"get\" action=\"/\" aria-label=\"{filters}\">\
         <label>{from} <input type=\"date\" id=\"f-from\" name=\"from\" value=\"{fv}\"></label>\
         <label>{to} <input type=\"date\" id=\"f-to\" name=\"to\" value=\"{tv}\"></label>\
         <label>{theme} {ts}</label><label>{subject} {ss}</label><label>{channel} {cs}</label>\
         <label>{cause} {us}</label><label>{kind} {ks}</label>{hidden}\
         <button type=\"submit\">{apply}</button> <a href=\"{clear}\">{clear_label}</a></form>",
        filters = t(lang, "filters"),
        from = t(lang, "from"),
        to = t(lang, "to"),
        fv = q.from,
        tv = q.to,
        theme = t(lang, "theme"),
        ts = options("theme", &q.theme, t(lang, "all"), &themes),
        subject = t(lang, "subject"),
        ss = options("subject", &q.subject, t(lang, "all"), &subjects),
        channel = t(lang, "channel"),
        cs = options(
            "channel",
            &q.channel,
            t(lang, "all"),
            &pairs(&["email", "phone", "twitter", "facebook", "internal"])
        ),
        cause = t(lang, "cause"),
        us = options(
            "cause",
            &q.cause,
            t(lang, "all"),
            &pairs(&["human", "system", "mixed", "unknown"])
        ),
        kind = t(lang, "kind"),
        ks = options(
            "kind",
            &q.kind,
            t(lang, "all"),
            &pairs(&["complaint", "compliment", "question", "suggestion"])
        ),
        hidden = if lang == Lang::En {
            "<input type=\"hidden\" name=\"lang\" value=\"en\">"
        } else {
            ""
        },
        apply = t(lang, "apply"),
        clear = esc(if lang == Lang::En { "/?lang=en" } else { "/" }),
        clear_label = t(lang, "clear"),
    );

    // Live feed.
    let _ = write!(
        h,
        "<section id=\"live\" aria-labelledby=\"h-live\"><h2 id=\"h-live\">{live}</h2>\
         <p class=\"hint\">{hint} <span id=\"live-status\" class=\"status\" role=\"status\"></span></p>\
         <ol id=\"live-feed\"></ol></section>",
        live = t(lang, "live"),
        hint = t(lang, "live_hint"),
    );

    // Pareto.
    let theme_bar = |k: &Key| {
        k.theme
            .as_deref()
            .map(|id| url(&q, lang, &[("theme", id)]) + "#signals")
    };
    let subject_bar = |k: &Key| {
        k.subject
            .as_deref()
            .map(|id| url(&q, lang, &[("subject", id)]) + "#signals")
    };
    let _ = write!(
        h,
        "<section id=\"pareto\" aria-labelledby=\"h-pareto\"><h2 id=\"h-pareto\">{title}</h2>\
         <div class=\"pair\"><figure id=\"pareto-themes\"><figcaption>{themes} ({n} {total})</figcaption>{a}</figure>\
         <figure id=\"pareto-subjects\"><figcaption>{subjects}</figcaption>{b}</figure></div></section>",
        title = t(lang, "pareto"),
        themes = t(lang, "pareto_themes"),
        n = by_theme.pareto.total,
        total = t(lang, "total"),
        a = crate::views::pareto(&by_theme, labels, lang, &theme_bar),
        subjects = t(lang, "pareto_subjects"),
        b = crate::views::pareto(&by_subject, labels, lang, &subject_bar),
    );

    // Timelines.
    let _ = write!(
        h,
        "<section id=\"timeline\" aria-labelledby=\"h-timeline\"><h2 id=\"h-timeline\">{title}</h2>\
         <p class=\"hint\">{hint}</p>",
        title = t(lang, "timeline"),
        hint = t(lang, "timeline_hint"),
    );
    for series in &timeline.series {
        let _ = write!(
            h,
            "<figure class=\"timeline\" data-key=\"{key}\"><figcaption>{label} ({n})</figcaption>{svg}</figure>",
            key = esc(series.key.theme.as_deref().unwrap_or_default()),
            label = esc(&labels.key(&series.key, lang)),
            n = series.signals,
            svg = crate::views::timeline(series, labels, lang),
        );
    }
    if timeline.series.is_empty() {
        let _ = write!(h, "<p>{}</p>", t(lang, "none"));
    }
    h.push_str("</section>");

    // Frequency × impact.
    let _ = write!(
        h,
        "<section id=\"impact\" aria-labelledby=\"h-impact\"><h2 id=\"h-impact\">{title}</h2>{svg}</section>",
        title = t(lang, "impact"),
        svg = crate::views::scatter(&impact, labels, lang, &theme_bar),
    );

    // Recurrence.
    let _ = write!(
        h,
        "<section id=\"recurrence\" aria-labelledby=\"h-recurrence\"><h2 id=\"h-recurrence\">{title}</h2>\
         <p class=\"hint\">{hint}</p><div class=\"scroll\">{table}</div></section>",
        title = t(lang, "recurrence"),
        hint = t(lang, "recurrence_hint"),
        table = recurrence_table(&recurrence, &q, labels, lang),
    );

    // Actions.
    let _ = write!(
        h,
        "<section id=\"actions\" aria-labelledby=\"h-actions\"><h2 id=\"h-actions\">{}</h2>",
        t(lang, "actions")
    );
    if actions.is_empty() {
        let _ = write!(h, "<p>{}</p>", t(lang, "no_actions"));
    }
    h.push_str("<div class=\"actions\">");
    for a in &actions {
        let target = match (&a.action.theme, &a.action.subject) {
            (Some(t), Some(u)) => {
                format!("{} / {}", labels.theme(t, lang), labels.subject(u, lang))
            }
            (Some(t), None) => labels.theme(t, lang),
            (None, Some(u)) => labels.subject(u, lang),
            (None, None) => String::new(),
        };
        let _ = write!(
            h,
            "<article class=\"action\" data-id=\"{id}\"><h3>{desc}</h3><p class=\"meta\">{target} · \
             {owner}: {o} · {since}: {start} · {status}</p>{chart}<p class=\"verdict\">{verdict}</p></article>",
            id = a.action.id,
            desc = esc(&a.action.description),
            target = esc(&target),
            owner = t(lang, "owner"),
            o = esc(&a.action.owner),
            since = t(lang, "since"),
            start = a.action.start_date,
            status = esc(&a.action.status),
            chart = crate::views::before_after(a, lang),
            verdict = esc(
                &a.measurement
                    .as_ref()
                    .map(|m| m.summary.clone())
                    .or_else(|| a.error.clone())
                    .unwrap_or_default()
            ),
        );
    }
    h.push_str("</div></section>");

    // The signals behind the current filters.
    let _ = write!(
        h,
        "<section id=\"signals\" aria-labelledby=\"h-signals\"><h2 id=\"h-signals\">{title}</h2><ol class=\"signals\">",
        title = t(lang, "signals"),
    );
    for l in &listed {
        h.push_str(&signal_item(l, labels, lang));
    }
    h.push_str("</ol>");
    if listed.is_empty() {
        let _ = write!(h, "<p>{}</p>", t(lang, "none"));
    }
    if listed.len() == LISTED {
        if let Some(last) = listed.last() {
            let cursor = signaal_api::http::cursor(last.occurred_at, &last.id);
            let _ = write!(
                h,
                "<p><a rel=\"next\" href=\"{}\">{} →</a></p>",
                esc(&(url(&q, lang, &[("after", &cursor)]) + "#signals")),
                t(lang, "more")
            );
        }
    }
    let classified_by = by_theme
        .classifiers
        .iter()
        .map(|c| format!("{} ({})", c.classifier, c.signals))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        h,
        "</section></main><footer><p>{} {}</p></footer>",
        t(lang, "classified_by"),
        esc(&classified_by)
    );

    // What the live feed needs: labels, texts and the filters.
    let js = serde_json::json!({
        "lang": lang.code(),
        "themes": labels.themes.iter().map(|(id, _)| (id.clone(), labels.theme(id, lang))).collect::<BTreeMap<_, _>>(),
        "subjects": labels.subjects.iter().map(|(id, _)| (id.clone(), labels.subject(id, lang))).collect::<BTreeMap<_, _>>(),
        "text": {
            "connected": t(lang, "connected"),
            "disconnected": t(lang, "disconnected"),
            "reset": t(lang, "reset"),
            "new": t(lang, "new_signals"),
        },
        "filter": {
            "theme": q.theme, "subject": q.subject, "channel": q.channel,
            "cause": q.cause, "kind": q.kind,
        },
    });
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"page-data\">{}</script>\
         <script src=\"/assets/app.js\" defer></script></body></html>",
        // No `<`, `>` or `&` at all: nothing in the data can end the element or open a comment.
        js.to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
    );
    Ok(h)
}

fn url_lang(q: &Query, lang: Lang) -> String {
    url(q, lang, &[])
}

fn level(lang: Lang, l: signaal_analysis::Level) -> &'static str {
    match l {
        signaal_analysis::Level::Pattern => t(lang, "pattern"),
        signaal_analysis::Level::Notable => t(lang, "notable"),
        signaal_analysis::Level::Coincidence => t(lang, "coincidence"),
    }
}

fn recurrence_table(
    r: &reports::RecurrenceReport,
    q: &Query,
    labels: &Labels,
    lang: Lang,
) -> String {
    let mut rows = String::new();
    let groups = r
        .theme_subject
        .iter()
        .chain(r.subject.iter())
        .filter(|g| g.level != signaal_analysis::Level::Coincidence);
    let mut all: Vec<_> = groups.collect();
    // Patterns first, then notable; within a level the largest first.
    all.sort_by(|a, b| b.level.cmp(&a.level).then(b.count.cmp(&a.count)));
    for g in all.iter().take(30) {
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = g.key.theme.as_deref() {
            extra.push(("theme", t));
        }
        if let Some(s) = g.key.subject.as_deref() {
            extra.push(("subject", s));
        }
        let _ = write!(
            rows,
            "<tr class=\"{lvl_class}\"><td><a href=\"{href}\">{label}</a></td><td>{lvl}</td>\
             <td class=\"num\">{n}</td><td>{last}</td></tr>",
            lvl_class = format!("{:?}", g.level).to_lowercase(),
            href = esc(&(url(q, lang, &extra) + "#signals")),
            label = esc(&labels.key(&g.key, lang)),
            lvl = level(lang, g.level),
            n = g.count,
            last = g.last.format("%Y-%m-%d"),
        );
    }
    for a in r
        .author
        .iter()
        .filter(|a| a.level != signaal_analysis::Level::Coincidence)
        .take(10)
    {
        let _ = write!(
            rows,
            "<tr class=\"customer\"><td>{who}: {id}</td><td>{lvl}</td><td class=\"num\">{n}</td><td>{last}</td></tr>",
            who = t(lang, "customer"),
            id = esc(&a.key),
            lvl = level(lang, a.level),
            n = a.count,
            last = a.last.format("%Y-%m-%d"),
        );
    }
    if rows.is_empty() {
        return format!("<p>{}</p>", t(lang, "no_patterns"));
    }
    format!(
        "<table class=\"recurrence\"><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
         <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>{rows}</tbody></table>",
        t(lang, "group"),
        t(lang, "level"),
        t(lang, "count"),
        t(lang, "last"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_is_marked_at_byte_offsets_merged_and_escaped() {
        let text = "Één <b> brief, onduidelijk en te laat";
        let s = text.find("onduidelijk").unwrap_or(0);
        let spans = vec![
            (s, s + "onduidelijk".len(), "Onduidelijk".to_string()),
            (s + 2, s + 5, "Ander".to_string()),
            (1, 2, "inside a character".to_string()),
            (0, 999, "outside".to_string()),
        ];
        let h = highlight(text, &spans);
        assert_eq!(h.matches("<mark").count(), 1, "{h}");
        assert!(
            h.contains("<mark title=\"Onduidelijk, Ander\">onduidelijk</mark>"),
            "{h}"
        );
        assert!(h.contains("&lt;b&gt;"), "{h}");
    }

    #[test]
    fn urls_keep_the_filters_and_replace_what_a_link_sets() {
        let mut q = Query::new(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default(),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default(),
        );
        q.theme = Some("payment".into());
        q.channel = Some("email".into());
        let u = url(&q, Lang::En, &[("theme", "reachability & more")]);
        assert_eq!(
            u,
            "/?from=2026-11-01&to=2026-11-30&channel=email&theme=reachability%20%26%20more&lang=en"
        );
    }
}
