//! Charts as SVG strings: a Pareto chart, a timeline with its expected band and alert markers,
//! the frequency × impact scatter and an improvement action's before/after.
//!
//! Each function is pure: plain structs in, one `<svg>` element out, with a `viewBox` (it scales
//! to its container and prints sharply), `role="img"`, an `aria-label` and a `<title>`. Colours
//! are presentation attributes, the font is the system's (`system-ui, sans-serif`), and nothing
//! refers to anything outside the element, so the same string works inline in the coordinator's
//! page, in the self-contained monthly report and saved as a file.
//!
//! Every mark carries what it shows — bars `class="bar"`, points `class="point"`, alert markers
//! `class="alert"`, each with `data-key` and `data-value` — so a test can count the marks and
//! compare them with the API's rows, and a page can find them. Every word on a chart comes from
//! the caller, which picks the language. All text and attributes are escaped; a non-finite
//! number is drawn as 0, never written as `NaN`.

use std::fmt::Write as _;

/// Text for a chart that has nothing to show: its title, and the sentence said instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caption {
    /// The chart's title: its `<title>` and `aria-label`.
    pub title: String,
    /// Shown instead of the chart when there is nothing to draw ("no signals in this period").
    pub no_data: String,
}

/// One bar of a Pareto chart, as `signaal_analysis::ParetoRow` has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParetoBar {
    /// What the bar is about, for machines (`data-key`): a theme or subject id.
    pub key: String,
    /// What the bar is about, for people (axis label and tooltip).
    pub label: String,
    pub count: u64,
    /// `count / total`, 0–1.
    pub share: f64,
    /// This bar's share and every larger one's, 0–1.
    pub cumulative_share: f64,
    /// Inside the 80 % line: drawn darker.
    pub vital_few: bool,
    /// A drill-down link: the bar becomes `<a href>`, which a keyboard reaches with Tab.
    pub href: Option<String>,
}

/// A Pareto chart: bars largest first (the caller's order), the cumulative share as a line
/// against the right-hand axis and the 80 % line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pareto {
    pub caption: Caption,
    /// Legend words: the vital few ("de belangrijkste 80 %"), the rest, the cumulative line.
    pub vital_few: String,
    pub rest: String,
    pub cumulative: String,
    pub bars: Vec<ParetoBar>,
}

/// How a timeline draws its counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Marks {
    /// A line through `class="point"` circles.
    #[default]
    Points,
    /// `class="bar"` bars.
    Bars,
}

/// One bucket of a timeline (an hour, a day).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// The bucket's start in ISO 8601 as the caller's API writes it (`2026-11-14`,
    /// `2026-11-14T09:00:00Z`): the mark's `data-key`.
    pub key: String,
    /// The axis label (`14 nov`, `09:00`); not every label is drawn on a long timeline.
    pub label: String,
    pub count: u64,
    /// What the detector expected, and the upper end of its band (absent without history).
    pub expected: Option<f64>,
    pub upper: Option<f64>,
    /// Alerts concerning this bucket, each one marker.
    pub alerts: Vec<AlertMark>,
    pub href: Option<String>,
}

/// An alert marker on a timeline bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertMark {
    /// The alert's state as the alerter writes it: `pending`, `firing`, `update`, `repeat`,
    /// `resolved` (`data-state`; it picks the colour).
    pub state: String,
    /// The tooltip, in the caller's words ("alarm: 14 signalen, 3 verwacht").
    pub label: String,
}

/// Counts over time with the expected band, the expected line and alert markers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    pub caption: Caption,
    /// Legend and tooltip words: the count ("signalen"), the expected line ("verwacht"), the
    /// band's upper end ("bovengrens").
    pub count: String,
    pub expected: String,
    pub upper: String,
    pub marks: Marks,
    pub buckets: Vec<Bucket>,
}

/// One point of the frequency × impact scatter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScatterPoint {
    pub key: String,
    pub label: String,
    /// Signals (x, `data-value`).
    pub frequency: u64,
    /// Mean impact, 0–10 (y, `data-impact`).
    pub impact: f64,
    pub href: Option<String>,
}

/// The four quadrants' names, by where they sit: frequency grows to the right, impact upwards.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Corners {
    /// Rare, high impact ("watch").
    pub top_left: String,
    /// Frequent, high impact ("act now").
    pub top_right: String,
    /// Rare, low impact ("monitor").
    pub bottom_left: String,
    /// Frequent, low impact ("quick wins").
    pub bottom_right: String,
}

/// Frequency × impact with the quadrant split lines (the medians, say).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scatter {
    pub caption: Caption,
    /// Axis titles.
    pub x_label: String,
    pub y_label: String,
    /// Where the quadrants split; a value on the split counts as high, as in
    /// `signaal_analysis::quadrant`.
    pub x_split: f64,
    pub y_split: f64,
    pub corners: Corners,
    pub points: Vec<ScatterPoint>,
}

/// One window of an action's measurement (`signaal_analysis::pdca::PeriodReport`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Period {
    /// Signals in the window (`data-value`).
    pub count: u64,
    /// What the bar's height shows: signals per week, say (`None` before the window begins).
    pub rate: Option<f64>,
    /// Under the bar: the window's days ("19 sep – 13 nov").
    pub caption: String,
}

/// How a verdict reads: it picks the verdict's colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tone {
    /// Fewer signals after.
    Good,
    /// More signals after.
    Bad,
    /// No evidence of change, or not yet enough data.
    #[default]
    Neutral,
}

/// An improvement action's before and after windows as two bars, with the verdict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BeforeAfter {
    pub caption: Caption,
    /// The bars' names ("voor", "na") and the rate's unit ("per week").
    pub before_label: String,
    pub after_label: String,
    pub unit: String,
    pub before: Period,
    pub after: Period,
    /// The verdict in words ("minder signalen: verhouding 0,42 (0,25–0,68)").
    pub verdict: String,
    pub tone: Tone,
}

const FONT: &str = "system-ui, sans-serif";
const INK: &str = "#1f2933";
const MUTED: &str = "#616e7c";
const GRID: &str = "#e4e7eb";
const VITAL: &str = "#1d4e89";
const REST: &str = "#a9c1dd";
const ACCENT: &str = "#c0392b";
const BAND: &str = "#d6e6f5";
const EXPECTED: &str = "#5a7fa8";
/// Scatter points are labelled on the chart up to this many (beyond, only their tooltips).
const MAX_POINT_LABELS: usize = 30;
/// Axis labels longer than this are cut (the tooltip keeps the whole label).
const MAX_LABEL_CHARS: usize = 26;

