//! Taxonomy types. The taxonomy itself is data (the classifier embeds a default file and accepts
//! an organisation's own); only its shape lives here.

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
