//! The `signaal` binary: every worker as a subcommand, the one-shot import and the demo.

mod config;
mod demo;
mod import;
mod workers;

use std::path::PathBuf;

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

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the email worker (configured mail folders).
    Email,
    /// Run the phone-log export worker (configured inbox folders).
    Phone,
    /// Run the social media worker (configured X searches and Facebook pages).
    Social,
    /// Run the classifier worker (`signals.raw` → store + `signals.classified`).
    Classifier,
    /// Run the alerter worker (`signals.classified` → `signals.alerts`).
    Alerter,
    /// Run every worker in one process.
    All,
    /// Create the topics (partitions and replication from config) and run store migrations.
    Setup,
    /// Read files of one channel once and publish them (or print them with --dry-run).
    Import(import::ImportArgs),
    /// Run the whole pipeline in one process over the bundled samples and print a report.
    Demo(demo::DemoArgs),
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("signaal: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = config::Config::load(cli.config.as_deref())?;
    use workers::Worker;
    let worker = match cli.command {
        Command::Import(args) => return import::run(args, &cfg).await,
        Command::Demo(args) => return demo::run(args, cfg).await,
        Command::Setup => return workers::setup(&cfg).await,
        Command::Email => Worker::Email,
        Command::Phone => Worker::Phone,
        Command::Social => Worker::Social,
        Command::Classifier => Worker::Classifier,
        Command::Alerter => Worker::Alerter,
        Command::All => Worker::All,
    };
    let shutdown = shutdown_on_signals();
    workers::run(worker, &cfg, shutdown).await
}
