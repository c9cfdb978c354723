//! What happens to one raw signal before it may leave the pipeline: personal data redacted,
//! author pseudonymised, identifying metadata dropped, then classified on the redacted text (so
//! evidence offsets point into what is published).

use chrono::{DateTime, Utc};
use signaal_core::{Channel, ClassifiedEnvelope, Signal};

use signaal_analysis::{ImpactConfig, ImpactInput};

use crate::privacy::{author_key, Redactor};
use crate::{CallRules, Classifier};

/// Metadata keys that identify a person; they stay on `signals.raw` only.
pub const PERSONAL_META: [&str; 7] = [
    "author_name",
    "to",
    "handle",
    "author_id",
    "in_reply_to_user_id",
    "permalink",
    "caller",
];

pub struct Pipeline {
    pub classifier: Classifier,
    pub redactor: Redactor,
    /// Call metadata thresholds for phone signals.
    pub calls: CallRules,
    /// How each signal's impact is scored (`[analysis.impact]`).
    pub impact: ImpactConfig,
    /// Earlier signals of the same author within this many days are its repeat contacts
    /// (`analysis.recurrence.window_days`).
    pub contact_window_days: u32,
    /// The learned layer combined with the rules, if on.
    pub learned: Option<crate::learned::Learned>,
    /// The version every classification carries: the taxonomy's, and the model's after a `+`.
    version: String,
    secret: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("the author pseudonym secret is empty: set `classifier.author_secret` (SIGNAAL_CLASSIFIER__AUTHOR_SECRET)")]
    NoSecret,
    #[error("redaction patterns: {0}")]
    Regex(#[from] regex::Error),
}

impl Pipeline {
    pub fn new(classifier: Classifier, secret: &[u8]) -> Result<Pipeline, PipelineError> {
        if secret.is_empty() {
            return Err(PipelineError::NoSecret);
        }
        Ok(Pipeline {
            learned: None,
            version: classifier.version().to_string(),
            classifier,
            redactor: Redactor::new()?,
            calls: CallRules::default(),
            impact: ImpactConfig::default(),
            contact_window_days: 90,
            secret: secret.to_vec(),
        })
    }

    pub fn with_impact(mut self, impact: ImpactConfig, contact_window_days: u32) -> Pipeline {
        self.impact = impact;
        self.contact_window_days = contact_window_days;
        self
    }

    /// Scores the envelope's impact (0–10) from its classification, its reach on social media
    /// (`meta.followers`, `retweets`, `shares`, `likes`), its channel and `repeat_contacts`, the
    /// author's earlier signals within the contact window.
    pub fn score_impact(&self, env: &mut ClassifiedEnvelope, repeat_contacts: u32) {
        let meta = |k: &str| env.signal.meta.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let input = ImpactInput {
            sentiment: f64::from(env.classification.sentiment),
            escalations: u32::try_from(env.classification.escalation.len()).unwrap_or(u32::MAX),
            followers: meta("followers"),
            shares: meta("retweets").saturating_add(meta("shares")),
            likes: meta("likes"),
            repeat_contacts,
            channel: env.signal.channel,
        };
        env.classification.impact = Some(self.impact.score(&input).score as f32);
    }

    /// Combines the learned layer with the rules.
    pub fn with_learned(mut self, learned: Option<crate::learned::Learned>) -> Pipeline {
        self.version = match &learned {
            Some(l) => format!("{}+{}", self.classifier.version(), l.version()),
            None => self.classifier.version().to_string(),
        };
        self.learned = learned;
        self
    }

    /// The version classifications carry (`default-2026.12.2+default-2026.12.3-…`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The rules' classification of `s`, with the learned layer's when there is one.
    fn classify(&self, s: &Signal) -> signaal_core::Classification {
        crate::learned::classify(
            &self.classifier,
            self.learned.as_ref(),
            &s.text,
            s.channel.as_str(),
        )
    }

    pub fn with_calls(mut self, calls: CallRules) -> Pipeline {
        self.calls = calls;
        self
    }

    /// The pseudonym `author` is published under.
    pub fn pseudonym(&self, author: &str) -> String {
        author_key(&self.secret, author)
    }

    pub fn process(&self, s: Signal) -> ClassifiedEnvelope {
        self.process_with(s, None)
    }

    /// Classifies a stored signal again: its text and subject line were redacted when it was
    /// first processed (redacting them again changes nothing), its author is a pseudonym
    /// already, and personal metadata is gone. The repeat-call rule and impact are the
    /// caller's, as for a new signal.
    pub fn reclassify(&self, mut s: Signal) -> ClassifiedEnvelope {
        s.text = self.redactor.redact(&s.text).into_owned();
        s.subject = s.subject.map(|x| self.redactor.redact(&x).into_owned());
        let mut classification = self.classify(&s);
        if s.channel == Channel::Phone {
            self.calls
                .apply(&self.classifier, &s, None, &mut classification);
        }
        ClassifiedEnvelope::new(s, classification, self.version.as_str())
    }

