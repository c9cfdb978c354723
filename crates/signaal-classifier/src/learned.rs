//! The learned layer beside the rules (issue 16): a linear model (`signaal-learn`) over the
//! text's words, word pairs and character n-grams, with the rules' own findings as features,
//! adds the themes the phrase lists miss and decides the kind when it is sure.
//!
//! The rules keep what they do best: every theme they find stays (with its evidence), and the
//! cause still follows from the themes. The model adds a theme when its probability reaches the
//! theme's threshold (chosen on the development set), with the words that contributed most as
//! its evidence — a model-only tag without such words is not added.
//!
//! Staff conduct (from the rules or the model) stays only when the text has someone it can be
//! about: a staff role or "hij"/"zij" (the `person` concept), or — when the model gives staff
//! conduct at least `add_min` — a `referent` word ("ze", "iemand", "die man", "they") or a
//! capitalised word inside a sentence. Referent and capitalised words occur in most texts, so
//! there it is the model's probability that decides; a text with none of them (tone words
//! alone: "Onbeschoft gewoon, drie maanden niks horen") never gets staff conduct.

use signaal_core::{Cause, Classification, Evidence, Kind, ThemeTag};
use signaal_learn::Model;

use crate::Classifier;

/// Model words shown as a model-only theme's evidence.
const EVIDENCE_WORDS: usize = 3;

/// A text of fewer words gets no theme from the model alone: the features are normalised per
/// kind, so a single word weighs as much as a whole sentence, and "kort" collected themes.
const MIN_WORDS: usize = 4;

/// How the model's answers are combined with the rules'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The model's kind replaces the rules' when its probability is at least this (1.0: never).
    pub kind_min: f32,
    /// A rule theme the model gives less than this probability is dropped (0.0: never).
    pub veto_below: f32,
    /// A theme only the model found needs at least this probability besides its threshold
    /// (thresholds chosen on the development set can be low; a one-word text must not collect
    /// themes from the model's prior).
    pub add_min: f32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            kind_min: 0.5,
            veto_below: 0.1,
            add_min: 0.3,
        }
    }
}

/// The model that ships inside the binary (`signaal train`'s output on `corpus/train` and the
/// older labelled sets; see `BENCHMARKS.md`).
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../model/default.model");

/// `[classifier.learned]` in the configuration.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LearnedConfig {
    /// Combine the model with the rules (default true; false: the rules alone).
    pub enabled: bool,
    /// A model file from `signaal train`; the embedded default when absent.
    pub model: Option<std::path::PathBuf>,
    /// See [`Policy`].
    pub kind_min: f32,
    pub veto_below: f32,
    pub add_min: f32,
}

impl Default for LearnedConfig {
    fn default() -> Self {
        let p = Policy::default();
        LearnedConfig {
            enabled: true,
            model: None,
            kind_min: p.kind_min,
            veto_below: p.veto_below,
            add_min: p.add_min,
        }
    }
}

impl LearnedConfig {
    /// The configured model, or `None` when the layer is off. The error names the file and
    /// what is wrong with it.
    pub fn load(&self) -> Result<Option<Learned>, String> {
        if !self.enabled {
            return Ok(None);
        }
        for (name, v) in [
            ("kind_min", self.kind_min),
            ("veto_below", self.veto_below),
            ("add_min", self.add_min),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!(
                    "`classifier.learned.{name}` = {v} is out of range (0–1)"
                ));
            }
        }
        let model = match &self.model {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    format!(
                        "cannot read `classifier.learned.model` {}: {e}",
                        path.display()
                    )
                })?;
                Model::from_bytes(&bytes)
                    .map_err(|e| format!("`classifier.learned.model` {}: {e}", path.display()))?
            }
            None => {
                Model::from_bytes(DEFAULT_MODEL).map_err(|e| format!("the embedded model: {e}"))?
            }
        };
        Ok(Some(Learned {
            model,
            policy: Policy {
                kind_min: self.kind_min,
                veto_below: self.veto_below,
                add_min: self.add_min,
            },
        }))
    }
}

/// A trained model and how it is combined.
pub struct Learned {
    pub model: Model,
    pub policy: Policy,
}

/// The features the rules give the model: what they found (themes, kind, cause), the concepts
/// with a word in the text, escalation words, and whether the text names someone.
pub fn rule_features(c: &Classification, concepts: &[&str], text: &str) -> Vec<String> {
    let mut out: Vec<String> = c
        .themes
        .iter()
        .map(|t| format!("rule:theme:{}", t.id))
        .collect();
    out.push(format!("rule:kind:{}", c.kind.as_str()));
    out.push(format!("rule:cause:{}", c.cause.as_str()));
    out.extend(concepts.iter().map(|k| format!("concept:{k}")));
    if !c.escalation.is_empty() {
        out.push("rule:escalation".into());
    }
    if names_someone(text) {
        out.push("text:name".into());
    }
    out
}

