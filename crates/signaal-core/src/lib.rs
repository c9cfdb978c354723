//! The vocabulary every other crate speaks: signals, their deterministic ids, the versioned
//! envelopes put on Kafka, classifications and the taxonomy types.
//!
//! This crate does no I/O. Everything here is plain data plus pure functions, so sources, the
//! classifier, the store and the alerter agree on one definition of a signal.

pub mod alert;
pub mod classification;
pub mod envelope;
pub mod signal;
pub mod stats;
pub mod strict;
pub mod taxonomy;

pub use alert::{AlertEvent, AlertState, Count, Severity};
pub use classification::{Cause, Classification, Evidence, Kind, SubjectTag, ThemeTag};
pub use envelope::{
    AlertEnvelope, AlertEventEnvelope, ClassifiedEnvelope, DecodeError, RawEnvelope,
    SeriesStatsEnvelope, ALERT_EVENT_SCHEMA_VERSION, MAX_ERROR_VALUE_BYTES, SCHEMA_VERSION,
    STATS_SCHEMA_VERSION, TYPE_ALERT, TYPE_ALERT_EVENT, TYPE_CLASSIFIED, TYPE_RAW,
    TYPE_SERIES_STATS,
};
pub use signal::{
    brief, signal_id, truncate, Alert, Channel, Invalid, Signal, EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP_EXCLUSIVE, MAX_AUTHOR_BYTES, MAX_MESSAGE_BYTES, MAX_SOURCE_BYTES,
    MAX_SOURCE_ID_BYTES, MAX_SUBJECT_BYTES, MAX_TEXT_BYTES, MAX_THREAD_ID_BYTES,
};
pub use taxonomy::{CauseSide, Subject, SubjectKind, Theme};
