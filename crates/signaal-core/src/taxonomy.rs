//! Taxonomy types: themes and subjects. The taxonomy itself is data (the classifier embeds a
//! default file and accepts an organisation's own); only its shape lives here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which side of the cause rule a theme counts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CauseSide {
    Human,
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theme {
    /// Stable id, part of the public contract (`staff_conduct`, `reachability`, …).
    pub id: String,
    /// Human label in the organisation's language.
    pub label: String,
    pub cause: CauseSide,
}

/// What kind of thing a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A letter or form by name: `woz_assessment`, `reminder`, `policy`.
    Document,
    /// A service or system: `digid`, `customer_portal`, `app`.
    Service,
    /// What is sold or granted: `parking_permit`, `premium`, `smart_meter`.
    Product,
    /// Something the customer goes through: `objection_appeal`, `move_address`, `claim`.
    Process,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Document => "document",
            SubjectKind::Service => "service",
            SubjectKind::Product => "product",
            SubjectKind::Process => "process",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// Stable snake_case id, part of the public contract like theme ids (`digid`, `woz_assessment`).
    pub id: String,
    /// Human label per language (`nl`, `en`).
    pub label: BTreeMap<String, String>,
    pub kind: SubjectKind,
}

impl Subject {
    /// The label in `lang`, else in any language the taxonomy gives (the first by code), else the id.
    pub fn label_in(&self, lang: &str) -> &str {
        self.label
            .get(lang)
            .or_else(|| self.label.values().next())
            .map_or(self.id.as_str(), String::as_str)
    }
}
