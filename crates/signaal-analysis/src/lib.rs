//! The register's analysis: what keeps coming back, what hurts most, and did the fix work.
//!
//! A complaint coordinator works in a cycle: register → analyse → improve → measure again. This
//! crate is the arithmetic of that cycle, on plain rows the store aggregates in SQL (a key with
//! its count, its impact sum, its first and last time):
//! - [`mod@pareto`]: counts per key (theme, subject, theme × subject) sorted, with share, cumulative
//!   share and the "vital few" inside the 80 % line;
//! - [`mod@recurrence`]: "1x toeval, 2x opmerkelijk, 3x patroon" — each group (theme × subject,
//!   subject, pseudonymous author) within a window gets its [`Level`], patterns first;
//! - [`impact`]: a score from 0 to 10 per signal from intensity, escalation words, reach, repeat
//!   contact and channel, with its weights in [`ImpactConfig`];
//! - [`quadrant`]: frequency × mean impact per key, each key placed against the medians in
//!   act now / watch / quick wins / monitor;
//! - [`pdca`]: an improvement action's before and after windows, the rate ratio with its exact
//!   interval (conditional binomial, Clopper–Pearson), one-sided p-values and a verdict in words.
//!
//! Everything here is pure: no I/O, no clock (callers pass `now`), no panics on any input.
//! Every result is `Serialize`: the CLI and the HTTP API print it as it is.

pub mod impact;
pub mod pareto;
pub mod pdca;
pub mod quadrant;
pub mod recurrence;

use serde::{Deserialize, Serialize};

pub use impact::{ImpactConfig, ImpactInput, ImpactScore};
pub use pareto::{pareto, Pareto, ParetoRow};
pub use pdca::{
    measure, rate_ratio, ActionConfig, Counts, Exposed, Measurement, PdcaError, RateRatio, Verdict,
};
pub use quadrant::{quadrants, ImpactRow, Quadrant, Quadrants};
pub use recurrence::{recurrence, Group, Level, RecurrenceConfig, Recurring};

/// The analysis settings. `[analysis]` in the configuration; every part has defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    pub recurrence: RecurrenceConfig,
    pub impact: ImpactConfig,
    pub action: ActionConfig,
}

impl AnalysisConfig {
    /// Checks every part; the error names the key relative to `[analysis]`, e.g.
    /// `impact.weights.reach`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.recurrence
            .validate()
            .map_err(|e| e.within("recurrence"))?;
        self.impact.validate().map_err(|e| e.within("impact"))?;
        self.action.validate().map_err(|e| e.within("action"))
    }
}

/// A setting out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}` = {value} is out of range (expected {expected})")]
pub struct ConfigError {
    /// The dotted key, relative to the struct that was validated.
    pub key: String,
    pub value: f64,
    pub expected: &'static str,
}

impl ConfigError {
    fn within(mut self, section: &str) -> ConfigError {
        self.key = format!("{section}.{}", self.key);
        self
    }
}

/// Runs `(key, value, ok, expected)` checks in order; the first failing one is the error.
fn check<const N: usize>(checks: [(&str, f64, bool, &'static str); N]) -> Result<(), ConfigError> {
    match checks.into_iter().find(|c| !c.2) {
        Some((key, value, _, expected)) => Err(ConfigError {
            key: key.to_owned(),
            value,
            expected,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_keys_are_refused() {
        assert_eq!(AnalysisConfig::default().validate(), Ok(()));
        let parsed: AnalysisConfig = toml::from_str(
            "[recurrence]\nwindow_days = 30\n[impact.weights]\nreach = 0\n[action]\nweeks = 6\n",
        )
        .expect("valid settings");
        assert_eq!(parsed.recurrence.window_days, 30);
        assert_eq!(parsed.impact.weights.reach, 0.0);
        assert_eq!(
            parsed.impact.weights.escalation, 4.0,
            "unset keys keep defaults"
        );
        assert_eq!(parsed.action.weeks, 6);
        let typo = toml::from_str::<AnalysisConfig>("[impact.weights]\nreahc = 1\n");
        assert!(typo.is_err_and(|e| e.to_string().contains("reahc")));
    }

    #[test]
    fn a_bad_setting_is_named_by_its_full_key() {
        let mut config = AnalysisConfig::default();
        config.impact.weights.reach = -1.0;
        let error = config.validate().expect_err("negative weight");
        assert_eq!(error.key, "impact.weights.reach");
        assert_eq!(
            error.to_string(),
            "`impact.weights.reach` = -1 is out of range (expected finite, 0 or above)"
        );
        let mut config = AnalysisConfig::default();
        config.action.confidence = 1.0;
        assert_eq!(
            config.validate().map_err(|e| e.key),
            Err("action.confidence".into())
        );
    }
}
