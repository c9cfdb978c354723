//! Phone-log export source: call-centre exports into raw signals.
//!
//! Every profile is pure over a reader: rows in, signals or per-row rejects out.
//! [`csv_export`] is the generic CSV profile (columns named in config), [`asterisk`] reads
//! Asterisk's `Master.csv`, [`json_export`] Genesys Cloud and Twilio pages; all read into a
//! [`record::CallRecord`]. [`decode`] detects the
//! file's encoding. [`worker`] watches an inbox folder, checkpoints (file fingerprint, row) in the
//! store after each acknowledged chunk, and moves finished files to `done/`.

pub mod asterisk;
pub mod csv_export;
pub mod decode;
pub mod json_export;
pub mod record;
pub mod worker;

pub use csv_export::{detect_delimiter, CsvMapping, Row};
pub use record::CallRecord;

use serde::{Deserialize, Serialize};

/// Which kind of export an inbox receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// CSV with a header; the columns are named by a [`CsvMapping`].
    #[default]
    GenericCsv,
    /// Asterisk `cdr_csv` `Master.csv` (no header; 16, 17 or 18 columns).
    AsteriskCdr,
    /// Genesys Cloud analytics conversation-detail pages (JSON).
    GenesysCloud,
    /// Twilio Calls list pages (JSON).
    Twilio,
    /// One JSON object per line; keys named by the same mapping as the generic CSV profile.
    GenericNdjson,
}

/// How to read an export: the profile, and for the generic profile its column mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFormat {
    pub profile: Profile,
    pub mapping: CsvMapping,
}
