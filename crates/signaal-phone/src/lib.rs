//! Phone-log export source: call-centre CSV exports into raw signals.
//!
//! [`csv_export::parse_rows`] is pure over a reader: rows in, signals or per-row rejects out.
//! [`worker`] watches an inbox folder, checkpoints (file fingerprint, row) in the store after each
//! acknowledged chunk, and moves finished files to `done/`.

pub mod csv_export;
pub mod worker;

pub use csv_export::{detect_delimiter, CsvMapping, Row};
