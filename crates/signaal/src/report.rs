//! `signaal report …` and `signaal action …`: the register's analysis on the command line, the
//! same reports the HTTP API serves (`signaal-api`), as a table, JSON or CSV; the summary also
//! as the monthly HTML report (`signaal-web`).

use std::io::Write;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use signaal_api::reports::{self, ActionReport, ImpactReport, ParetoReport, RecurrenceReport};
use signaal_api::{Key, Query, ReportError, Vocabulary};
use signaal_store::analysis::{ActionUpdate, Dimension, NewAction};
use signaal_store::Store;

use crate::config::Config;
use crate::workers;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Signals per theme, subject or theme × subject, most first, with the cumulative share and
    /// the 80 % line.
    Pareto(ReportArgs),
    /// 1x coincidence, 2x notable, 3x pattern within `analysis.recurrence.window_days` (90)
    /// before `--to`: per theme × subject, per subject and per customer.
    Recurrence(ReportArgs),
    /// Frequency × impact per theme (or subject): act now, watch, quick wins, monitor.
    Impact(ReportArgs),
    /// Improvement actions with their before/after measurement.
    Actions(ReportArgs),
    /// The vital few themes, patterns, the act-now quadrant and the actions' verdicts.
    Summary(ReportArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    /// The summary only: the monthly report as one self-contained, printable HTML page.
    Html,
}

/// What any report but the summary says to `--format html`.
const HTML_ONLY: &str = "only the summary has an HTML form (signaal report summary --format html)";

/// The language of the HTML report's headings.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Lang {
    Nl,
    En,
}