/// Text made safe for HTML and SVG, in element content and in quoted attributes alike:
/// `& < > " '` become references, and control characters XML does not allow are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A link as an attribute value, or `None` for one that would run code when followed
/// (`javascript:`, `vbscript:`, `data:`): such a bar is drawn without its link.
fn href_attr(href: &str) -> Option<String> {
    let scheme: String = href
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take_while(|c| *c != ':' && *c != '/' && *c != '?' && *c != '#')
        .collect::<String>()
        .to_ascii_lowercase();
    let has_scheme = href.contains(':') && !scheme.is_empty();
    if has_scheme && matches!(scheme.as_str(), "javascript" | "vbscript" | "data") {
        return None;
    }
    Some(escape(href))
}

/// A number for a coordinate or an attribute: one decimal at most, 0 for NaN and infinity.
fn num(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    match s.strip_suffix(".0") {
        Some("-0") => "0".into(),
        Some(whole) => whole.into(),
        None => s,
    }
}

/// A share (0–1) as a percentage with one decimal.
fn percent(share: f64) -> String {
    let p = if share.is_finite() {
        share * 100.0
    } else {
        0.0
    };
    format!("{p:.1} %")
}

/// A finite value or 0.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// A label cut to `max` characters with an ellipsis.
fn cut(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The top of an axis and its tick step for values up to `max`: 1, 2 or 5 times a power of
/// ten, about five ticks; whole steps for counts.
fn axis(max: f64, whole: bool) -> (f64, f64) {
    let max = finite(max);
    if max <= 0.0 {
        return (1.0, if whole { 1.0 } else { 0.2 });
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    if whole {
        step = step.max(1.0).round();
    }
    ((max / step).ceil() * step, step)
}

/// The opening `<svg>` with its accessible name.
/// Its `width` and `height` are its natural size, which a page's CSS may scale down
/// (`max-width: 100%; height: auto`); `description`, when given, joins the title in the
/// accessible name and is the `<desc>`.
fn open(
    out: &mut String,
    kind: &str,
    (width, height): (f64, f64),
    title: &str,
    description: Option<&str>,
) {
    let label = match description {
        Some(d) if !d.is_empty() => format!("{title}: {d}"),
        _ => title.to_string(),
    };
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{}" font-family="{FONT}" font-size="12" fill="{INK}"><title>{}</title>"#,
        escape(&label),
        escape(title),
        w = num(width),
        h = num(height),
    );
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        let _ = write!(out, "<desc>{}</desc>", escape(d));
    }
}

/// The chart that says there is nothing to draw.
fn no_data(kind: &str, caption: &Caption) -> String {
    let mut out = String::new();
    let title = if caption.title.is_empty() {
        caption.no_data.clone()
    } else if caption.no_data.is_empty() {
        caption.title.clone()
    } else {
        format!("{}: {}", caption.title, caption.no_data)
    };
    let (w, h) = (480.0, 120.0);
    open(
        &mut out,
        &format!("{kind} chart-empty"),
        (w, h),
        &title,
        None,
    );
    let _ = write!(
        out,
        r#"<rect x="0.5" y="0.5" width="{}" height="{}" fill="none" stroke="{GRID}"/><text class="no-data" x="{}" y="{}" text-anchor="middle" fill="{MUTED}">{}</text></svg>"#,
        num(w - 1.0),
        num(h - 1.0),
        num(w / 2.0),
        num(h / 2.0 + 4.0),
        escape(&caption.no_data)
    );
    out
}

/// A mark, wrapped in `<a href>` when it has a (safe) link; `name` (the tooltip's words) is the
/// link's accessible name.
fn linked(out: &mut String, href: Option<&str>, name: &str, mark: &str) {
    match href.and_then(href_attr) {
        Some(h) => {
            let _ = write!(
                out,
                r#"<a href="{h}" aria-label="{}">{mark}</a>"#,
                escape(name)
            );
        }
        None => out.push_str(mark),
    }
}

/// Ends a chart. One with links is a `group`, not an `img`: an image's children are hidden from
/// screen readers, and its links would be too.
fn close(mut out: String) -> String {
    out.push_str("</svg>");
    if out.contains("<a href=") {
        out = out.replacen(r#" role="img""#, r#" role="group""#, 1);
    }
    out
}

/// Horizontal grid lines with their labels on the left, for values `0..=top` by `step`.
fn left_axis(out: &mut String, top: f64, step: f64, x0: f64, x1: f64, y: impl Fn(f64) -> f64) {
    let ticks = (top / step).round().clamp(1.0, 20.0) as u32;
    for i in 0..=ticks {
        let v = step * f64::from(i);
        let yy = y(v);
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{yv}" x2="{}" y2="{yv}" stroke="{GRID}"/><text x="{}" y="{}" text-anchor="end" fill="{MUTED}" font-size="11">{}</text>"#,
            num(x0),
            num(x1),
            num(x0 - 6.0),
            num(yy + 4.0),
            tick(v),
            yv = num(yy),
        );
    }
}

/// A tick value: whole numbers without decimals, others with up to two.
fn tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        num(v)
    } else {
        let s = format!("{:.2}", finite(v));
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// How a legend entry shows its mark.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    Swatch,
    Line,
    Dashed,
}

/// A legend entry: its mark and its words; returns the x after it.
fn legend(out: &mut String, x: f64, y: f64, colour: &str, key: Key, words: &str) -> f64 {
    if words.is_empty() {
        return x;
    }
    if key != Key::Swatch {
        let _ = write!(
            out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2"{}/>"#,
            num(x),
            num(y - 4.0),
            num(x + 14.0),
            num(y - 4.0),
            if key == Key::Dashed {
                r#" stroke-dasharray="4 2""#
            } else {
                ""
            }
        );
    } else {
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="12" height="10" fill="{colour}"/>"#,
            num(x),
            num(y - 9.0)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" font-size="11">{}</text>"#,
        num(x + 18.0),
        num(y),
        escape(words)
    );
    x + 18.0 + 6.5 * words.chars().count() as f64 + 16.0
}

