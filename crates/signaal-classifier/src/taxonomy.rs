//! The taxonomy file: themes with their phrases, subjects with theirs, and the cue lists
//! (negation, polarity, kind, escalation, language). An organisation's file can start from the
//! default (`extends = "default"`) and add, rename or remove themes, subjects and phrases without
//! recompiling.
//!
//! Phrase syntax: words separated by spaces, matched case- and diacritics-insensitively on word
//! boundaries; a trailing `*` matches any continuation of the last word (`onvriendelijk*` covers
//! "onvriendelijke", "onvriendelijkheid").

use std::collections::BTreeMap;

use serde::Deserialize;
use signaal_core::{CauseSide, SubjectKind};

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
    /// Named sets of words and phrases (`contact = ["telefoon*", "bellen", …]`) that themes
    /// combine in `when`. A file that extends another replaces the concepts it names.
    #[serde(default)]
    pub concepts: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub theme: Vec<ThemeFile>,
    #[serde(default)]
    pub remove_subjects: Vec<String>,
    /// What signals are about, by id (`[subjects.digid]`). A file that extends another adds
    /// subjects and changes the ones it names.
    #[serde(default)]
    pub subjects: BTreeMap<String, SubjectFile>,
}

/// One `[subjects.<id>]` table. Labels and phrases are per language (`label = { nl = "…", en =
/// "…" }`, `phrases.nl = […]`); all languages' phrases are matched in every text.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SubjectFile {
    pub kind: Option<SubjectKind>,
    /// Replaces the labels of the languages it names.
    #[serde(default)]
    pub label: BTreeMap<String, String>,
    /// Replaces the phrases of the languages it names.
    #[serde(default)]
    pub phrases: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub add_phrases: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub remove_phrases: BTreeMap<String, Vec<String>>,
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
    /// Groups of concepts that mean the problem when every concept of a group occurs in one
    /// sentence (`[["contact", "failure"]]`): an object of the theme and what went wrong with it,
    /// in whatever words.
    pub when: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub add_when: Vec<Vec<String>>,
    /// The same for praise (`[["person", "praise"]]`).
    pub when_praised: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub add_when_praised: Vec<Vec<String>>,
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
    pub concepts: BTreeMap<String, Vec<String>>,
    pub subjects: Vec<ResolvedSubject>,
}

#[derive(Debug, Clone)]
pub struct ResolvedSubject {
    pub id: String,
    pub kind: SubjectKind,
    pub label: BTreeMap<String, String>,
    /// Phrases per language.
    pub phrases: BTreeMap<String, Vec<String>>,
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
    pub when: Vec<Vec<String>>,
    pub when_praised: Vec<Vec<String>>,
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
        base.check_concepts()?;
        base.check_subjects()?;
        Ok(base)
    }

    /// Every subject has a snake_case id (it is part of the contract), a label and a phrase.
    fn check_subjects(&self) -> Result<(), TaxonomyError> {
        for s in &self.subjects {
            let snake = s.id.starts_with(|c: char| c.is_ascii_lowercase())
                && s.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !snake {
                return Err(TaxonomyError::SubjectId(s.id.clone()));
            }
            if s.label.values().all(|l| l.trim().is_empty()) {
                return Err(TaxonomyError::SubjectMissing {
                    subject: s.id.clone(),
                    field: "label",
                });
            }
            if s.phrases.values().all(Vec::is_empty) {
                return Err(TaxonomyError::SubjectEmpty(s.id.clone()));
            }
        }
        Ok(())
    }

    /// Every concept a theme combines exists and has words; no group is empty.
    fn check_concepts(&self) -> Result<(), TaxonomyError> {
        for t in &self.themes {
            for group in t.when.iter().chain(&t.when_praised) {
                if group.is_empty() {
                    return Err(TaxonomyError::EmptyGroup(t.id.clone()));
                }
                for name in group {
                    match self.concepts.get(name) {
                        Some(words) if !words.is_empty() => {}
                        _ => {
                            return Err(TaxonomyError::UnknownConcept {
                                theme: t.id.clone(),
                                concept: name.clone(),
                            })
                        }
                    }
                }
            }
        }
        Ok(())
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
        self.concepts.extend(file.concepts);
        for id in &file.remove_subjects {
            let before = self.subjects.len();
            self.subjects.retain(|s| &s.id != id);
            if self.subjects.len() == before {
                return Err(TaxonomyError::UnknownSubject(id.clone()));
            }
        }
        for (id, s) in file.subjects {
            let at = match self.subjects.iter().position(|x| x.id == id) {
                Some(at) => at,
                None => {
                    let kind = s.kind.ok_or_else(|| TaxonomyError::SubjectMissing {
                        subject: id.clone(),
                        field: "kind",
                    })?;
                    self.subjects.push(ResolvedSubject {
                        id,
                        kind,
                        label: BTreeMap::new(),
                        phrases: BTreeMap::new(),
                    });
                    self.subjects.len() - 1
                }
            };
            let existing = &mut self.subjects[at];
            if let Some(k) = s.kind {
                existing.kind = k;
            }
            existing.label.extend(s.label);
            existing.phrases.extend(s.phrases);
            for (lang, add) in s.add_phrases {
                existing.phrases.entry(lang).or_default().extend(add);
            }
            for (lang, remove) in s.remove_phrases {
                if let Some(list) = existing.phrases.get_mut(&lang) {
                    list.retain(|p| !remove.contains(p));
                }
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
                    if let Some(w) = t.when {
                        existing.when = w;
                    }
                    existing.when.extend(t.add_when);
                    if let Some(w) = t.when_praised {
                        existing.when_praised = w;
                    }
                    existing.when_praised.extend(t.add_when_praised);
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
                    let mut when = t.when.unwrap_or_default();
                    when.extend(t.add_when);
                    let mut when_praised = t.when_praised.unwrap_or_default();
                    when_praised.extend(t.add_when_praised);
                    if patterns.is_empty()
                        && positive.is_empty()
                        && topic.is_empty()
                        && near.is_empty()
                        && when.is_empty()
                        && when_praised.is_empty()
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
                        when,
                        when_praised,
                    });
                }
            }
        }
        Ok(())
    }
}