impl From<Lang> for signaal_web::report::Lang {
    fn from(l: Lang) -> Self {
        match l {
            Lang::Nl => signaal_web::report::Lang::Nl,
            Lang::En => signaal_web::report::Lang::En,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum By {
    Theme,
    Subject,
    ThemeSubject,
}

impl From<By> for Dimension {
    fn from(b: By) -> Dimension {
        match b {
            By::Theme => Dimension::Theme,
            By::Subject => Dimension::Subject,
            By::ThemeSubject => Dimension::ThemeSubject,
        }
    }
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// First day (YYYY-MM-DD, UTC; default: a year before `--to`).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Last day, included (YYYY-MM-DD, UTC; default: today).
    #[arg(long)]
    pub to: Option<NaiveDate>,
    #[arg(long)]
    pub theme: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
    /// email, phone, twitter, facebook or internal.
    #[arg(long)]
    pub channel: Option<String>,
    /// human, system, mixed or unknown.
    #[arg(long)]
    pub cause: Option<String>,
    /// complaint, compliment, question or suggestion.
    #[arg(long)]
    pub kind: Option<String>,
    /// What Pareto and impact group by.
    #[arg(long, value_enum, default_value = "theme")]
    pub by: By,
    /// Actions: rates per signal of the whole register instead of per week.
    #[arg(long)]
    pub normalise: bool,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// The language of the HTML report's headings (theme and subject names are the taxonomy's).
    #[arg(long, value_enum, default_value = "nl")]
    pub lang: Lang,
}

#[derive(Subcommand)]
pub enum ActionCommand {
    /// Register an improvement action.
    Add {
        #[arg(long)]
        theme: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        description: String,
        #[arg(long)]
        owner: String,
        /// The day the change took effect (YYYY-MM-DD).
        #[arg(long)]
        start: NaiveDate,
        /// planned, running or done.
        #[arg(long, default_value = "running")]
        status: String,
    },
    /// Every action (without measurement: `signaal report actions` measures).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Change an action's description, owner, start or status.
    Update {
        id: i64,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        start: Option<NaiveDate>,
        #[arg(long)]
        status: Option<String>,
    },
}

/// The themes and subjects of the configured taxonomy.
pub fn vocabulary(cfg: &Config) -> anyhow::Result<Vocabulary> {
    let c = workers::classifier(cfg)?;
    Ok(Vocabulary {
        themes: c.themes().map(|t| t.id.clone()).collect(),
        subjects: c.subjects().map(|s| s.id.clone()).collect(),
    })
}

/// The taxonomy's names for theme and subject ids, subjects in `lang`.
fn labels(
    cfg: &Config,
    lang: signaal_web::report::Lang,
) -> anyhow::Result<signaal_web::report::Labels> {
    let c = workers::classifier(cfg)?;
    Ok(signaal_web::report::Labels {
        lang,
        themes: c
            .themes()
            .map(|t| (t.id.clone(), t.label.clone()))
            .collect(),
        subjects: c
            .subjects()
            .map(|s| (s.id.clone(), s.label_in(lang.code()).to_string()))
            .collect(),
    })
}

fn query(a: &ReportArgs) -> anyhow::Result<Query> {
    let to = a.to.unwrap_or_else(|| Utc::now().date_naive());
    let from = match a.from {
        Some(f) => f,
        None => to
            .checked_sub_months(chrono::Months::new(12))
            .and_then(|d| d.succ_opt())
            .context("`--to` is too early for a year before it")?,
    };
    Ok(Query {
        from,
        to,
        theme: a.theme.clone(),
        subject: a.subject.clone(),
        channel: a.channel.clone(),
        cause: a.cause.clone(),
        kind: a.kind.clone(),
    })
}

fn user_error(e: ReportError) -> anyhow::Error {
    match e {
        ReportError::Invalid(m) => anyhow::anyhow!("{m}"),
        ReportError::Store(e) => anyhow::Error::new(e).context("the register"),
    }
}

pub async fn run_report(cmd: ReportCommand, cfg: &Config) -> anyhow::Result<()> {
    let (ReportCommand::Pareto(a)
    | ReportCommand::Recurrence(a)
    | ReportCommand::Impact(a)
    | ReportCommand::Actions(a)
    | ReportCommand::Summary(a)) = &cmd;
    if matches!(a.format, Format::Html) && !matches!(cmd, ReportCommand::Summary(_)) {
        anyhow::bail!("{HTML_ONLY}");
    }
    let q = query(a)?;
    q.validate(&vocabulary(cfg)?).map_err(user_error)?;
    let store = workers::connect_store(cfg).await?;
    let now = Utc::now();
    let mut out = String::new();
    match &cmd {
        ReportCommand::Pareto(a) => {
            let r = reports::pareto_report(&store, &q, a.by.into())
                .await
                .map_err(user_error)?;
            out = render(a.format, &r, pareto_table, pareto_csv)?;
            if matches!(a.format, Format::Table) {
                out.push_str(&classified_by(&r.classifiers));
            }
        }
        ReportCommand::Recurrence(a) => {
            let r = reports::recurrence_report(&store, &cfg.analysis.recurrence, &q)
                .await
                .map_err(user_error)?;
            out = render(a.format, &r, recurrence_table, recurrence_csv)?;
            if matches!(a.format, Format::Table) {
                out.push_str(&classified_by(&r.classifiers));
            }
        }
        ReportCommand::Impact(a) => {
            let r = reports::impact_report(&store, &q, a.by.into())
                .await
                .map_err(user_error)?;
            out = render(a.format, &r, impact_table, impact_csv)?;
            if matches!(a.format, Format::Table) {
                out.push_str(&classified_by(&r.classifiers));
            }
        }
        ReportCommand::Actions(a) => {
            let r = reports::actions_report(&store, &cfg.analysis.action, now, a.normalise)
                .await
                .map_err(user_error)?;
            out = render(a.format, &r, |r| actions_table(r), actions_csv)?;
        }
        ReportCommand::Summary(a) if matches!(a.format, Format::Html) => {
            let data = signaal_web::report::gather(&store, &cfg.analysis, &q, now)
                .await
                .map_err(user_error)?;
            out = signaal_web::report::render_html(&data, &labels(cfg, a.lang.into())?);
        }
        ReportCommand::Summary(a) => {
            let r = reports::summary(&store, &cfg.analysis, &q, now)
                .await
                .map_err(user_error)?;
            match a.format {
                Format::Json => out = serde_json::to_string_pretty(&r)? + "\n",
                Format::Csv => anyhow::bail!("the summary has no CSV form; use --format json"),
                Format::Html => unreachable!("the HTML summary is the arm above"),
                Format::Table => {
                    use std::fmt::Write as _;
                    let _ = writeln!(
                        out,
                        "{} signals from {} to {}",
                        r.signals, r.query.from, r.query.to
                    );
                    let _ = writeln!(out, "\nThe vital few (inside the 80 % line)");
                    for row in &r.vital_few {
                        let _ = writeln!(
                            out,
                            "  {:<28} {:>7}  {:>4.0} %  cum {:>4.0} %",
                            row.key.label(),
                            row.count,
                            100.0 * row.share,
                            100.0 * row.cumulative_share
                        );
                    }
                    let _ = writeln!(out, "\nPatterns (3x or more in the window)");
                    for p in &r.patterns {
                        let _ = writeln!(out, "  {:<40} {:>5}x", p.key.label(), p.count);
                    }
                    if r.patterns.is_empty() {
                        let _ = writeln!(out, "  none");
                    }
                    let _ = writeln!(out, "\nCustomers who came back: {}", r.returning_customers);
                    let _ = writeln!(out, "\nAct now (frequent and high impact)");
                    for row in &r.act_now {
                        let _ = writeln!(
                            out,
                            "  {:<28} {:>7}  impact {:.1}",
                            row.key.label(),
                            row.count,
                            row.mean_impact
                        );
                    }
                    out.push_str("\nImprovement actions\n");
                    out.push_str(&actions_table(&r.actions));
                    out.push_str(&classified_by(&r.classifiers));
                }
            }
        }
    }
    store.close().await;
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(())
}

/// The closing line of a table: which classifier versions the report covers, and what to do
/// when it mixes them.
fn classified_by(versions: &[signaal_store::analysis::VersionCount]) -> String {
    let list: Vec<String> = versions
        .iter()
        .map(|v| format!("{} ({} signals)", v.classifier, v.signals))
        .collect();
    match list.len() {
        0 => String::new(),
        1 => format!("\nClassified by {}.\n", list[0]),
        _ => format!(
            "\nClassified by {}: mixed versions; `signaal reclassify` brings them to the current one.\n",
            list.join(", ")
        ),
    }
}

fn render<T: serde::Serialize>(
    format: Format,
    r: &T,
    table: impl Fn(&T) -> String,
    csv: impl Fn(&T, &mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(r)? + "\n",
        Format::Table => table(r),
        Format::Html => anyhow::bail!("{HTML_ONLY}"),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            csv(r, &mut w)?;
            String::from_utf8(w.into_inner().context("csv")?)?
        }
    })
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

fn bar(value: f64, max: f64, width: usize) -> String {
    let n = if max > 0.0 {
        (value / max * width as f64).round() as usize
    } else {
        0
    };
    "█".repeat(n.max(usize::from(value > 0.0)))
}

fn pareto_table(r: &ParetoReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} signals from {} to {} by {}; ── marks the 80 % line",
        r.pareto.total,
        r.query.from,
        r.query.to,
        match r.dimension {
            Dimension::Theme => "theme",
            Dimension::Subject => "subject",
            Dimension::ThemeSubject => "theme × subject",
        }
    );
    let max = r.pareto.rows.first().map_or(0, |x| x.count) as f64;
    let mut crossed = false;
    for row in &r.pareto.rows {
        if !row.vital_few && !crossed {
            crossed = true;
            let _ = writeln!(o, "  {}", "─".repeat(70));
        }
        let _ = writeln!(
            o,
            "  {:<32} {:>8}  {:>5.1} %  cum {:>5.1} %  {}",
            row.key.label(),
            row.count,
            100.0 * row.share,
            100.0 * row.cumulative_share,
            bar(row.count as f64, max, 24)
        );
    }
    o
}

