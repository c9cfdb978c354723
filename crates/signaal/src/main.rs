//! The `signaal` binary: every worker as a subcommand, the one-shot import and the demo.

mod alerts;
mod config;
mod demo;
mod import;
mod label;
mod offline;
mod reclassify;
mod report;
mod serve;
mod train;
mod workers;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "signaal",
    version,
    about = "Listen to customers: every signal through Kafka, classified, registered, alerted"
)]
struct Cli {
    /// Configuration file (TOML). Environment variables `SIGNAAL_…` override it.
    #[arg(long, short, global = true, env = "SIGNAAL_CONFIG")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// Serve `/healthz` and Prometheus `/metrics` on this address (e.g. 0.0.0.0:9100).
    #[arg(long, env = "SIGNAAL_LISTEN")]
    listen: Option<std::net::SocketAddr>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the email worker (configured mail folders).
    Email(WorkerArgs),
    /// Run the phone-log export worker (configured inbox folders).
    Phone(WorkerArgs),
    /// Run the social media worker (configured X searches and Facebook pages).
    Social(WorkerArgs),
    /// Run the classifier worker (`signals.raw` → store + `signals.classified`).
    Classifier(WorkerArgs),
    /// Run the alerter worker (`signals.classified` → `signals.alerts`).
    Alerter(WorkerArgs),
    /// Run the stats worker (`signals.classified`, `signals.alerts` → the register's numbers per
    /// series and hour or day on the compacted `signals.stats`). Run one.
    Stats(WorkerArgs),
    /// Run every worker in one process.
    All(WorkerArgs),
    /// Exit 0 when a worker's health endpoint answers 200 (for container health checks).
    Health {
        #[arg(long, default_value = "http://127.0.0.1:9100/healthz")]
        url: String,
    },
    /// Create the topics (partitions and replication from config) and run store migrations.
    Setup,
    /// Read files of one channel once and publish them (or print them with --dry-run).
    Import(import::ImportArgs),
    /// Run the whole pipeline in one process over the bundled samples and print a report.
    Demo(demo::DemoArgs),
    /// Classify NDJSON from stdin (`{"text": …}` per line); one result per line on stdout.
    Classify,
    /// Score the classifier on a labelled NDJSON file (precision, recall, F1, accuracies).
    Eval(offline::EvalArgs),
    /// Spike alerts offline: `backtest` runs the live alerter's detector over history (the
    /// register, classified NDJSON or a CSV of counts).
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// The register's analysis: `pareto`, `recurrence`, `impact`, `actions`, `summary`.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Improvement actions: `add`, `list`, `update` (measured by `report actions`).
    #[command(subcommand)]
    Action(report::ActionCommand),
    /// Classify stored signals again with the current taxonomy (resumable: signals the current
    /// version classified already are passed over).
    Reclassify(reclassify::ReclassifyArgs),
    /// An analyst's correction of one signal's themes, kind and cause: stored as a label, and
    /// the register counts the signal as corrected (a reclassification never overwrites it).
    Label(label::LabelArgs),
    /// Train the learned layer on labelled signals (NDJSON files, and with --register the
    /// analysts' corrections); prints the development scores of the rules alone and with it.
    Train(train::TrainArgs),
    /// Serve the register's analysis as an HTTP API (`[api]`: listen address and token).
    Serve,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNAAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels the token on SIGTERM or Ctrl-C, so every loop can finish its batch and commit.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {},
                        _ = term.recv() => {},
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested; finishing current batches");
        t.cancel();
    });
    token
}

