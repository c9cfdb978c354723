//! Phone-log export source: call-centre exports into raw signals.
//!
//! Every profile is pure over a reader: rows in, signals or per-row rejects out.
//! [`csv_export`] is the generic CSV profile (columns named in config), [`asterisk`] reads
//! Asterisk's `Master.csv`, [`json_export`] Genesys Cloud and Twilio pages; all read into a
//! [`record::CallRecord`]. [`decode`] detects the
//! file's encoding, [`records`] splits CSV into records with bounded lines and fields, [`zone`]
//! places times written without a zone. [`worker`] watches an inbox folder, checkpoints (file fingerprint, row) in the
//! store after each acknowledged chunk, and moves finished files to `done/`.

pub mod asterisk;
pub mod csv_export;
pub mod decode;
pub mod json_export;
pub mod record;
pub mod records;
pub mod worker;
pub mod zone;

pub use csv_export::{detect_delimiter, CsvMapping, Row};
pub use record::CallRecord;
pub use zone::Zone;

use serde::{Deserialize, Serialize};

/// Which kind of export an inbox receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// CSV with a header; the columns are named by a [`CsvMapping`].
    #[default]
    GenericCsv,
    /// Asterisk `cdr_csv` `Master.csv` (no header; 16 to 21 columns, see [`asterisk`]).
    AsteriskCdr,
    /// Genesys Cloud analytics conversation-detail pages (JSON).
    GenesysCloud,
    /// Twilio Calls list pages (JSON).
    Twilio,
    /// One JSON object per line; keys named by the same mapping as the generic CSV profile.
    GenericNdjson,
}

impl Profile {
    /// Whether files of this profile are appended to for ever (Asterisk's `Master.csv`), so a
    /// grown copy resumes after the rows its earlier copy had.
    pub fn appended_to(self) -> bool {
        self == Profile::AsteriskCdr
    }
}

/// The longest quoted CSV field by default (64 KiB): longer is an unclosed quote, not a note.
pub const DEFAULT_MAX_FIELD_BYTES: usize = 64 * 1024;

/// For serde's `default = …` in config.
pub fn default_max_field_bytes() -> usize {
    DEFAULT_MAX_FIELD_BYTES
}

/// How to read an export: the profile, for the generic profile its column mapping, the zone of
/// times written without one, and the longest quoted field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFormat {
    pub profile: Profile,
    pub mapping: CsvMapping,
    /// Where times without a zone were written (Asterisk unless `usegmtime`, CSV without offset).
    pub timezone: Zone,
    /// A quoted CSV field longer than this, or spanning more than
    /// [`records::MAX_FIELD_LINE_BREAKS`] line breaks, is its row's error.
    pub max_field_bytes: usize,
}

impl Default for ExportFormat {
    fn default() -> Self {
        ExportFormat {
            profile: Profile::default(),
            mapping: CsvMapping::default(),
            timezone: Zone::default(),
            max_field_bytes: DEFAULT_MAX_FIELD_BYTES,
        }
    }
}