fn pareto_csv(r: &ParetoReport, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record([
        "theme",
        "subject",
        "count",
        "share",
        "cumulative_share",
        "vital_few",
    ])?;
    for row in &r.pareto.rows {
        w.write_record([
            opt(&row.key.theme),
            opt(&row.key.subject),
            &row.count.to_string(),
            &format!("{:.6}", row.share),
            &format!("{:.6}", row.cumulative_share),
            &row.vital_few.to_string(),
        ])?;
    }
    Ok(())
}

fn recurrence_table(r: &RecurrenceReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Recurrence from {} to {} (1x coincidence, 2x notable, 3x pattern)",
        r.since.format("%Y-%m-%d"),
        r.until.format("%Y-%m-%d")
    );
    for (title, rows) in [
        ("Theme × subject", &r.theme_subject),
        ("Subject", &r.subject),
    ] {
        let _ = writeln!(o, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for g in rows.iter().filter(|g| g.count >= 2) {
            let _ = writeln!(
                o,
                "  {:<11} {:<40} {:>5}x  {} – {}  {}",
                level_name(g.level),
                g.key.label(),
                g.count,
                g.first.format("%Y-%m-%d"),
                g.last.format("%Y-%m-%d"),
                g.samples.join(" ")
            );
        }
        let once = rows.iter().filter(|g| g.count < 2).count();
        if once > 0 {
            let _ = writeln!(o, "  …and {once} seen once (coincidence)");
        }
    }
    let _ = writeln!(o, "\nCustomers who came back");
    for g in &r.author {
        let _ = writeln!(
            o,
            "  {:<11} {:<34} {:>5}x  {} – {}",
            level_name(g.level),
            g.key,
            g.count,
            g.first.format("%Y-%m-%d %H:%M"),
            g.last.format("%Y-%m-%d %H:%M"),
        );
    }
    let _ = writeln!(o, "  …and {} customers once", r.authors_once);
    o
}