    /// As [`Pipeline::process`], knowing when the same caller called before (for phone signals).
    pub fn process_with(
        &self,
        mut s: Signal,
        previous_call: Option<DateTime<Utc>>,
    ) -> ClassifiedEnvelope {
        s.text = self.redactor.redact(&s.text).into_owned();
        s.subject = s.subject.map(|x| self.redactor.redact(&x).into_owned());
        s.author = s.author.map(|a| author_key(&self.secret, &a));
        for k in PERSONAL_META {
            s.meta.remove(k);
        }
        let mut classification = self.classify(&s);
        if s.channel == Channel::Phone {
            self.calls
                .apply(&self.classifier, &s, previous_call, &mut classification);
        }
        ClassifiedEnvelope::new(s, classification, self.version.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use signaal_core::Channel;

    #[test]
    fn nothing_personal_leaves_and_evidence_points_into_the_published_text(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let p = Pipeline::new(Classifier::default_taxonomy()?, b"k")?;
        let mut s = Signal::new(
            Channel::Email,
            "inbox",
            "<1@x>",
            Utc::now(),
            "Bel mij op 06-12345678, ik sta al 40 minuten in de wacht. IBAN NL91ABNA0417164300",
        );
        s.author = Some("jan@example.nl".into());
        s.subject = Some("Klacht van jan@example.nl".into());
        s.meta.insert("author_name".into(), "Jan Jansen".into());
        s.meta.insert("wait_seconds".into(), 2400.into());
        let env = p.process(s);
        let out = serde_json::to_string(&env)?;
        for secret in [
            "06-12345678",
            "NL91ABNA0417164300",
            "jan@example.nl",
            "Jan Jansen",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert_eq!(
            env.signal.text,
            "Bel mij op [phone], ik sta al 40 minuten in de wacht. IBAN [iban]"
        );
        assert_eq!(env.signal.subject.as_deref(), Some("Klacht van [email]"));
        assert!(env
            .signal
            .author
            .as_deref()
            .is_some_and(|a| a.starts_with("a_")));
        assert!(env.signal.meta.contains_key("wait_seconds"));
        let tag = env
            .classification
            .themes
            .iter()
            .find(|t| t.id == "reachability")
            .ok_or("no reachability tag")?;
        let ev = &tag.evidence[0];
        assert_eq!(&env.signal.text[ev.start..ev.end], ev.text);
        Ok(())
    }

    #[test]
    fn subjects_come_from_the_redacted_text_and_carry_no_personal_data(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let p = Pipeline::new(Classifier::default_taxonomy()?, b"k")?;
        let secrets = [
            "06-12345678",
            "jan@example.nl",
            "111222333",
            "NL91ABNA0417164300",
            "Kerkstraat 12",
            "12345678",
        ];
        let s = Signal::new(
            Channel::Email,
            "inbox",
            "<2@x>",
            Utc::now(),
            "Mijn DigiD en polisnummer12345678: bel 06-12345678 of mail jan@example.nl over de \
             WOZ-beschikking van Kerkstraat 12. BSN 111222333, IBAN NL91ABNA0417164300",
        );
        let env = p.process(s);
        let ids: Vec<&str> = env
            .classification
            .subjects
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(ids, vec!["digid", "policy", "woz_assessment"]);
        for tag in &env.classification.subjects {
            for ev in &tag.evidence {
                assert_eq!(&env.signal.text[ev.start..ev.end], ev.text, "{}", tag.id);
                assert!(
                    !ev.text.contains(|c: char| c.is_ascii_digit()),
                    "subject evidence {:?} carries a number",
                    ev.text
                );
                for secret in secrets {
                    assert!(!ev.text.contains(secret), "{secret} in {:?}", ev.text);
                }
            }
        }
        let out = serde_json::to_string(&env)?;
        for secret in &secrets[..5] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        // The placeholders redaction leaves are no subject phrase.
        let placeholders = p
            .classifier
            .classify("[email] [phone] [iban] [bsn] [address] ([email]) [phone].");
        assert!(
            placeholders.subjects.is_empty(),
            "{:?}",
            placeholders.subjects
        );
        Ok(())
    }

    #[test]
    fn an_empty_secret_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        assert!(matches!(
            Pipeline::new(Classifier::default_taxonomy()?, b""),
            Err(PipelineError::NoSecret)
        ));
        Ok(())
    }
}