/// Whether `text` names someone: a capitalised word (one upper-case letter, then lower-case
/// letters) inside a sentence, not its first word and not a handle or hashtag ("mdw Jorrit",
/// "Shoutout naar Kees", "Mr Adeyemi"). Dutch and English capitalise little else inside a
/// sentence; the places and organisations they do capitalise are what the model weighs.
pub fn names_someone(text: &str) -> bool {
    for line in text.lines() {
        let mut starts_sentence = true;
        for word in line.split_whitespace() {
            let bare = word.trim_start_matches(['(', '"', '\'', '‘', '“']);
            let mut chars = bare.chars();
            let name = !starts_sentence && chars.next().is_some_and(char::is_uppercase) && {
                let mut rest = chars.take_while(|c| c.is_alphabetic()).peekable();
                rest.peek().is_some() && rest.all(char::is_lowercase)
            };
            if name {
                return true;
            }
            starts_sentence = word.ends_with(['.', '!', '?', ':', ';']);
        }
    }
    false
}

/// The cause the themes make (only staff conduct is human).
pub fn cause_of(themes: &[ThemeTag]) -> Cause {
    Cause::of_themes(themes.iter().map(|t| t.id.as_str()))
}

/// The rules' classification of `text`, combined with the learned layer when there is one: what
/// the pipeline, `signaal classify` and `signaal eval` all do with a text.
pub fn classify(
    rules: &Classifier,
    learned: Option<&Learned>,
    text: &str,
    channel: &str,
) -> Classification {
    let (mut c, concepts) = rules.classify_with_concepts(text);
    if let Some(l) = learned {
        l.combine(rules, text, channel, &concepts, &mut c);
    }
    c
}

fn kind_of(k: &str) -> Option<Kind> {
    serde_json::from_value(serde_json::Value::String(k.to_string())).ok()
}

impl Learned {
    /// The version that goes into every classification beside the taxonomy's.
    pub fn version(&self) -> &str {
        self.model.version()
    }