fn recurrence_csv(r: &RecurrenceReport, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record([
        "group", "theme", "subject", "author", "level", "count", "first", "last", "samples",
    ])?;
    let level = |l: signaal_analysis::Level| level_name(l).to_string();
    for (group, rows) in [("theme_subject", &r.theme_subject), ("subject", &r.subject)] {
        for g in rows {
            w.write_record([
                group,
                opt(&g.key.theme),
                opt(&g.key.subject),
                "",
                &level(g.level),
                &g.count.to_string(),
                &g.first.to_rfc3339(),
                &g.last.to_rfc3339(),
                &g.samples.join(" "),
            ])?;
        }
    }
    for g in &r.author {
        w.write_record([
            "author",
            "",
            "",
            &g.key,
            &level(g.level),
            &g.count.to_string(),
            &g.first.to_rfc3339(),
            &g.last.to_rfc3339(),
            &g.samples.join(" "),
        ])?;
    }
    Ok(())
}

/// A recurrence level as the reports write it.
pub fn level_name(l: signaal_analysis::Level) -> &'static str {
    match l {
        signaal_analysis::Level::Pattern => "pattern",
        signaal_analysis::Level::Notable => "notable",
        signaal_analysis::Level::Coincidence => "coincidence",
    }
}

pub fn quadrant_name(q: signaal_analysis::Quadrant) -> &'static str {
    match q {
        signaal_analysis::Quadrant::ActNow => "act now",
        signaal_analysis::Quadrant::Watch => "watch",
        signaal_analysis::Quadrant::QuickWins => "quick wins",
        signaal_analysis::Quadrant::Monitor => "monitor",
    }
}

fn impact_table(r: &ImpactReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let q = &r.quadrants;
    let _ = writeln!(
        o,
        "Frequency × impact from {} to {}: medians {:.0} signals, impact {:.2} (0–10)",
        r.query.from, r.query.to, q.median_count, q.median_impact
    );
    let mut last = None;
    for row in &q.rows {
        if last != Some(row.quadrant) {
            last = Some(row.quadrant);
            let _ = writeln!(o, "\n{}", quadrant_name(row.quadrant));
        }
        let _ = writeln!(
            o,
            "  {:<32} {:>8} signals  impact {:>4.2}  total {:>9.1}",
            row.key.label(),
            row.count,
            row.mean_impact,
            row.total_impact
        );
    }
    o
}

