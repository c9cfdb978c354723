//! The first rule set: per-theme patterns, negation, kind, language, sentiment, escalation.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use signaal_core::{Cause, CauseSide, Classification, Evidence, Kind, Theme, ThemeTag};

/// The default taxonomy shipped with signaal (DOMAIN.md's ten themes).
pub const DEFAULT_TAXONOMY: &str = include_str!("default_taxonomy.toml");

#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    #[error("taxonomy is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("theme `{theme}`: pattern `{pattern}` is not a valid regular expression: {source}")]
    Pattern {
        theme: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("theme `{0}` has no patterns")]
    Empty(String),
    #[error("theme id `{0}` appears twice")]
    Duplicate(String),
}

#[derive(Deserialize)]
struct TaxonomyFile {
    version: String,
    #[serde(default)]
    ignore: Vec<String>,
    theme: Vec<ThemeFile>,
}

#[derive(Deserialize)]
struct ThemeFile {
    id: String,
    label: String,
    cause: CauseSide,
    patterns: Vec<String>,
}

struct CompiledTheme {
    theme: Theme,
    regex: Regex,
}

/// A compiled taxonomy. Build once, share across threads.
pub struct Classifier {
    version: String,
    ignore: Option<Regex>,
    themes: Vec<CompiledTheme>,
    negation: Regex,
    question: Regex,
    suggestion: Regex,
    positive: Regex,
    negative: Regex,
    escalation: Vec<(&'static str, Regex)>,
    dutch: Regex,
    english: Regex,
}

fn words(alternatives: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!(r"\b(?:{alternatives})\b"))
        .case_insensitive(true)
        .build()
}

impl Classifier {
    pub fn default_taxonomy() -> Result<Classifier, TaxonomyError> {
        Classifier::from_toml(DEFAULT_TAXONOMY)
    }

