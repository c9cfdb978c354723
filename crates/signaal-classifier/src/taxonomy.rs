//! The taxonomy file: themes with their phrases, and the cue lists (negation, polarity, kind,
//! escalation, language). An organisation's file can start from the default (`extends =
//! "default"`) and add, rename or remove themes and phrases without recompiling.
//!
//! Phrase syntax: words separated by spaces, matched case- and diacritics-insensitively on word
//! boundaries; a trailing `*` matches any continuation of the last word (`onvriendelijk*` covers
//! "onvriendelijke", "onvriendelijkheid").

use std::collections::BTreeMap;

use serde::Deserialize;
use signaal_core::CauseSide;

use crate::TaxonomyError;

/// The default taxonomy shipped with signaal (DOMAIN.md's ten themes).
pub const DEFAULT_TAXONOMY: &str = include_str!("default_taxonomy.toml");

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TaxonomyFile {
    pub version: Option<String>,
    /// `"default"`: start from the embedded taxonomy and apply this file on top.
    pub extends: Option<String>,
    #[serde(default)]
    pub remove_themes: Vec<String>,
    #[serde(default)]
    pub cues: Option<CueFile>,
    #[serde(default)]
    pub theme: Vec<ThemeFile>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CueFile {
    pub negation: Option<Vec<String>>,
    pub clause_break: Option<Vec<String>>,
    pub ignore: Option<Vec<String>>,
    pub positive: Option<Vec<String>>,
    pub negative: Option<Vec<String>>,
    pub question: Option<Vec<String>>,
    pub suggestion: Option<Vec<String>>,
    pub sarcasm: Option<Vec<String>>,
    pub escalation: Option<BTreeMap<String, Vec<String>>>,
    pub language: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ThemeFile {
    pub id: String,
    pub label: Option<String>,
    pub cause: Option<CauseSide>,
    /// Phrases that describe the problem (complaint side).
    pub patterns: Option<Vec<String>>,
    /// Phrases that praise the same theme (compliment side).
    pub positive: Option<Vec<String>>,
    /// Phrases that name the theme without praise or blame ("salaris", "factuur").
    pub topic: Option<Vec<String>>,
    /// Pairs of terms that mean the problem when they occur within five words of each other in
    /// one sentence (`["gebeld", "niemand"]`, `["minuten", "wacht*"]`): paraphrases that no
    /// fixed phrase covers.
    pub near: Option<Vec<[String; 2]>>,
    #[serde(default)]
    pub add_near: Vec<[String; 2]>,
    #[serde(default)]
    pub add_topic: Vec<String>,
    #[serde(default)]
    pub add_patterns: Vec<String>,
    #[serde(default)]
    pub remove_patterns: Vec<String>,
    #[serde(default)]
    pub add_positive: Vec<String>,
    #[serde(default)]
    pub remove_positive: Vec<String>,
}

/// A resolved taxonomy: what the engine compiles.
#[derive(Debug, Clone, Default)]
pub struct Taxonomy {
    pub version: String,
    pub themes: Vec<ResolvedTheme>,
    pub negation: Vec<String>,
    pub clause_break: Vec<String>,
    pub ignore: Vec<String>,
    pub positive: Vec<String>,
    pub negative: Vec<String>,
    pub question: Vec<String>,
    pub suggestion: Vec<String>,
    pub sarcasm: Vec<String>,
    pub escalation: BTreeMap<String, Vec<String>>,
    pub language: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct ResolvedTheme {
    pub id: String,
    pub label: String,
    pub cause: CauseSide,
    pub patterns: Vec<String>,
    pub positive: Vec<String>,
    pub topic: Vec<String>,
    pub near: Vec<[String; 2]>,
}

impl Taxonomy {
    pub fn parse(text: &str) -> Result<Taxonomy, TaxonomyError> {
        let file: TaxonomyFile = toml::from_str(text)?;
        let mut base = match file.extends.as_deref() {
            None => Taxonomy::default(),
            Some("default") => Taxonomy::parse(DEFAULT_TAXONOMY)?,
            Some(other) => return Err(TaxonomyError::Extends(other.to_string())),
        };
        base.apply(file)?;
        if base.themes.is_empty() {
            return Err(TaxonomyError::NoThemes);
        }
        Ok(base)
    }

    fn apply(&mut self, file: TaxonomyFile) -> Result<(), TaxonomyError> {
        if let Some(v) = file.version {
            self.version = v;
        } else if self.version.is_empty() {
            self.version = "unversioned".into();
        }
        for id in &file.remove_themes {
            let before = self.themes.len();
            self.themes.retain(|t| &t.id != id);
            if self.themes.len() == before {
                return Err(TaxonomyError::UnknownTheme(id.clone()));
            }
        }
        if let Some(c) = file.cues {
            let set = |dst: &mut Vec<String>, src: Option<Vec<String>>| {
                if let Some(v) = src {
                    *dst = v;
                }
            };
            set(&mut self.negation, c.negation);
            set(&mut self.clause_break, c.clause_break);
            set(&mut self.ignore, c.ignore);
            set(&mut self.positive, c.positive);
            set(&mut self.negative, c.negative);
            set(&mut self.question, c.question);
            set(&mut self.suggestion, c.suggestion);
            set(&mut self.sarcasm, c.sarcasm);
            if let Some(e) = c.escalation {
                self.escalation.extend(e);
            }
            if let Some(l) = c.language {
                self.language.extend(l);
            }
        }
        for t in file.theme {
            match self.themes.iter_mut().find(|x| x.id == t.id) {
                Some(existing) => {
                    if let Some(l) = t.label {
                        existing.label = l;
                    }
                    if let Some(c) = t.cause {
                        existing.cause = c;
                    }
                    if let Some(p) = t.patterns {
                        existing.patterns = p;
                    }
                    if let Some(p) = t.positive {
                        existing.positive = p;
                    }
                    if let Some(p) = t.topic {
                        existing.topic = p;
                    }
                    if let Some(n) = t.near {
                        existing.near = n;
                    }
                    existing.near.extend(t.add_near);
                    existing.topic.extend(t.add_topic);
                    existing.patterns.retain(|p| !t.remove_patterns.contains(p));
                    existing.patterns.extend(t.add_patterns);
                    existing.positive.retain(|p| !t.remove_positive.contains(p));
                    existing.positive.extend(t.add_positive);
                }
                None => {
                    let mut patterns = t.patterns.unwrap_or_default();
                    patterns.extend(t.add_patterns);
                    let mut positive = t.positive.unwrap_or_default();
                    positive.extend(t.add_positive);
                    let mut topic = t.topic.unwrap_or_default();
                    topic.extend(t.add_topic);
                    let mut near = t.near.unwrap_or_default();
                    near.extend(t.add_near);
                    if patterns.is_empty()
                        && positive.is_empty()
                        && topic.is_empty()
                        && near.is_empty()
                    {
                        return Err(TaxonomyError::Empty(t.id));
                    }
                    self.themes.push(ResolvedTheme {
                        label: t.label.ok_or_else(|| TaxonomyError::Missing {
                            theme: t.id.clone(),
                            field: "label",
                        })?,
                        cause: t.cause.ok_or_else(|| TaxonomyError::Missing {
                            theme: t.id.clone(),
                            field: "cause",
                        })?,
                        id: t.id,
                        patterns,
                        positive,
                        topic,
                        near,
                    });
                }
            }
        }
        Ok(())
    }
}
