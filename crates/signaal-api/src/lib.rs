//! The register's analysis served: each report is a few register queries
//! (`signaal_store::analysis`) put through the pure arithmetic of `signaal-analysis`. The CLI
//! (`signaal report …`, `signaal action …`) and the HTTP API call the same functions, so both
//! answer the same.
//!
//! Requests are checked before any query: dates in order and within 20 years, themes, subjects,
//! channels, causes and kinds that exist. A bad request is a [`ReportError::Invalid`] with a
//! message for the user (HTTP 400); only the register failing is a [`ReportError::Store`].

pub mod http;
pub mod labels;
pub mod reports;
pub mod timeline;

pub use reports::{
    ActionReport, Key, ParetoReport, Query, RecurrenceReport, ReportError, Summary, Vocabulary,
};