/// The Pareto chart. Bars keep the caller's order (largest first, as `pareto` sorts them);
/// each is `<rect class="bar" data-key data-value data-vital>` with a tooltip of its label,
/// count, share and cumulative share.
pub fn pareto(chart: &Pareto) -> String {
    if chart.bars.is_empty() {
        return no_data("pareto", &chart.caption);
    }
    let n = chart.bars.len() as f64;
    let longest = chart
        .bars
        .iter()
        .map(|b| b.label.chars().count().min(MAX_LABEL_CHARS))
        .max()
        .unwrap_or(0) as f64;
    let plot_w = (n * 26.0).max(600.0);
    let band = plot_w / n;
    let bar_w = band * 0.72;
    // Labels at −40°, ending under their bar: they reach down by their length times sin 40°,
    // and the first one reaches left by its length times cos 40°.
    let first = chart
        .bars
        .first()
        .map_or(0, |b| b.label.chars().count().min(MAX_LABEL_CHARS)) as f64;
    let (right, top) = (56.0, 40.0);
    let left = (first * 6.2 * 0.766 - band / 2.0 + 8.0).max(56.0);
    let bottom = 24.0 + longest * 6.2 * 0.643;
    let plot_h = 240.0;
    let (w, h) = (left + plot_w + right, top + plot_h + bottom);
    let max = chart.bars.iter().map(|b| b.count).max().unwrap_or(0) as f64;
    let (y_top, step) = axis(max, true);
    let y = |v: f64| top + plot_h - finite(v) / y_top * plot_h;
    let y_share = |s: f64| top + plot_h - finite(s).clamp(0.0, 1.0) * plot_h;

    let mut out = String::new();
    open(&mut out, "pareto", (w, h), &chart.caption.title, None);
    left_axis(&mut out, y_top, step, left, left + plot_w, y);
    for p in [0.0, 0.2, 0.4, 0.6, 0.8, 1.0] {
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" fill="{MUTED}" font-size="11">{} %</text>"#,
            num(left + plot_w + 6.0),
            num(y_share(p) + 4.0),
            num(p * 100.0)
        );
    }
    for (i, b) in chart.bars.iter().enumerate() {
        let x = left + band * i as f64 + (band - bar_w) / 2.0;
        let by = y(b.count as f64);
        let tip = format!(
            "{}: {} ({}) · {} {}",
            b.label,
            b.count,
            percent(b.share),
            chart.cumulative,
            percent(b.cumulative_share)
        );
        let rect = format!(
            r#"<rect class="bar" data-key="{}" data-value="{}" data-vital="{}" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>"#,
            escape(&b.key),
            b.count,
            b.vital_few,
            num(x),
            num(by),
            num(bar_w),
            num(top + plot_h - by),
            if b.vital_few { VITAL } else { REST },
            escape(&tip)
        );
        linked(&mut out, b.href.as_deref(), &tip, &rect);
        let lx = left + band * (i as f64 + 0.5);
        let ly = top + plot_h + 12.0;
        let _ = write!(
            out,
            r#"<text x="{lx}" y="{ly}" text-anchor="end" font-size="11" transform="rotate(-40 {lx} {ly})">{}</text>"#,
            escape(&cut(&b.label, MAX_LABEL_CHARS)),
            lx = num(lx),
            ly = num(ly),
        );
    }
    // The cumulative line through the bars' centres.
    let points: Vec<String> = chart
        .bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "{},{}",
                num(left + band * (i as f64 + 0.5)),
                num(y_share(b.cumulative_share))
            )
        })
        .collect();
    let _ = write!(
        out,
        r#"<polyline class="cumulative" points="{}" fill="none" stroke="{ACCENT}" stroke-width="2"/>"#,
        points.join(" ")
    );
    for p in &points {
        if let Some((cx, cy)) = p.split_once(',') {
            let _ = write!(
                out,
                r#"<circle class="cumulative-point" cx="{cx}" cy="{cy}" r="3" fill="{ACCENT}"/>"#
            );
        }
    }
    let y80 = y_share(0.8);
    let _ = write!(
        out,
        r#"<line class="line-80" x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{MUTED}" stroke-dasharray="6 4"/><text x="{}" y="{}" text-anchor="end" fill="{MUTED}" font-size="11">80 %</text>"#,
        num(left),
        num(left + plot_w),
        num(left + plot_w - 4.0),
        num(y80 - 4.0),
        y = num(y80),
    );
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{MUTED}"/>"#,
        l = num(left),
        r = num(left + plot_w),
        b = num(top + plot_h),
    );
    let mut x = left;
    x = legend(&mut out, x, 18.0, VITAL, Key::Swatch, &chart.vital_few);
    x = legend(&mut out, x, 18.0, REST, Key::Swatch, &chart.rest);
    legend(&mut out, x, 18.0, ACCENT, Key::Line, &chart.cumulative);
    close(out)
}

/// The colour of an alert state.
fn state_colour(state: &str) -> &'static str {
    match state {
        "firing" | "update" | "repeat" => ACCENT,
        "pending" => "#d9822b",
        "resolved" => "#2f8f46",
        _ => MUTED,
    }
}

