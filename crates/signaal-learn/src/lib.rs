//! The learned layer of the classifier (issue 16): hashed text features and linear models per
//! theme, for the kind and for staff conduct against system causes, trained in pure Rust.
//!
//! - [`features`]: a [`Featurizer`] turns a text, its channel and the caller's extra features
//!   (rule hits) into sparse hashed [`Features`], and can say which words produced which index
//!   ([`Featurizer::explain`]).
//! - [`model`]: [`train`] makes a [`Model`] from labelled [`Example`]s; [`Model::predict`]
//!   gives a [`Prediction`]; [`Model::top_features`] and [`Model::evidence`] say which features
//!   and words raised a theme.
//! - [`mod@calibrate`]: per-theme thresholds that maximise F-beta on a development set.
//! - [`mod@format`]: [`Model::to_bytes`] and [`Model::from_bytes`], a versioned, checksummed binary
//!   format; [`Model::version`] names the exact model in every classification.
//!
//! Invariants: no I/O anywhere (callers read and write the bytes); deterministic — the same text
//! gives the same features, the same examples and configuration give a bit-identical model, on
//! any platform (a hash, a random generator and `exp` written out here, no `std` hasher, no libm,
//! no threads); no panic on any input, text or model bytes.

pub mod calibrate;
pub mod features;
pub mod format;
mod hash;
mod math;
pub mod model;
mod text;

pub use calibrate::{calibrate, ThemeCalibration};
pub use features::{FeatureConfig, FeatureSpan, Features, Featurizer, NO_EXTRAS};
pub use format::{FormatError, FORMAT_VERSION};
pub use model::{
    train, Evidence, Example, Explanation, Model, Prediction, ThemeScore, TrainConfig,
    DEFAULT_KINDS,
};

/// Why a configuration, examples or a call were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LearnError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("there are no examples to train on")]
    NoExamples,
    #[error("example {example} has label `{label}`, which the model does not have")]
    UnknownLabel { example: usize, label: String },
}
