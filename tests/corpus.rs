//! The labelled corpus (issue 16): every record in the labelling guide's format (`corpus/GUIDE.md`:
//! the seven keys, known values, the cause that follows from the themes), ids unique across
//! files, no text of the blind test set also in the training data, enough of it, and the blind set
//! unchanged since its hash was recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

mod common;
use common::{repo, Result};

/// The default taxonomy's theme ids: the labels the guide allows.
static THEMES: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(
        || match signaal_classifier::Classifier::default_taxonomy() {
            Ok(c) => c.themes().map(|t| t.id.clone()).collect(),
            Err(e) => panic!("the default taxonomy: {e}"),
        },
    );

fn cause_of(themes: &[String]) -> &'static str {
    signaal_core::Cause::of_themes(themes.iter().map(String::as_str)).as_str()
}

/// Every record of `path`, checked: (id, text).
fn records(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = format!("{}:{}", path.display(), n + 1);
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("{at}: {e}"))?;
        let o = v.as_object().ok_or(format!("{at}: not an object"))?;
        let keys: BTreeSet<&str> = o.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> =
            ["id", "channel", "text", "themes", "cause", "kind", "lang"].into();
        assert_eq!(keys, want, "{at}");
        let s = |k: &str| o[k].as_str().unwrap_or_default().to_string();
        assert!(
            ["email", "phone", "twitter", "facebook"].contains(&s("channel").as_str()),
            "{at}"
        );
        assert!(
            ["complaint", "compliment", "question", "suggestion"].contains(&s("kind").as_str()),
            "{at}"
        );
        assert!(["nl", "en"].contains(&s("lang").as_str()), "{at}");
        let themes: Vec<String> = serde_json::from_value(o["themes"].clone())?;
        for t in &themes {
            assert!(THEMES.contains(t), "{at}: theme {t}");
        }
        assert_eq!(
            themes.iter().collect::<BTreeSet<_>>().len(),
            themes.len(),
            "{at}: a theme twice"
        );
        assert_eq!(
            s("cause"),
            cause_of(&themes),
            "{at}: the cause follows from the themes"
        );
        assert!(!s("text").trim().is_empty(), "{at}: no text");
        out.push((s("id"), s("text")));
    }
    Ok(out)
}

fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .collect();
    v.sort();
    Ok(v)
}

#[test]
fn the_corpus_is_well_formed_large_enough_and_the_blind_set_untouched() -> Result {
    let corpus = repo().join("corpus");
    // Two blind sets, each written from the guide alone before the model it first scored.
    let mut blind = Vec::new();
    for name in ["blind/blind", "blind2/blind2"] {
        let path = corpus.join(format!("{name}.ndjson"));
        let recorded = std::fs::read_to_string(corpus.join(format!("{name}.sha256")))?;
        let digest = hex::encode(Sha256::digest(std::fs::read(&path)?));
        assert_eq!(
            recorded.split_whitespace().next(),
            Some(digest.as_str()),
            "{name}: the blind set changed since its hash was recorded"
        );
        let set = records(&path)?;
        assert!(set.len() >= 300, "{name}: {} blind signals", set.len());
        blind.extend(set);
    }
    let blind_ids: BTreeSet<&str> = blind.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(blind_ids.len(), blind.len(), "an id in both blind sets");

    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut training = Vec::new();
    for f in files(&corpus.join("train"))? {
        for (id, text) in records(&f)? {
            if let Some(other) = ids.insert(id.clone(), f.clone()) {
                panic!("id {id} in {} and {}", other.display(), f.display());
            }
            training.push(text);
        }
    }
    assert!(
        training.len() + blind.len() >= 3000,
        "{} training and {} blind signals",
        training.len(),
        blind.len()
    );
    let train_texts: BTreeSet<&str> = training.iter().map(String::as_str).collect();
    for (id, text) in &blind {
        assert!(
            !train_texts.contains(text.as_str()),
            "blind {id} is also training data"
        );
        assert!(!ids.contains_key(id), "blind id {id} also in training data");
    }
    Ok(())
}
