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
    /// The cause a signal's themes make: from whether one of them is on the human side (only
    /// staff conduct is) and whether one is on the system side.
    pub fn of_sides(human: bool, system: bool) -> Cause {
        match (human, system) {
            (true, true) => Cause::Mixed,
            (true, false) => Cause::Human,
            (false, true) => Cause::System,
            (false, false) => Cause::Unknown,
        }
    }

    /// The cause the theme ids make (DOMAIN.md): `staff_conduct` is human, every other theme
    /// system, no theme unknown.
    pub fn of_themes<'a>(ids: impl IntoIterator<Item = &'a str>) -> Cause {
        let (mut human, mut system) = (false, false);
        for id in ids {
            if id == "staff_conduct" {
                human = true;
            } else {
                system = true;
            }
        }
        Cause::of_sides(human, system)
    }

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

/// What triggered a tag: words, as byte offsets into the published text; or, with `field`, a
/// metadata value (`meta.wait_seconds` = `1500`; then `start` = `end` = 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub start: usize,
    pub end: usize,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Evidence {
    /// Words of the text at `start..end`.
    pub fn words(start: usize, end: usize, text: String) -> Evidence {
        Evidence {
            start,
            end,
            text,
            field: None,
        }
    }

    /// A metadata value, e.g. `meta.wait_seconds` = `1500`.
    pub fn metadata(field: &str, value: impl ToString) -> Evidence {
        Evidence {
            start: 0,
            end: 0,
            text: value.to_string(),
            field: Some(field.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThemeTag {
    pub id: String,
    pub score: f32,
    pub evidence: Vec<Evidence>,
}

/// What a signal is about beside its themes — a letter or form by name, a service or system, a
/// product, a process (`woz_assessment`, `digid`, `parking_permit`, `objection_appeal`) — with the
/// words that named it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectTag {
    pub id: String,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub themes: Vec<ThemeTag>,
    /// Subjects, in taxonomy order. Added to schema version 1 as an optional field: messages
    /// written before it have none.
    #[serde(default)]
    pub subjects: Vec<SubjectTag>,
    pub cause: Cause,
    pub kind: Kind,
    pub lang: String,
    /// −1 (very negative) ..= 1 (very positive).
    pub sentiment: f32,
    /// Escalation words found: `ombudsman`, `lawyer`, `press`, `cancel`, …
    pub escalation: Vec<String>,
    /// How much the signal weighs, 0–10 (`signaal-analysis`'s impact score: intensity,
    /// escalation, reach, repeat contact, channel), set by the classifier worker. Optional in
    /// schema version 1: absent before it was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<f32>,
}