    pub fn from_toml(text: &str) -> Result<Classifier, TaxonomyError> {
        let file: TaxonomyFile = toml::from_str(text)?;
        let mut themes: Vec<CompiledTheme> = Vec::with_capacity(file.theme.len());
        for t in file.theme {
            if themes.iter().any(|c| c.theme.id == t.id) {
                return Err(TaxonomyError::Duplicate(t.id));
            }
            if t.patterns.is_empty() {
                return Err(TaxonomyError::Empty(t.id));
            }
            for p in &t.patterns {
                words(p).map_err(|source| TaxonomyError::Pattern {
                    theme: t.id.clone(),
                    pattern: p.clone(),
                    source,
                })?;
            }
            let regex = words(&t.patterns.join("|")).map_err(|source| TaxonomyError::Pattern {
                theme: t.id.clone(),
                pattern: "(all patterns combined)".into(),
                source,
            })?;
            themes.push(CompiledTheme {
                theme: Theme {
                    id: t.id,
                    label: t.label,
                    cause: t.cause,
                },
                regex,
            });
        }
        let fixed = |p: &str| {
            words(p).map_err(|source| TaxonomyError::Pattern {
                theme: "(built-in)".into(),
                pattern: p.into(),
                source,
            })
        };
        let ignore = if file.ignore.is_empty() {
            None
        } else {
            Some(fixed(&file.ignore.join("|"))?)
        };
        Ok(Classifier {
            ignore,
            version: file.version,
            themes,
            negation: fixed("niet|geen|nooit|not|no|never|n't")?,
            question: fixed("hoe|wanneer|waarom|kunt u|kan ik|is het mogelijk|how|when|why|can i|could you|is it possible")?,
            suggestion: fixed("suggestie|voorstel|zou het fijn zijn|het zou handig zijn|misschien kunt u|tip|suggest(ion)?|it would be (nice|great|helpful)|why not|you could|please consider")?,
            positive: fixed("bedankt|dank( je| u)?( wel)?|top|super|geweldig|fijn|tevreden|compliment(en)?|goed geholpen|snel geholpen|thanks?|thank you|great|excellent|happy|brilliant|well done|kudos")?,
            negative: fixed("slecht(e)?|belachelijk(e)?|schandalig(e)?|boos|woedend|teleurgesteld|klacht|frustrerend|waardeloos|respectloos|klantonvriendelijk|bad|terrible|awful|ridiculous|angry|furious|disappointed|complaint|useless|disgrace(ful)?|unacceptable|onacceptabel")?,
            escalation: vec![
                ("ombudsman", fixed("ombudsman|ombudsman?s?")?),
                ("lawyer", fixed("advoca(at|ten)|jurist|rechter|rechtszaak|lawyer|attorney|court|legal action|sue")?),
                ("press", fixed("pers|krant|media|journalist|radar|tros radar|kassa|press|newspaper|reporter")?),
                ("cancel", fixed("opzeggen|opzegging|overstappen|cancel(l?ing)?|switch(ing)? provider|leave you")?),
                ("formal_complaint", fixed("formele klacht|klacht indienen|geschillencommissie|formal complaint")?),
            ],
            dutch: fixed("de|het|een|en|ik|niet|is|van|op|mijn|met|voor|dat|maar|geen|wel|nog|ze|u|jullie")?,
            english: fixed("the|a|an|and|i|not|is|of|on|my|with|for|that|but|no|you|your|still|was")?,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn themes(&self) -> impl Iterator<Item = &Theme> {
        self.themes.iter().map(|t| &t.theme)
    }

    /// Whether the match starting at `start` is negated by one of the three words before it.
    fn negated(&self, text: &str, start: usize) -> bool {
        let before = &text[..start];
        let window: Vec<&str> = before.split_whitespace().rev().take(3).collect();
        window.iter().any(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
            self.negation.is_match(w)
        })
    }

    pub fn classify(&self, text: &str) -> Classification {
        let ignored: Vec<(usize, usize)> = self
            .ignore
            .as_ref()
            .map(|re| re.find_iter(text).map(|m| (m.start(), m.end())).collect())
            .unwrap_or_default();
        let in_ignored = |s: usize, e: usize| ignored.iter().any(|(a, b)| s >= *a && e <= *b);
        let mut tags = Vec::new();
        for ct in &self.themes {
            let evidence: Vec<Evidence> = ct
                .regex
                .find_iter(text)
                .filter(|m| !in_ignored(m.start(), m.end()) && !self.negated(text, m.start()))
                .map(|m| Evidence {
                    start: m.start(),
                    end: m.end(),
                    text: m.as_str().to_string(),
                })
                .collect();
            if !evidence.is_empty() {
                let score = 1.0 - 0.5f32.powi(i32::try_from(evidence.len()).unwrap_or(i32::MAX));
                tags.push((
                    ct.theme.cause,
                    ThemeTag {
                        id: ct.theme.id.clone(),
                        score,
                        evidence,
                    },
                ));
            }
        }
        let human = tags.iter().any(|(c, _)| *c == CauseSide::Human);
        let system = tags.iter().any(|(c, _)| *c == CauseSide::System);
        let cause = match (human, system) {
            (true, true) => Cause::Mixed,
            (true, false) => Cause::Human,
            (false, true) => Cause::System,
            (false, false) => Cause::Unknown,
        };
        let positive = self
            .positive
            .find_iter(text)
            .filter(|m| !in_ignored(m.start(), m.end()))
            .count() as f32;
        let negative = (self.negative.find_iter(text).count()
            + tags.iter().filter(|(_, t)| t.id != "staff_conduct").count())
            as f32;
        let sentiment = ((positive - negative) / (positive + negative + 1.0)).clamp(-1.0, 1.0);
        let kind = if positive > negative {
            Kind::Compliment
        } else if self.suggestion.is_match(text) {
            Kind::Suggestion
        } else if negative == 0.0
            && (text.trim_end().ends_with('?') || self.question.is_match(text))
        {
            Kind::Question
        } else {
            Kind::Complaint
        };
        let nl = self.dutch.find_iter(text).count();
        let en = self.english.find_iter(text).count();
        let lang = if nl == 0 && en == 0 {
            "und"
        } else if nl >= en {
            "nl"
        } else {
            "en"
        };
        let escalation = self
            .escalation
            .iter()
            .filter(|(_, re)| re.is_match(text))
            .map(|(name, _)| name.to_string())
            .collect();
        Classification {
            themes: tags.into_iter().map(|(_, t)| t).collect(),
            cause,
            kind,
            lang: lang.to_string(),
            sentiment,
            escalation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier() -> Classifier {
        match Classifier::default_taxonomy() {
            Ok(c) => c,
            Err(e) => panic!("default taxonomy must compile: {e}"),
        }
    }

    fn theme_ids(c: &Classification) -> Vec<&str> {
        c.themes.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn table() {
        let c = classifier();
        let cases: &[(&str, &[&str], Cause, Kind, &str)] = &[
            (
                "Die brief snapt toch niemand, wat een ambtelijke taal",
                &["unclear_communication"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
            (
                "Ik heb 40 minuten in de wacht gestaan en niemand neemt op",
                &["reachability"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
            (
                "Van het kastje naar de muur, drie keer doorverbonden",
                &["handoffs"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
            (
                "Schandalige behandeling! Het online formulier werkte niet",
                &["digital_service"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
            (
                "De medewerker was niet onvriendelijk, maar het formulier werkte niet",
                &["digital_service"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
            (
                "De medewerker snauwde me af en luisterde niet",
                &["staff_conduct"],
                Cause::Human,
                Kind::Complaint,
                "nl",
            ),
            (
                "The agent really listened and was so helpful, thank you!",
                &["staff_conduct"],
                Cause::Human,
                Kind::Compliment,
                "en",
            ),
            (
                "Still no reply after weeks and I had to repeat my story every time",
                &["response_time", "repeat_story"],
                Cause::System,
                Kind::Complaint,
                "en",
            ),
            (
                "Wanneer wordt mijn salaris uitbetaald?",
                &["payment"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
            (
                "Hoe laat is het loket open?",
                &[],
                Cause::Unknown,
                Kind::Question,
                "nl",
            ),
            (
                "Nog steeds geen reactie gekregen.\n\nMet vriendelijke groet,\nJan",
                &["response_time"],
                Cause::System,
                Kind::Complaint,
                "nl",
            ),
        ];
        for (text, themes, cause, kind, lang) in cases {
            let got = c.classify(text);
            assert_eq!(theme_ids(&got), *themes, "themes for {text:?}");
            assert_eq!(got.cause, *cause, "cause for {text:?}");
            assert_eq!(got.kind, *kind, "kind for {text:?}");
            assert_eq!(got.lang, *lang, "lang for {text:?}");
        }
    }

    #[test]
    fn evidence_points_at_the_words() {
        let text = "Ik stond 40 minuten in de wacht.";
        let got = classifier().classify(text);
        let ev = &got.themes[0].evidence[0];
        assert_eq!(&text[ev.start..ev.end], ev.text);
        assert_eq!(ev.text, "in de wacht");
    }

    #[test]
    fn escalation_words_are_flagged() {
        let got = classifier()
            .classify("Als dit niet opgelost wordt stap ik naar de ombudsman en de krant");
        assert_eq!(got.escalation, vec!["ombudsman", "press"]);
    }

    #[test]
    fn bad_taxonomies_are_rejected_with_reasons() {
        let bad = [
            ("version = 1", "not valid TOML"),
            ("version = \"x\"\n[[theme]]\nid = \"a\"\nlabel = \"a\"\ncause = \"system\"\npatterns = [\"(\"]", "not a valid regular expression"),
            ("version = \"x\"\n[[theme]]\nid = \"a\"\nlabel = \"a\"\ncause = \"system\"\npatterns = []", "has no patterns"),
        ];
        for (text, want) in bad {
            match Classifier::from_toml(text) {
                Ok(_) => panic!("taxonomy {text:?} should be rejected"),
                Err(e) => assert!(e.to_string().contains(want), "`{e}` should say `{want}`"),
            }
        }
    }
}