/// The timeline: counts per bucket (points on a line, or bars), the expected band shaded from
/// the expected count up to its upper end, the expected line, and a marker per alert above its
/// bucket (`class="alert" data-key data-state`).
pub fn timeline(chart: &Timeline) -> String {
    if chart.buckets.is_empty() {
        return no_data("timeline", &chart.caption);
    }
    let n = chart.buckets.len();
    let alert_rows = chart
        .buckets
        .iter()
        .map(|b| b.alerts.len())
        .max()
        .unwrap_or(0)
        .min(4) as f64;
    let (left, right) = (48.0, 16.0);
    let top = 30.0 + 12.0 * alert_rows;
    let bottom = 36.0;
    // A fixed width: a year of days is as wide as a week, with thinner marks, so a page of
    // timelines keeps its shape.
    let plot_w = 600.0;
    let plot_h = 200.0;
    let (w, h) = (left + plot_w + right, top + plot_h + bottom);
    let max = chart
        .buckets
        .iter()
        .flat_map(|b| {
            [
                b.count as f64,
                b.expected.map_or(0.0, finite),
                b.upper.map_or(0.0, finite),
            ]
        })
        .fold(0.0, f64::max);
    let (y_top, step) = axis(max, true);
    let y = |v: f64| top + plot_h - finite(v).clamp(0.0, y_top) / y_top * plot_h;
    let band = plot_w / n as f64;
    let cx = |i: usize| left + band * (i as f64 + 0.5);

    let mut out = String::new();
    open(&mut out, "timeline", (w, h), &chart.caption.title, None);
    left_axis(&mut out, y_top, step, left, left + plot_w, y);

    // The band over each run of buckets that has an upper end: up along the upper ends,
    // back along the expected counts (0 where there is none).
    for run in runs(&chart.buckets, |b| b.upper.is_some()) {
        let mut pts: Vec<String> = run
            .clone()
            .map(|i| {
                let u = chart.buckets[i].upper.map_or(0.0, finite);
                format!("{},{}", num(cx(i)), num(y(u)))
            })
            .collect();
        for i in run.rev() {
            let b = &chart.buckets[i];
            let low = b
                .expected
                .map_or(0.0, finite)
                .min(b.upper.map_or(0.0, finite));
            pts.push(format!("{},{}", num(cx(i)), num(y(low))));
        }
        let _ = write!(
            out,
            r#"<polygon class="band" points="{}" fill="{BAND}" stroke="none"/>"#,
            pts.join(" ")
        );
    }
    for run in runs(&chart.buckets, |b| b.expected.is_some()) {
        let pts: Vec<String> = run
            .map(|i| {
                let e = chart.buckets[i].expected.map_or(0.0, finite);
                format!("{},{}", num(cx(i)), num(y(e)))
            })
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="expected" points="{}" fill="none" stroke="{EXPECTED}" stroke-width="1.5" stroke-dasharray="5 3"/>"#,
            pts.join(" ")
        );
    }
    if chart.marks == Marks::Points {
        let pts: Vec<String> = chart
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{},{}", num(cx(i)), num(y(b.count as f64))))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="line" points="{}" fill="none" stroke="{VITAL}" stroke-width="1.5"/>"#,
            pts.join(" ")
        );
    }
    let every = n.div_ceil(12).max(1);
    for (i, b) in chart.buckets.iter().enumerate() {
        let mut tip = format!("{}: {} {}", b.label, b.count, chart.count);
        if let Some(e) = b.expected {
            let _ = write!(tip, " · {} {:.1}", chart.expected, finite(e));
        }
        if let Some(u) = b.upper {
            let _ = write!(tip, " · {} {:.1}", chart.upper, finite(u));
        }
        let mark = match chart.marks {
            Marks::Points => format!(
                r#"<circle class="point" data-key="{}" data-value="{}" cx="{}" cy="{}" r="{}" fill="{VITAL}"><title>{}</title></circle>"#,
                escape(&b.key),
                b.count,
                num(cx(i)),
                num(y(b.count as f64)),
                num((band * 0.4).clamp(0.8, 3.0)),
                escape(&tip)
            ),
            Marks::Bars => {
                let by = y(b.count as f64);
                format!(
                    r#"<rect class="bar" data-key="{}" data-value="{}" x="{}" y="{}" width="{}" height="{}" fill="{VITAL}"><title>{}</title></rect>"#,
                    escape(&b.key),
                    b.count,
                    num(left + band * i as f64 + band * 0.15),
                    num(by),
                    num(band * 0.7),
                    num(top + plot_h - by),
                    escape(&tip)
                )
            }
        };
        linked(&mut out, b.href.as_deref(), &tip, &mark);
        for (row, a) in b.alerts.iter().enumerate() {
            // Downward triangles in rows above the plot, the first nearest to it.
            let ty = top - 6.0 - 12.0 * (row.min(3) as f64);
            let x = cx(i);
            let _ = write!(
                out,
                r#"<path class="alert" data-key="{}" data-state="{}" d="M{} {}L{} {}L{} {}Z" fill="{}"><title>{}</title></path>"#,
                escape(&b.key),
                escape(&a.state),
                num(x - 5.0),
                num(ty - 8.0),
                num(x + 5.0),
                num(ty - 8.0),
                num(x),
                num(ty),
                state_colour(&a.state),
                escape(&if a.label.is_empty() {
                    format!("{}: {}", b.label, a.state)
                } else {
                    a.label.clone()
                })
            );
        }
        if i % every == 0 {
            let _ = write!(
                out,
                r#"<text x="{}" y="{}" text-anchor="middle" fill="{MUTED}" font-size="11">{}</text>"#,
                num(cx(i)),
                num(top + plot_h + 16.0),
                escape(&cut(&b.label, 12))
            );
        }
    }
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{MUTED}"/>"#,
        l = num(left),
        r = num(left + plot_w),
        b = num(top + plot_h),
    );
    let mut x = left;
    let count_key = match chart.marks {
        Marks::Points => Key::Line,
        Marks::Bars => Key::Swatch,
    };
    x = legend(&mut out, x, 14.0, VITAL, count_key, &chart.count);
    x = legend(&mut out, x, 14.0, EXPECTED, Key::Dashed, &chart.expected);
    legend(&mut out, x, 14.0, BAND, Key::Swatch, &chart.upper);
    close(out)
}

