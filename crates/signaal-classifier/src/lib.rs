//! The classifier: a pure rule engine over a taxonomy that is data, and the worker that runs it
//! between `signals.raw` and `signals.classified`.
//!
//! The core ([`Classifier::classify`]) does no I/O and is deterministic. The worker
//! ([`worker::run`]) reads a batch, classifies it, writes it to the store, publishes it, and only
//! then acknowledges the batch.

mod rules;
pub mod worker;

pub use rules::{Classifier, TaxonomyError, DEFAULT_TAXONOMY};
