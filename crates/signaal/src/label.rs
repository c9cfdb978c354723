//! `signaal label`: an analyst's correction of one signal (issue 16), and `signaal eval
//! --register`: the current classifier scored on every correction in the register.

use anyhow::Context;
use clap::Args;
use signaal_api::labels::checked_label;

use crate::config::Config;
use crate::workers;

#[derive(Args)]
pub struct LabelArgs {
    /// The signal's id (as the API and the reports show it).
    pub signal_id: String,
    /// Its themes, comma-separated (`--themes ""` for none).
    #[arg(long, value_delimiter = ',')]
    pub themes: Vec<String>,
    /// complaint, compliment, question or suggestion.
    #[arg(long)]
    pub kind: String,
    /// human, system, mixed or unknown; by default what the themes say (only staff conduct is
    /// human). Given, it must agree with the themes.
    #[arg(long)]
    pub cause: Option<String>,
    /// Who corrects it (default: $USER).
    #[arg(long)]
    pub analyst: Option<String>,
    /// Why, in a few words.
    #[arg(long)]
    pub note: Option<String>,
}

pub async fn run(args: LabelArgs, cfg: &Config) -> anyhow::Result<()> {
    let vocabulary = crate::report::vocabulary(cfg)?;
    let analyst = args
        .analyst
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .filter(|a| !a.trim().is_empty())
        .context("say who corrects it: --analyst NAME")?;
    let label = checked_label(
        &vocabulary,
        &args.signal_id,
        &args.themes,
        &args.kind,
        args.cause.as_deref(),
        &analyst,
        args.note.clone(),
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let store = workers::connect_store(cfg).await?;
    let saved = store.save_label(&label).await;
    store.close().await;
    match saved? {
        Some(l) => {
            println!("{}", serde_json::to_string(&l)?);
            Ok(())
        }
        None => anyhow::bail!("the register has no signal {:?}", args.signal_id),
    }
}

/// The labelled signals as the NDJSON `signaal eval FILE` reads (their stored, redacted text).
pub async fn register_ndjson(cfg: &Config) -> anyhow::Result<(Vec<u8>, usize)> {
    let store = workers::connect_store(cfg).await?;
    let labelled = store.labelled_signals().await;
    store.close().await;
    let labelled = labelled?;
    let mut out = Vec::new();
    for (env, label) in &labelled {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "id": env.signal.id,
                "channel": env.signal.channel.as_str(),
                "text": env.signal.text,
                "themes": label.themes,
                "cause": label.cause.as_str(),
                "kind": label.kind.as_str(),
                "lang": env.classification.lang,
            }),
        )?;
        out.push(b'\n');
    }
    Ok((out, labelled.len()))
}