    /// Combines the model's answer for `text` with the rules' classification `c` and the
    /// concepts they found in it (both from [`Classifier::classify_with_concepts`]).
    pub fn combine(
        &self,
        rules: &Classifier,
        text: &str,
        channel: &str,
        concepts: &[&str],
        c: &mut Classification,
    ) {
        let extras = rule_features(c, concepts, text);
        let features = self.model.featurize(text, channel, &extras);
        let p = self.model.predict(&features);
        // The staff-conduct check: a staff role in the text, or a referent word or a capitalised
        // word inside a sentence with the model's staff-conduct probability at least `add_min`
        // (for a tag the rules found; a tag the model adds needs that anyway).
        let role = concepts.contains(&"person");
        let referred = concepts.contains(&"referent") || extras.iter().any(|e| e == "text:name");
        let person = role
            || (referred
                && p.theme("staff_conduct")
                    .is_some_and(|prob| prob >= self.policy.add_min));
        let words = text.split_whitespace().take(MIN_WORDS).count();
        if self.policy.veto_below > 0.0 {
            c.themes.retain(|t| {
                p.theme(&t.id)
                    .is_none_or(|prob| prob >= self.policy.veto_below)
            });
        }
        // Where the features came from: worked out once, for the first theme the model adds.
        let mut why = None;
        for t in p.tagged() {
            if c.themes.iter().any(|x| x.id == t.theme)
                || t.probability < self.policy.add_min
                || words < MIN_WORDS
            {
                continue;
            }
            // The invariant: staff conduct needs a person in the text.
            if t.theme == "staff_conduct" && !person {
                continue;
            }
            let why = why.get_or_insert_with(|| self.model.explain(text, &features));
            let evidence: Vec<Evidence> = self
                .model
                .evidence(t.theme, why, EVIDENCE_WORDS)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|e| {
                    text.get(e.start..e.end)
                        .map(|w| Evidence::words(e.start, e.end, w.to_string()))
                })
                .collect();
            if evidence.is_empty() {
                continue;
            }
            c.themes.push(ThemeTag {
                id: t.theme.to_string(),
                score: t.probability,
                evidence,
            });
        }
        // The invariant, after rules and model alike: staff conduct needs a person in the text
        // (a tone word alone, "onbeschoft gewoon", is not a person's described behaviour).
        if !person {
            c.themes.retain(|t| t.id != "staff_conduct");
        }
        // Taxonomy order, as the rules give them.
        let order = |id: &str| {
            rules
                .themes()
                .position(|t| t.id == id)
                .unwrap_or(usize::MAX)
        };
        c.themes.sort_by_key(|t| order(&t.id));
        // A single word says too little to overrule the rules' kind.
        let (kind, prob) = p.kind();
        if prob >= self.policy.kind_min && words >= 2 {
            if let Some(k) = kind_of(kind) {
                c.kind = k;
            }
        }
        c.cause = cause_of(&c.themes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combined() -> (Classifier, Learned) {
        let rules = Classifier::default_taxonomy().expect("the default taxonomy");
        let learned = LearnedConfig::default()
            .load()
            .expect("the embedded model")
            .expect("on by default");
        (rules, learned)
    }

    fn classify(rules: &Classifier, l: &Learned, text: &str) -> Classification {
        super::classify(rules, Some(l), text, "email")
    }

    fn staff_conduct(c: &Classification) -> bool {
        c.themes.iter().any(|t| t.id == "staff_conduct")
    }

    #[test]
    fn staff_conduct_needs_a_person_even_from_the_model() {
        let (rules, l) = combined();
        // Tone words and treatment with nobody described: never staff conduct.
        for text in [
            "Onbeschoft gewoon, drie maanden niks horen op mijn aanvraag en dan dit.",
            "Schandalige behandeling van mijn dossier, respectloos en klantonvriendelijk.",
            "Disgraceful and disrespectful treatment of my claim, months of silence.",
        ] {
            let c = classify(&rules, &l, text);
            let (_, concepts) = rules.classify_with_concepts(text);
            assert!(!concepts.contains(&"person"), "{text}");
            assert!(!staff_conduct(&c), "{text}: {:?}", c.themes);
            assert_ne!(c.cause, Cause::Human, "{text}");
        }
    }

    #[test]
    fn a_persons_described_behaviour_stays_staff_conduct() {
        let (rules, l) = combined();
        for text in [
            "De medewerker aan de balie was ontzettend onbeschoft en schreeuwde tegen mij.",
            "The agent on the phone was rude and hung up on me.",
        ] {
            let c = classify(&rules, &l, text);
            assert!(staff_conduct(&c), "{text}: {:?}", c.themes);
        }
    }

    #[test]
    fn every_theme_carries_evidence_and_the_cause_follows_the_themes() {
        let (rules, l) = combined();
        for text in [
            "De monteur is niet verschenen, ik heb de hele ochtend vrij genomen voor niets.",
            "I have been waiting 8 weeks for a decision on my application.",
            "Nobody knows who is responsible for my claim, everybody points to someone else.",
            "Het bedrag is twee keer geïncasseerd van mijn rekening deze maand.",
            "The part you sent doesn't fit, it is the wrong size altogether.",
        ] {
            let c = classify(&rules, &l, text);
            for t in &c.themes {
                assert!(!t.evidence.is_empty(), "{text}: {} has no evidence", t.id);
                for e in &t.evidence {
                    assert!(e.field.is_some() || text.get(e.start..e.end) == Some(e.text.as_str()));
                }
            }
            assert_eq!(c.cause, cause_of(&c.themes), "{text}");
        }
    }

    #[test]
    fn a_word_or_two_gets_no_theme_from_the_model() {
        let (rules, l) = combined();
        for text in ["kort", "ok", "nee dank je"] {
            let c = rules.classify(text);
            let before: Vec<String> = c.themes.iter().map(|t| t.id.clone()).collect();
            let c = super::classify(&rules, Some(&l), text, "twitter");
            for t in &c.themes {
                assert!(before.contains(&t.id), "{text}: the model added {}", t.id);
            }
        }
    }

    #[test]
    fn a_name_inside_a_sentence_names_someone() {
        for text in [
            "klt belt om mdw Jorrit te bedanken",
            "Shoutout naar Kees van het waterbedrijf!",
            "I spoke to Mr Adeyemi yesterday.",
            "Geachte heer,\nik sprak gisteren met Fatima over de brief.",
        ] {
            assert!(names_someone(text), "{text}");
        }
        for text in [
            "Onbeschoft gewoon, drie maanden niks horen op mijn aanvraag.",
            "Dit is belachelijk. Ik wacht al weken. Niemand belt terug!",
            "I'd like to know why the app keeps crashing",
            "@GemeenteVoorbeeld #DigiD werkt weer niet",
            "Dear team,\nThe letter is unclear.",
            "",
        ] {
            assert!(!names_someone(text), "{text}");
        }
    }

    #[test]
    fn a_pronoun_or_name_is_a_person_only_when_the_model_reads_conduct() {
        let (rules, l) = combined();
        // "ze" is the organisation here, and nothing is said about how anyone behaved.
        let c = classify(
            &rules,
            &l,
            "Ze sturen brieven die niemand snapt, drie keer gelezen en nog geen idee wat ik moet doen.",
        );
        assert!(!staff_conduct(&c), "{:?}", c.themes);
        // A person referred to by a pronoun or a name, whose behaviour is described.
        for text in [
            "Ik kreeg een jonge vrouw aan de lijn. Ze hing gewoon op toen ik naar haar leidinggevende vroeg.",
            "Gisteren hielp Jake op de chat mij geduldig door het hele formulier, echt top!",
        ] {
            let c = classify(&rules, &l, text);
            assert!(staff_conduct(&c), "{text}: {:?}", c.themes);
        }
    }

    #[test]
    fn a_bad_model_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("broken.model");
        std::fs::write(&path, b"not a model").expect("write");
        let cfg = LearnedConfig {
            model: Some(path.clone()),
            ..LearnedConfig::default()
        };
        let e = cfg.load().err().expect("refused");
        assert!(e.contains("broken.model"), "{e}");
        let off = LearnedConfig {
            enabled: false,
            ..LearnedConfig::default()
        };
        assert!(off.load().expect("off").is_none());
        let bad = LearnedConfig {
            kind_min: 2.0,
            ..LearnedConfig::default()
        };
        assert!(bad.load().is_err());
    }
}