/// The index ranges of consecutive buckets for which `keep` holds.
fn runs(buckets: &[Bucket], keep: impl Fn(&Bucket) -> bool) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, b) in buckets.iter().enumerate() {
        match (keep(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(s..buckets.len());
    }
    out
}

/// The frequency × impact scatter: a `class="point"` circle per key (`data-value` its
/// frequency, `data-impact` its impact), dashed split lines and the quadrants' names in their
/// corners. Points at or beyond both splits (act now) are drawn in the accent colour.
pub fn scatter(chart: &Scatter) -> String {
    if chart.points.is_empty() {
        return no_data("scatter", &chart.caption);
    }
    let (left, right, top, bottom) = (56.0, 24.0, 24.0, 48.0);
    let (plot_w, plot_h) = (600.0, 320.0);
    let (w, h) = (left + plot_w + right, top + plot_h + bottom);
    let x_max = chart
        .points
        .iter()
        .map(|p| p.frequency as f64)
        .fold(finite(chart.x_split), f64::max);
    let y_max = chart
        .points
        .iter()
        .map(|p| finite(p.impact))
        .fold(finite(chart.y_split), f64::max);
    let (x_top, x_step) = axis(x_max * 1.05, true);
    let (y_top, y_step) = axis(y_max * 1.05, false);
    let x = |v: f64| left + finite(v).clamp(0.0, x_top) / x_top * plot_w;
    let y = |v: f64| top + plot_h - finite(v).clamp(0.0, y_top) / y_top * plot_h;

    let mut out = String::new();
    open(&mut out, "scatter", (w, h), &chart.caption.title, None);
    left_axis(&mut out, y_top, y_step, left, left + plot_w, y);
    let ticks = (x_top / x_step).round().clamp(1.0, 20.0) as u32;
    for i in 0..=ticks {
        let v = x_step * f64::from(i);
        let _ = write!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" fill="{MUTED}" font-size="11">{}</text>"#,
            num(x(v)),
            num(top + plot_h + 16.0),
            tick(v)
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{MUTED}"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="{MUTED}"/>"#,
        l = num(left),
        r = num(left + plot_w),
        t = num(top),
        b = num(top + plot_h),
    );
    let (xs, ys) = (x(chart.x_split), y(chart.y_split));
    let _ = write!(
        out,
        r#"<line class="split" x1="{xs}" y1="{t}" x2="{xs}" y2="{b}" stroke="{MUTED}" stroke-dasharray="6 4"/><line class="split" x1="{l}" y1="{ys}" x2="{r}" y2="{ys}" stroke="{MUTED}" stroke-dasharray="6 4"/>"#,
        xs = num(xs),
        ys = num(ys),
        l = num(left),
        r = num(left + plot_w),
        t = num(top),
        b = num(top + plot_h),
    );
    let c = &chart.corners;
    let mut corners: Vec<Rect> = Vec::new();
    for (words, cx, cy, anchor) in [
        (&c.top_left, left + 6.0, top + 14.0, "start"),
        (&c.top_right, left + plot_w - 6.0, top + 14.0, "end"),
        (&c.bottom_left, left + 6.0, top + plot_h - 8.0, "start"),
        (
            &c.bottom_right,
            left + plot_w - 6.0,
            top + plot_h - 8.0,
            "end",
        ),
    ] {
        if !words.is_empty() {
            let width = words.chars().count() as f64 * 7.2;
            let x0 = if anchor == "end" { cx - width } else { cx };
            corners.push((x0, cy - 12.0, x0 + width, cy + 3.0));
            let _ = write!(
                out,
                r#"<text class="quadrant" x="{}" y="{}" text-anchor="{anchor}" fill="{MUTED}" font-weight="600">{}</text>"#,
                num(cx),
                num(cy),
                escape(words)
            );
        }
    }
    for p in &chart.points {
        let (px, py) = (x(p.frequency as f64), y(p.impact));
        let high = p.frequency as f64 >= finite(chart.x_split)
            && finite(p.impact) >= finite(chart.y_split);
        let tip = format!(
            "{}: {} {} · {} {:.2}",
            p.label,
            p.frequency,
            chart.x_label,
            chart.y_label,
            finite(p.impact)
        );
        let mark = format!(
            r#"<circle class="point" data-key="{}" data-value="{}" data-impact="{:.2}" cx="{}" cy="{}" r="5" fill="{}" fill-opacity="0.85"><title>{}</title></circle>"#,
            escape(&p.key),
            p.frequency,
            finite(p.impact),
            num(px),
            num(py),
            if high { ACCENT } else { VITAL },
            escape(&tip)
        );
        linked(&mut out, p.href.as_deref(), &tip, &mark);
    }
    if chart.points.len() <= MAX_POINT_LABELS {
        let placed: Vec<(f64, f64)> = chart
            .points
            .iter()
            .map(|p| (x(p.frequency as f64), y(p.impact)))
            .collect();
        let area = (left, top, left + plot_w, top + plot_h);
        for (text, (lx, ly, anchor)) in point_labels(&chart.points, &placed, area, corners) {
            let _ = write!(
                out,
                r#"<text class="point-label" x="{}" y="{}" text-anchor="{anchor}" font-size="10">{}</text>"#,
                num(lx),
                num(ly),
                escape(&text)
            );
        }
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" fill="{MUTED}">{}</text><text x="14" y="{cy}" text-anchor="middle" fill="{MUTED}" transform="rotate(-90 14 {cy})">{}</text>"#,
        num(left + plot_w / 2.0),
        num(h - 8.0),
        escape(&chart.x_label),
        escape(&chart.y_label),
        cy = num(top + plot_h / 2.0),
    );
    close(out)
}

/// A box: left, top, right, bottom.
type Rect = (f64, f64, f64, f64);

fn overlaps(a: Rect, b: Rect) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Where each point's label goes: the first of a few places around the point (right, left,
/// above, below) that stays inside `area` and clear of the other points and the labels placed
/// before it, and of the `reserved` boxes (the quadrants' names). A label with no such place is left out: its point keeps its tooltip, and the
/// report's table lists every key.
fn point_labels(
    points: &[ScatterPoint],
    at: &[(f64, f64)],
    area: Rect,
    reserved: Vec<Rect>,
) -> Vec<(String, (f64, f64, &'static str))> {
    const CHAR_W: f64 = 5.6;
    const LINE_H: f64 = 11.0;
    let dots: Vec<Rect> = at
        .iter()
        .map(|(x, y)| (x - 5.0, y - 5.0, x + 5.0, y + 5.0))
        .collect();
    let mut taken = reserved;
    let mut out = Vec::new();
    for (i, (p, (px, py))) in points.iter().zip(at).enumerate() {
        let text = cut(&p.label, 24);
        let width = text.chars().count() as f64 * CHAR_W;
        // (x of the text anchor, baseline, anchor)
        let candidates = [
            (px + 8.0, py + 3.5, "start"),
            (px - 8.0, py + 3.5, "end"),
            (px + 6.0, py - 8.0, "start"),
            (px + 6.0, py + 16.0, "start"),
            (px - 6.0, py - 8.0, "end"),
            (px - 6.0, py + 16.0, "end"),
        ];
        let spot = candidates.into_iter().find(|&(lx, ly, anchor)| {
            let x0 = if anchor == "end" { lx - width } else { lx };
            let b = (x0, ly - LINE_H + 2.0, x0 + width, ly + 2.0);
            let inside = b.0 >= area.0 && b.2 <= area.2 && b.1 >= area.1 && b.3 <= area.3;
            let clear = !dots
                .iter()
                .enumerate()
                .any(|(j, d)| j != i && overlaps(b, *d))
                && !taken.iter().any(|t| overlaps(b, *t));
            if inside && clear {
                taken.push(b);
                true
            } else {
                false
            }
        });
        if let Some(spot) = spot {
            out.push((text, spot));
        }
    }
    out
}

/// Words wrapped into lines of at most `width` characters (a longer word keeps its own line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// An action's before and after windows as two bars (`data-key` `before` and `after`,
/// `data-value` the count, `data-rate` the height's rate), with the verdict beneath. With no
/// rate in either window (the action has not begun), the "no data" chart.
pub fn before_after(chart: &BeforeAfter) -> String {
    if chart.before.rate.is_none() && chart.after.rate.is_none() {
        return no_data("before-after", &chart.caption);
    }
    let verdict = wrap(&chart.verdict, 58);
    let (left, top, plot_h) = (48.0, 28.0, 150.0);
    let plot_w = 380.0;
    let w = left + plot_w + 96.0;
    let h = top + plot_h + 44.0 + 16.0 * verdict.len() as f64 + 8.0;
    let max = [chart.before.rate, chart.after.rate]
        .into_iter()
        .flatten()
        .map(finite)
        .fold(0.0, f64::max);
    let (y_top, step) = axis(max, false);
    let y = |v: f64| top + plot_h - finite(v).clamp(0.0, y_top) / y_top * plot_h;

    let mut out = String::new();
    open(
        &mut out,
        "before-after",
        (w, h),
        &chart.caption.title,
        Some(&chart.verdict),
    );
    left_axis(&mut out, y_top, step, left, left + plot_w, y);
    for (i, (key, name, period, colour)) in [
        ("before", &chart.before_label, &chart.before, REST),
        ("after", &chart.after_label, &chart.after, VITAL),
    ]
    .into_iter()
    .enumerate()
    {
        let band = plot_w / 2.0;
        let (bx, bw) = (left + band * i as f64 + band * 0.2, band * 0.6);
        let rate = period.rate.map(finite);
        let by = y(rate.unwrap_or(0.0));
        let shown = rate.map_or_else(|| "–".to_string(), |r| format!("{r:.1}"));
        let tip = format!(
            "{name} ({}): {} · {shown} {}",
            period.caption, period.count, chart.unit
        );
        let _ = write!(
            out,
            r#"<rect class="bar" data-key="{key}" data-value="{}" data-rate="{}" x="{}" y="{}" width="{}" height="{}" fill="{colour}"><title>{}</title></rect>"#,
            period.count,
            rate.map_or_else(String::new, |r| format!("{r:.3}")),
            num(bx),
            num(by),
            num(bw),
            num(top + plot_h - by),
            escape(&tip)
        );
        let mid = bx + bw / 2.0;
        let _ = write!(
            out,
            r#"<text x="{m}" y="{}" text-anchor="middle" font-weight="600">{}</text><text x="{m}" y="{}" text-anchor="middle" font-weight="600">{}</text><text x="{m}" y="{}" text-anchor="middle" fill="{MUTED}" font-size="11">{}</text>"#,
            num(by - 6.0),
            escape(&format!("{shown} ({})", period.count)),
            num(top + plot_h + 16.0),
            escape(name),
            num(top + plot_h + 30.0),
            escape(&period.caption),
            m = num(mid),
        );
    }
    let _ = write!(
        out,
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{MUTED}"/><text x="{}" y="{}" fill="{MUTED}" font-size="11">{}</text>"#,
        num(left + plot_w + 8.0),
        num(top + 4.0),
        escape(&chart.unit),
        l = num(left),
        r = num(left + plot_w),
        b = num(top + plot_h),
    );
    let colour = match chart.tone {
        Tone::Good => "#2f8f46",
        Tone::Bad => ACCENT,
        Tone::Neutral => INK,
    };
    let _ = write!(
        out,
        r#"<text class="verdict" x="{}" y="{}" fill="{colour}" font-weight="600">"#,
        num(left),
        num(top + plot_h + 52.0)
    );
    for (i, line) in verdict.iter().enumerate() {
        let _ = write!(
            out,
            r#"<tspan x="{}" dy="{}">{}</tspan>"#,
            num(left),
            if i == 0 { "0" } else { "16" },
            escape(line)
        );
    }
    out.push_str("</text></svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    /// The SVG has no NaN or infinity anywhere, one root, an accessible name, nothing external.
    fn sound(svg: &str) {
        for bad in ["NaN", "inf", "Infinity"] {
            assert!(!svg.contains(bad), "{bad} in {svg}");
        }
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert_eq!(count(svg, "<svg"), 1);
        // An image, or a group when it has links (an image's links are hidden from readers).
        let role = if svg.contains("<a href=") {
            "group"
        } else {
            "img"
        };
        assert!(svg.contains(&format!(r#"role="{role}""#)), "{svg}");
        assert!(svg.contains("aria-label=\""));
        assert!(svg.contains("<title>"));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert!(!svg.contains("href=\"http"), "{svg}");
        assert!(!svg.contains("url("), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
    }

    fn caption() -> Caption {
        Caption {
            title: "Signalen per thema".into(),
            no_data: "Geen signalen in deze periode".into(),
        }
    }

    fn bar(key: &str, count: u64, share: f64, cumulative: f64, vital: bool) -> ParetoBar {
        ParetoBar {
            key: key.into(),
            label: key.replace('_', " "),
            count,
            share,
            cumulative_share: cumulative,
            vital_few: vital,
            href: None,
        }
    }

    fn pareto_of(bars: Vec<ParetoBar>) -> Pareto {
        Pareto {
            caption: caption(),
            vital_few: "80 %".into(),
            rest: "rest".into(),
            cumulative: "cumulatief".into(),
            bars,
        }
    }

    #[test]
    fn a_pareto_chart_has_a_bar_per_row_and_marks_the_vital_few() {
        let svg = pareto(&pareto_of(vec![
            bar("reachability", 50, 0.5, 0.5, true),
            bar("response_time", 25, 0.25, 0.75, true),
            bar("digital_service", 10, 0.1, 0.85, true),
            bar("payment", 10, 0.1, 0.95, false),
            bar("handoffs", 5, 0.05, 1.0, false),
        ]));
        sound(&svg);
        assert_eq!(count(&svg, r#"class="bar""#), 5, "one bar per row");
        assert_eq!(count(&svg, r#"data-vital="true""#), 3);
        assert_eq!(
            count(&svg, &format!(r#"fill="{VITAL}""#)),
            3 + 1,
            "bars and legend"
        );
        assert!(svg.contains(r#"data-key="reachability" data-value="50""#));
        assert!(svg.contains("<title>reachability: 50 (50.0 %) · cumulatief 50.0 %</title>"));
        assert!(svg.contains(r#"class="line-80""#));
        assert!(svg.contains(r#"class="cumulative""#));
        assert_eq!(count(&svg, "<a "), 0, "no links unless given");
        // The largest bar reaches the top of the axis; the order is the caller's.
        let first = svg.find("reachability").unwrap_or(usize::MAX);
        let last = svg.find("handoffs").unwrap_or(0);
        assert!(first < last);
    }

    #[test]
    fn bars_link_only_when_given_a_link_and_never_to_script() {
        let mut bars = vec![
            bar("a", 3, 0.5, 0.5, true),
            bar("b", 2, 0.33, 0.83, false),
            bar("c", 1, 0.17, 1.0, false),
        ];
        bars[0].href = Some("/signals?theme=a&subject=\"x\"".into());
        bars[2].href = Some(" JavaScript:alert(1)".into());
        let svg = pareto(&pareto_of(bars));
        sound(&svg);
        assert_eq!(count(&svg, "<a href="), 1, "{svg}");
        assert!(svg.contains(r#"<a href="/signals?theme=a&amp;subject=&quot;x&quot;" aria-label="#));
        assert!(svg.contains(r#""><rect class="bar" data-key="a""#));
        assert!(!svg.to_lowercase().contains("javascript"));
        assert_eq!(
            count(&svg, r#"class="bar""#),
            3,
            "the refused link keeps its bar"
        );
    }

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(
            escape(r#"<a href='x'>&"</a>"#),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}c\nd"), "abc\nd");
        let mut b = bar("<script>", 4, 1.0, 1.0, true);
        b.label = "<script>alert('x')</script> & \"co\"".into();
        let mut chart = pareto_of(vec![b]);
        chart.caption.title = "Thema's <b>".into();
        let svg = pareto(&chart);
        sound(&svg);
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains(r#"data-key="&lt;script&gt;""#));
        assert!(
            svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;")
        );
        assert!(svg.contains(r#"aria-label="Thema&#39;s &lt;b&gt;""#));
    }

    #[test]
    fn empty_input_says_there_is_no_data() {
        let charts = [
            pareto(&pareto_of(Vec::new())),
            timeline(&Timeline {
                caption: caption(),
                ..Timeline::default()
            }),
            scatter(&Scatter {
                caption: caption(),
                ..Scatter::default()
            }),
            before_after(&BeforeAfter {
                caption: caption(),
                ..BeforeAfter::default()
            }),
        ];
        for svg in charts {
            sound(&svg);
            assert!(svg.contains("Geen signalen in deze periode"), "{svg}");
            assert!(svg.contains("chart-empty"));
            assert_eq!(count(&svg, r#"class="bar""#), 0);
            assert_eq!(count(&svg, r#"class="point""#), 0);
            assert!(
                svg.contains(r#"aria-label="Signalen per thema: Geen signalen in deze periode""#)
            );
        }
    }

    #[test]
    fn one_row_or_zeros_draw_without_nan() {
        sound(&pareto(&pareto_of(vec![bar("a", 0, 0.0, 0.0, false)])));
        sound(&pareto(&pareto_of(vec![bar("a", 1, 1.0, 1.0, true)])));
        sound(&pareto(&pareto_of(vec![bar(
            "a",
            3,
            f64::NAN,
            f64::INFINITY,
            true,
        )])));
        let one = |count, expected, upper| Timeline {
            caption: caption(),
            buckets: vec![Bucket {
                key: "2026-11-14".into(),
                label: "14 nov".into(),
                count,
                expected,
                upper,
                ..Bucket::default()
            }],
            ..Timeline::default()
        };
        sound(&timeline(&one(0, None, None)));
        sound(&timeline(&one(0, Some(0.0), Some(0.0))));
        sound(&timeline(&one(5, Some(f64::NAN), Some(f64::INFINITY))));
        let point = |frequency, impact| Scatter {
            caption: caption(),
            points: vec![ScatterPoint {
                key: "a".into(),
                label: "a".into(),
                frequency,
                impact,
                href: None,
            }],
            ..Scatter::default()
        };
        sound(&scatter(&point(0, 0.0)));
        sound(&scatter(&point(1, 10.0)));
        sound(&scatter(&point(7, f64::NAN)));
        let ba = |before, after| BeforeAfter {
            caption: caption(),
            before: Period {
                count: 0,
                rate: before,
                caption: String::new(),
            },
            after: Period {
                count: 0,
                rate: after,
                caption: String::new(),
            },
            ..BeforeAfter::default()
        };
        sound(&before_after(&ba(Some(0.0), Some(0.0))));
        sound(&before_after(&ba(Some(0.0), None)));
        sound(&before_after(&ba(Some(f64::INFINITY), Some(f64::NAN))));
        assert_eq!(num(-0.04), "0");
        assert_eq!(num(f64::NEG_INFINITY), "0");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.25), "12.2");
    }

    fn day(key: &str, count: u64, expected: Option<f64>, upper: Option<f64>) -> Bucket {
        Bucket {
            key: key.into(),
            label: key.into(),
            count,
            expected,
            upper,
            ..Bucket::default()
        }
    }

    #[test]
    fn a_timeline_has_a_mark_per_bucket_its_band_and_its_alerts() {
        let mut buckets = vec![
            day("2026-11-01", 2, None, None),
            day("2026-11-02", 3, Some(2.0), Some(6.0)),
            day("2026-11-03", 9, Some(2.5), Some(6.5)),
            day("2026-11-04", 1, None, None),
            day("2026-11-05", 2, Some(2.0), Some(5.0)),
        ];
        buckets[2].alerts = vec![
            AlertMark {
                state: "pending".into(),
                label: "pending".into(),
            },
            AlertMark {
                state: "firing".into(),
                label: "alarm: 9 signalen".into(),
            },
        ];
        buckets[4].alerts = vec![AlertMark {
            state: "resolved".into(),
            label: String::new(),
        }];
        buckets[1].href = Some("/signals?day=2026-11-02".into());
        let mut chart = Timeline {
            caption: caption(),
            count: "signalen".into(),
            expected: "verwacht".into(),
            upper: "bovengrens".into(),
            marks: Marks::Points,
            buckets,
        };
        let svg = timeline(&chart);
        sound(&svg);
        assert_eq!(count(&svg, r#"class="point""#), 5);
        assert_eq!(count(&svg, r#"class="bar""#), 0);
        assert!(svg.contains(r#"class="point" data-key="2026-11-03" data-value="9""#));
        assert_eq!(count(&svg, r#"class="alert""#), 3);
        assert!(svg.contains(r#"class="alert" data-key="2026-11-03" data-state="firing""#));
        assert!(svg.contains(r#"class="alert" data-key="2026-11-05" data-state="resolved""#));
        assert!(svg.contains("<title>2026-11-05: resolved</title>"));
        // Two runs with a band, two expected lines.
        assert_eq!(count(&svg, r#"class="band""#), 2);
        assert_eq!(count(&svg, r#"class="expected""#), 2);
        assert_eq!(count(&svg, "<a href="), 1);
        assert!(svg.contains("2026-11-03: 9 signalen · verwacht 2.5 · bovengrens 6.5"));

        chart.marks = Marks::Bars;
        let svg = timeline(&chart);
        sound(&svg);
        assert_eq!(count(&svg, r#"class="bar""#), 5);
        assert_eq!(count(&svg, r#"class="point""#), 0);
    }

    #[test]
    fn a_long_timeline_labels_some_buckets_and_marks_all() {
        let buckets: Vec<Bucket> = (0..365)
            .map(|d| day(&format!("d{d}"), d % 7, Some(3.0), Some(7.0)))
            .collect();
        let svg = timeline(&Timeline {
            caption: caption(),
            buckets,
            ..Timeline::default()
        });
        sound(&svg);
        assert_eq!(count(&svg, r#"class="point""#), 365);
        assert_eq!(count(&svg, r#"class="band""#), 1);
    }

    #[test]
    fn the_scatter_has_a_point_per_key_split_lines_and_quadrant_names() {
        let points = vec![
            ScatterPoint {
                key: "digital_service".into(),
                label: "digitale dienstverlening".into(),
                frequency: 52,
                impact: 3.4,
                href: Some("/themes/digital_service".into()),
            },
            ScatterPoint {
                key: "payment".into(),
                label: "betaling".into(),
                frequency: 8,
                impact: 1.2,
                href: None,
            },
            ScatterPoint {
                key: "staff_conduct".into(),
                label: "bejegening".into(),
                frequency: 20,
                impact: 4.1,
                href: None,
            },
        ];
        let svg = scatter(&Scatter {
            caption: caption(),
            x_label: "signalen".into(),
            y_label: "impact".into(),
            x_split: 20.0,
            y_split: 3.4,
            corners: Corners {
                top_left: "in de gaten houden".into(),
                top_right: "nu aanpakken".into(),
                bottom_left: "volgen".into(),
                bottom_right: "snelle winst".into(),
            },
            points,
        });
        sound(&svg);
        assert_eq!(count(&svg, r#"class="point""#), 3);
        assert!(svg.contains(
            r#"class="point" data-key="digital_service" data-value="52" data-impact="3.40""#
        ));
        assert_eq!(count(&svg, r#"class="split""#), 2);
        assert_eq!(count(&svg, r#"class="quadrant""#), 4);
        assert!(svg.contains(">nu aanpakken</text>"));
        assert_eq!(count(&svg, "<a href="), 1);
        // On both medians counts as act now (accent), as in `quadrant`.
        assert_eq!(count(&svg, &format!(r#"fill="{ACCENT}""#)), 2);
    }

    #[test]
    fn before_and_after_are_two_bars_with_the_verdict() {
        let svg = before_after(&BeforeAfter {
            caption: Caption {
                title: "DigiD-koppeling hersteld".into(),
                no_data: "nog niet begonnen".into(),
            },
            before_label: "voor".into(),
            after_label: "na".into(),
            unit: "per week".into(),
            before: Period {
                count: 40,
                rate: Some(5.0),
                caption: "19 sep – 13 nov".into(),
            },
            after: Period {
                count: 12,
                rate: Some(1.5),
                caption: "14 nov – 8 jan".into(),
            },
            verdict: "minder signalen: verhouding 0,30 (0,15–0,57), p < 0,0001 — een lange zin die over twee regels loopt".into(),
            tone: Tone::Good,
        });
        sound(&svg);
        assert_eq!(count(&svg, r#"class="bar""#), 2);
        assert!(svg.contains(r#"class="bar" data-key="before" data-value="40" data-rate="5.000""#));
        assert!(svg.contains(r#"class="bar" data-key="after" data-value="12" data-rate="1.500""#));
        assert!(svg.contains(r#"class="verdict""#));
        assert_eq!(count(&svg, "<tspan"), 2, "the verdict wraps");
        assert!(svg.contains("minder signalen"));
    }

    #[test]
    fn axes_are_round() {
        assert_eq!(axis(0.0, true), (1.0, 1.0));
        assert_eq!(axis(3.0, true), (3.0, 1.0));
        assert_eq!(axis(52.0, true), (60.0, 20.0));
        assert_eq!(axis(100.0, true), (100.0, 20.0));
        assert_eq!(axis(f64::NAN, true), (1.0, 1.0));
        let (top, step) = axis(3.4, false);
        assert!(top >= 3.4 && step > 0.0 && (top / step).round() <= 10.0);
        assert_eq!(wrap("a bb ccc", 4), ["a bb", "ccc"]);
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
