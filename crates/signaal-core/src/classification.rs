//! What the classifier says about a signal. Field names are part of the classified topic's schema.

use serde::{Deserialize, Serialize};

/// Where a complaint's cause lies (DOMAIN.md): only staff conduct is `human`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    Human,
    System,
    Mixed,
    Unknown,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Human => "human",
            Cause::System => "system",
            Cause::Mixed => "mixed",
            Cause::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Complaint,
    Compliment,
    Question,
    Suggestion,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Complaint => "complaint",
            Kind::Compliment => "compliment",
            Kind::Question => "question",
            Kind::Suggestion => "suggestion",
        }
    }
}

/// The words that triggered a tag: byte offsets into the published text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeTag {
    pub id: String,
    pub score: f32,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub themes: Vec<ThemeTag>,
    pub cause: Cause,
    pub kind: Kind,
    pub lang: String,
    /// −1 (very negative) ..= 1 (very positive).
    pub sentiment: f32,
    /// Escalation words found: `ombudsman`, `lawyer`, `press`, `cancel`, …
    pub escalation: Vec<String>,
}