/// jemalloc keeps memory per size class in a few arenas: under glibc's malloc each of the
/// process's threads (async workers, classification, librdkafka) kept its own arena at its peak,
/// and a classifier with 30 MiB of live data had 85 MiB resident.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An error and its causes, each said once. Many errors carry their cause's text in their own
/// message ("could not connect …: error returned from database: password authentication
/// failed"), so anyhow's `{:#}` would say it two or three times; a cause whose text was already
/// said is left out.
pub(crate) fn error_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The last line of a failed run, in the log's format: with `--log-format json` a log
/// collector gets it as JSON like every line before it (the shape tracing's JSON lines have),
/// whatever `SIGNAAL_LOG` filters.
fn final_error_line(format: LogFormat, error: &str) -> String {
    match format {
        LogFormat::Text => format!("signaal: {error}"),
        LogFormat::Json => serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "fields": { "message": "signaal stopped", "error": error },
            "target": "signaal",
        })
        .to_string(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format;
    init_logging(log_format);
    // Few blocking threads: CPU work (classification) runs there in batches, and every extra
    // thread that allocates gets a malloc arena of its own that keeps its peak (the classifier
    // was 145 MiB RSS with a dozen of them).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let e = anyhow::Error::from(e).context("cannot start the async runtime");
            eprintln!("{}", final_error_line(log_format, &error_chain(&e)));
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // An error may quote its input (a 50 MB line): cut to a readable size.
            let text = error_chain(&e);
            eprintln!(
                "{}",
                final_error_line(log_format, &signaal_core::brief(&text))
            );
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use workers::Worker;
    let (worker, args) = match cli.command {
        Command::Health { url } => return serve::check(&url).await,
        Command::Import(args) => {
            return import::run(args, &config::Config::load(cli.config.as_deref())?).await
        }
        Command::Demo(args) => {
            return demo::run(args, config::Config::load(cli.config.as_deref())?).await
        }
        Command::Setup => {
            return workers::setup(&config::Config::load(cli.config.as_deref())?).await
        }
        Command::Classify => {
            let cfg = config::Config::load(cli.config.as_deref())?;
            let (ok, bad) =
                offline::classify(&cfg, std::io::stdin().lock(), std::io::stdout().lock())?;
            eprintln!("classified {ok} signals, {bad} lines with errors");
            return Ok(());
        }
        Command::Eval(args) => {
            let cfg = config::Config::load(cli.config.as_deref())?;
            if args.register {
                return offline::eval_register(&cfg, &args).await;
            }
            return offline::eval(&cfg, &args);
        }
        Command::Train(args) => {
            return train::run(args, &config::Config::load(cli.config.as_deref())?).await
        }
        Command::Label(args) => {
            return label::run(args, &config::Config::load(cli.config.as_deref())?).await
        }
        Command::Alerts(cmd) => {
            return alerts::run(cmd, &config::Config::load(cli.config.as_deref())?).await
        }
        Command::Report(cmd) => {
            return report::run_report(cmd, &config::Config::load(cli.config.as_deref())?).await
        }
        Command::Action(cmd) => {
            return report::run_action(cmd, &config::Config::load(cli.config.as_deref())?).await
        }
        Command::Reclassify(args) => {
            let cfg = config::Config::load(cli.config.as_deref())?;
            return reclassify::run(args, &cfg, shutdown_on_signals()).await;
        }
        Command::Serve => {
            let cfg = config::Config::load(cli.config.as_deref())?;
            return report::serve_api(&cfg, shutdown_on_signals()).await;
        }
        Command::Email(a) => (Worker::Email, a),
        Command::Phone(a) => (Worker::Phone, a),
        Command::Social(a) => (Worker::Social, a),
        Command::Classifier(a) => (Worker::Classifier, a),
        Command::Alerter(a) => (Worker::Alerter, a),
        Command::Stats(a) => (Worker::Stats, a),
        Command::All(a) => (Worker::All, a),
    };
    let cfg = config::Config::load(cli.config.as_deref())?;
    let shutdown = shutdown_on_signals();
    let ops = match args.listen {
        Some(addr) => {
            let listener = serve::bind(addr).await?;
            let handle = serve::install_recorder()?;
            let stop = shutdown.clone();
            Some(tokio::spawn(async move {
                let served = serve::serve(listener, handle, stop.clone()).await;
                // Without its endpoint a worker looks dead to its orchestrator: stop it too.
                stop.cancel();
                served
            }))
        }
        None => None,
    };
    let result = workers::run(worker, &cfg, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(ops) = ops {
        ops.await.context("operations endpoint task")??;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message ends with its cause's message, as sqlx's and many others do.
    #[derive(Debug)]
    struct Says {
        text: &'static str,
        cause: Option<Box<Says>>,
    }

    impl std::fmt::Display for Says {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)?;
            match &self.cause {
                Some(c) => write!(f, ": {c}"),
                None => Ok(()),
            }
        }
    }

    impl std::error::Error for Says {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause.as_deref().map(|c| c as _)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let refused = Says {
            text: "password authentication failed for user \"signaal\"",
            cause: None,
        };
        let database = Says {
            text: "error returned from database",
            cause: Some(Box::new(refused)),
        };
        let connect = Says {
            text: "could not connect to postgresql at db:5432",
            cause: Some(Box::new(database)),
        };
        let e =
            anyhow::Error::from(connect).context("store `postgres://signaal:***@db:5432/signaal`");
        assert!(format!("{e:#}").matches("password authentication").count() > 1);
        assert_eq!(
            error_chain(&e),
            "store `postgres://signaal:***@db:5432/signaal`: could not connect to postgresql at \
             db:5432: error returned from database: password authentication failed for user \
             \"signaal\""
        );
        // Causes that add something are all kept, in order.
        let e = anyhow::anyhow!("connection refused")
            .context("cannot reach Kafka")
            .context("setup");
        assert_eq!(
            error_chain(&e),
            "setup: cannot reach Kafka: connection refused"
        );
    }

    #[test]
    fn the_final_error_line_is_json_in_json_mode() -> anyhow::Result<()> {
        let line = final_error_line(
            LogFormat::Json,
            "cannot listen on 127.0.0.1:9100: \"in use\"",
        );
        let v: serde_json::Value = serde_json::from_str(&line)?;
        assert_eq!(v["level"], "ERROR");
        assert_eq!(
            v["fields"]["error"],
            "cannot listen on 127.0.0.1:9100: \"in use\""
        );
        assert!(!line.contains('\n'));
        assert_eq!(final_error_line(LogFormat::Text, "x"), "signaal: x");
        Ok(())
    }
}
