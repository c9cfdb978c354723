//! The classifier: a pure rule engine over a taxonomy that is data, redaction of personal data,
//! evaluation against a labelled corpus, and the worker that runs it between `signals.raw` and
//! `signals.classified`.
//!
//! The core ([`Classifier::classify`], [`privacy::Redactor::redact`]) does no I/O and is
//! deterministic. The worker ([`worker::run`]) reads a batch, redacts and classifies it off the
//! async runtime, writes it to the store, publishes it, and only then acknowledges the batch.

pub mod calls;
pub mod eval;
mod fold;
pub mod learned;
pub mod pipeline;
pub mod privacy;
mod rules;
pub mod taxonomy;
pub mod worker;

pub use calls::CallRules;
pub use pipeline::{Pipeline, PipelineError};
pub use rules::{Classifier, TaxonomyError};
pub use taxonomy::DEFAULT_TAXONOMY;