fn impact_csv(r: &ImpactReport, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record([
        "theme",
        "subject",
        "count",
        "mean_impact",
        "total_impact",
        "quadrant",
    ])?;
    for row in &r.quadrants.rows {
        w.write_record([
            opt(&row.key.theme),
            opt(&row.key.subject),
            &row.count.to_string(),
            &format!("{:.4}", row.mean_impact),
            &format!("{:.4}", row.total_impact),
            quadrant_name(row.quadrant),
        ])?;
    }
    Ok(())
}

fn target(a: &signaal_store::analysis::Action) -> String {
    Key {
        theme: a.theme.clone(),
        subject: a.subject.clone(),
    }
    .label()
}

fn actions_table(r: &[ActionReport]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    if r.is_empty() {
        let _ = writeln!(o, "  none (signaal action add …)");
    }
    for a in r {
        let verdict = match (&a.measurement, &a.error) {
            (Some(m), _) => m.summary.clone(),
            (None, Some(e)) => format!("cannot measure: {e}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            o,
            "  #{} {} (from {}, {}, {}): {}\n      {verdict}",
            a.action.id,
            target(&a.action),
            a.action.start_date,
            a.action.status,
            a.action.owner,
            a.action.description,
        );
    }
    o
}

fn actions_csv(r: &Vec<ActionReport>, w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record([
        "id",
        "theme",
        "subject",
        "description",
        "owner",
        "start_date",
        "status",
        "before",
        "after",
        "rate_ratio",
        "lower",
        "upper",
        "verdict",
        "summary",
    ])?;
    for a in r {
        let m = a.measurement.as_ref();
        let rr = m.and_then(|m| m.rate_ratio.as_ref());
        let num = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        w.write_record([
            &a.action.id.to_string(),
            opt(&a.action.theme),
            opt(&a.action.subject),
            &a.action.description,
            &a.action.owner,
            &a.action.start_date.to_string(),
            &a.action.status,
            &m.map(|m| m.before.count.to_string()).unwrap_or_default(),
            &m.map(|m| m.after.count.to_string()).unwrap_or_default(),
            &num(rr.map(|r| r.estimate)),
            &num(rr.map(|r| r.lower)),
            &num(rr.map(|r| r.upper)),
            &m.map(|m| {
                serde_json::to_value(m.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .unwrap_or_default(),
            &m.map(|m| m.summary.clone())
                .or_else(|| a.error.clone())
                .unwrap_or_default(),
        ])?;
    }
    Ok(())
}

pub async fn run_action(cmd: ActionCommand, cfg: &Config) -> anyhow::Result<()> {
    let vocabulary = vocabulary(cfg)?;
    let check = |theme: &Option<String>, subject: &Option<String>| -> anyhow::Result<()> {
        let today = Utc::now().date_naive();
        let mut q = Query::new(today, today);
        q.theme = theme.clone();
        q.subject = subject.clone();
        q.validate(&vocabulary).map_err(user_error)
    };
    let store: Store = workers::connect_store(cfg).await?;
    let now = Utc::now();
    let mut out = std::io::stdout();
    match cmd {
        ActionCommand::Add {
            theme,
            subject,
            description,
            owner,
            start,
            status,
        } => {
            check(&theme, &subject)?;
            reports::check_year("--start", start).map_err(user_error)?;
            let a = store
                .add_action(
                    &NewAction {
                        theme,
                        subject,
                        description,
                        owner,
                        start_date: start,
                        status,
                    },
                    now,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            writeln!(out, "{}", serde_json::to_string(&a)?)?;
        }
        ActionCommand::List { format } => {
            let list = store.actions().await?;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?,
                Format::Csv => {
                    let mut w = csv::Writer::from_writer(Vec::new());
                    w.write_record([
                        "id",
                        "theme",
                        "subject",
                        "description",
                        "owner",
                        "start_date",
                        "status",
                    ])?;
                    for a in &list {
                        w.write_record([
                            &a.id.to_string(),
                            opt(&a.theme),
                            opt(&a.subject),
                            &a.description,
                            &a.owner,
                            &a.start_date.to_string(),
                            &a.status,
                        ])?;
                    }
                    out.write_all(&w.into_inner().context("csv")?)?;
                }
                Format::Html => anyhow::bail!("{HTML_ONLY}"),
                Format::Table => {
                    for a in &list {
                        writeln!(
                            out,
                            "#{} {} (from {}, {}, {}): {}",
                            a.id,
                            target(a),
                            a.start_date,
                            a.status,
                            a.owner,
                            a.description
                        )?;
                    }
                }
            }
        }
        ActionCommand::Update {
            id,
            description,
            owner,
            start,
            status,
        } => {
            if let Some(d) = start {
                reports::check_year("--start", d).map_err(user_error)?;
            }
            let update = ActionUpdate {
                description,
                owner,
                start_date: start,
                status,
            };
            match store
                .update_action(id, &update, now)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Some(a) => writeln!(out, "{}", serde_json::to_string(&a)?)?,
                None => anyhow::bail!("there is no action #{id}"),
            }
        }
    }
    store.close().await;
    Ok(())
}

/// `signaal serve`: the API, the coordinator's page and (with `web.enabled`) its live feed from
/// `signals.classified`, until `shutdown`.
pub async fn serve_api(
    cfg: &Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(cfg.api.listen)
        .await
        .with_context(|| format!("cannot listen on {} (`api.listen`)", cfg.api.listen))?;
    serve_on(cfg, listener, shutdown).await
}

/// [`serve_api`] on a listener bound already (`signaal demo --serve` picks a free port).
pub async fn serve_on(
    cfg: &Config,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    // `api.listen` is checked with the configuration; an address given otherwise (`demo
    // --listen`) is held to the same rule here.
    let open = cfg.api.token.is_empty() && cfg.api.token_file.is_none();
    if open && !addr.ip().is_loopback() {
        anyhow::bail!(
            "{addr} is not a loopback address and no `api.token` or `api.token_file` is set: \
             without a token the page and the API listen on loopback only"
        );
    }
    let c = workers::classifier(cfg)?;
    let vocabulary = vocabulary(cfg)?;
    let themes = serde_json::to_value(c.themes().collect::<Vec<_>>())?;
    let subjects = serde_json::to_value(c.subjects().collect::<Vec<_>>())?;
    let store = workers::connect_store(cfg).await?;
    let labels = signaal_web::page::Labels::from_taxonomy(&themes, &subjects);
    let app = std::sync::Arc::new(signaal_api::http::AppState {
        store: store.clone(),
        analysis: cfg.analysis.clone(),
        api: cfg.api.clone(),
        vocabulary,
        themes,
        subjects,
        detect: cfg.alerter.detect.clone(),
    });
    let hub = signaal_web::live::Hub::new(cfg.web.live_buffer);
    let feed = cfg.web.enabled.then(|| {
        let bus = cfg.bus.clone();
        let hub = hub.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = signaal_web::live::feed(&bus, hub, stop.clone()).await {
                // The page and the API still work; only the live feed is gone.
                tracing::error!(error = %format!("{e:#}"), "the live feed stopped");
            }
        })
    });
    let served = if cfg.web.enabled {
        let state = std::sync::Arc::new(signaal_web::WebState { app, hub, labels });
        signaal_web::server::serve(listener, state, shutdown.clone()).await
    } else {
        signaal_api::http::serve(listener, app, shutdown.clone()).await
    }
    .with_context(|| format!("serving on {addr}"));
    shutdown.cancel();
    if let Some(feed) = feed {
        let _ = feed.await;
    }
    store.close().await;
    served
}
