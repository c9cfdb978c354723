//! Impact: how much one signal hurts, on a scale from 0 to 10.
//!
//! Five parts, each from 0 to 1, weighed and scaled to 0–10:
//!
//! ```text
//! score = 10 · (wI·I + wE·E + wR·R + wP·P + wC·C) / (wI + wE + wR + wP + wC)
//!
//! I  intensity   max(0, −sentiment)                  sentiment −1 (angry) ..= 1; neutral and positive: 0
//! E  escalation  1 − ½^k                             k = escalation words found (ombudsman, lawyer,
//!                                                    press, cancelling, "bij de rechter"): 0, ½, ¾, …
//! R  reach       min(1, log10(1 + a) / log10(1 + s)) a = followers + shares + likes, s = reach_saturation
//! P  repeat      1 − ½^r                             r = earlier contacts by the same author in the window
//! C  channel     the channel's weight, 0..=1         twitter, facebook 1; phone, email ½; internal 0
//! ```
//!
//! The default weights add up to 10, so each is the most points its part can give: intensity 3,
//! escalation 4, reach 1.5, repeat 1, channel 0.5. Reach is logarithmic and saturates at
//! 100 000 people (10 people ≈ 0.2, 1000 ≈ 0.6 of its part): a viral post scores high but cannot
//! dwarf an angry letter that threatens the ombudsman. Every part rises with its input (intensity
//! with anger), the weights are not negative, so the score never falls when an input gets worse,
//! and it stays within 0..=10 whatever the input (a NaN sentiment counts as neutral).
//!
//! | signal | I | E | R | P | C | score |
//! |---|---|---|---|---|---|---|
//! | mildly negative email (sentiment −0.3) | 0.3 | 0 | 0 | 0 | ½ | 1.15 |
//! | furious email (−1) mentioning the ombudsman | 1 | ½ | 0 | 0 | ½ | 5.25 |
//! | the same customer's third email, angry (−0.6) | 0.6 | 0 | 0 | ¾ | ½ | 2.8 |
//! | furious tweet, lawyer and press, 1000 followers | 1 | ¾ | 0.6 | 0 | 1 | 7.4 |

use serde::{Deserialize, Serialize};
use signaal_core::Channel;

use crate::{check, ConfigError};

/// How impact is weighed. `[analysis.impact]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpactConfig {
    pub weights: ImpactWeights,
    /// The audience (followers + shares + likes) at which reach gives its full part (default
    /// 100 000).
    pub reach_saturation: u64,
    pub channels: ChannelWeights,
}

/// The weight of each part of the score; only their proportions matter. Finite, not negative,
/// and not all 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImpactWeights {
    pub intensity: f64,
    pub escalation: f64,
    pub reach: f64,
    pub repeat: f64,
    pub channel: f64,
}

/// The channel part per channel, each 0..=1: how public (and how lasting) a complaint there is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelWeights {
    pub email: f64,
    pub phone: f64,
    pub twitter: f64,
    pub facebook: f64,
    pub internal: f64,
}

impl Default for ImpactConfig {
    fn default() -> Self {
        ImpactConfig {
            weights: ImpactWeights::default(),
            reach_saturation: 100_000,
            channels: ChannelWeights::default(),
        }
    }
}

impl Default for ImpactWeights {
    fn default() -> Self {
        ImpactWeights {
            intensity: 3.0,
            escalation: 4.0,
            reach: 1.5,
            repeat: 1.0,
            channel: 0.5,
        }
    }
}

impl Default for ChannelWeights {
    fn default() -> Self {
        ChannelWeights {
            email: 0.5,
            phone: 0.5,
            twitter: 1.0,
            facebook: 1.0,
            internal: 0.0,
        }
    }
}

impl ChannelWeights {
    pub fn of(&self, channel: Channel) -> f64 {
        match channel {
            Channel::Email => self.email,
            Channel::Phone => self.phone,
            Channel::Twitter => self.twitter,
            Channel::Facebook => self.facebook,
            Channel::Internal => self.internal,
        }
    }
}

/// What the score looks at in one signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpactInput {
    /// −1 (very negative) ..= 1 (very positive), as the classifier gives it.
    pub sentiment: f64,
    /// How many escalation words the classifier found.
    pub escalations: u32,
    /// Followers of the author (social media; 0 when unknown).
    pub followers: u64,
    /// Retweets or shares.
    pub shares: u64,
    pub likes: u64,
    /// How many earlier signals the same (pseudonymous) author sent within the window.
    pub repeat_contacts: u32,
    pub channel: Channel,
}

/// The score and its parts (each 0..=1, before weighing), so a reader can see why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImpactScore {
    /// 0..=10.
    pub score: f64,
    pub intensity: f64,
    pub escalation: f64,
    pub reach: f64,
    pub repeat: f64,
    pub channel: f64,
}

impl ImpactConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.weights;
        let c = &self.channels;
        let weight = |v: f64| v.is_finite() && v >= 0.0;
        let share = |v: f64| (0.0..=1.0).contains(&v);
        let sum = w.intensity + w.escalation + w.reach + w.repeat + w.channel;
        check([
            (
                "weights.intensity",
                w.intensity,
                weight(w.intensity),
                "finite, 0 or above",
            ),
            (
                "weights.escalation",
                w.escalation,
                weight(w.escalation),
                "finite, 0 or above",
            ),
            (
                "weights.reach",
                w.reach,
                weight(w.reach),
                "finite, 0 or above",
            ),
            (
                "weights.repeat",
                w.repeat,
                weight(w.repeat),
                "finite, 0 or above",
            ),
            (
                "weights.channel",
                w.channel,
                weight(w.channel),
                "finite, 0 or above",
            ),
            ("weights", sum, sum > 0.0, "at least one weight above 0"),
            (
                "reach_saturation",
                self.reach_saturation as f64,
                self.reach_saturation >= 1,
                "1 or above",
            ),
            ("channels.email", c.email, share(c.email), "0–1"),
            ("channels.phone", c.phone, share(c.phone), "0–1"),
            ("channels.twitter", c.twitter, share(c.twitter), "0–1"),
            ("channels.facebook", c.facebook, share(c.facebook), "0–1"),
            ("channels.internal", c.internal, share(c.internal), "0–1"),
        ])
    }

    /// The score of one signal (see the module documentation for the formula). Settings that
    /// did not pass [`ImpactConfig::validate`] still give a number within 0..=10.
    pub fn score(&self, input: &ImpactInput) -> ImpactScore {
        let halving = |n: u32| 1.0 - 0.5f64.powi(n.min(1000) as i32);
        let sentiment = if input.sentiment.is_nan() {
            0.0
        } else {
            input.sentiment
        };
        let audience = input
            .followers
            .saturating_add(input.shares)
            .saturating_add(input.likes) as f64;
        let saturation = (self.reach_saturation.max(1) as f64).ln_1p();
        let parts = ImpactScore {
            score: 0.0,
            intensity: (-sentiment).clamp(0.0, 1.0),
            escalation: halving(input.escalations),
            reach: (audience.ln_1p() / saturation).min(1.0),
            repeat: halving(input.repeat_contacts),
            channel: unit(self.channels.of(input.channel)),
        };
        let w = &self.weights;
        let weighed = [
            (w.intensity, parts.intensity),
            (w.escalation, parts.escalation),
            (w.reach, parts.reach),
            (w.repeat, parts.repeat),
            (w.channel, parts.channel),
        ]
        .map(|(w, part)| (if w.is_finite() { w.max(0.0) } else { 0.0 }, part));
        let total: f64 = weighed.iter().map(|(w, _)| w).sum();
        let points: f64 = weighed.iter().map(|(w, part)| w * part).sum();
        let score = if total > 0.0 && total.is_finite() {
            (10.0 * points / total).clamp(0.0, 10.0)
        } else {
            0.0
        };
        ImpactScore { score, ..parts }
    }
}

/// `v` within 0..=1 (NaN as 0).
fn unit(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(sentiment: f64) -> ImpactInput {
        ImpactInput {
            sentiment,
            escalations: 0,
            followers: 0,
            shares: 0,
            likes: 0,
            repeat_contacts: 0,
            channel: Channel::Email,
        }
    }

    fn score(input: &ImpactInput) -> f64 {
        ImpactConfig::default().score(input).score
    }

    #[test]
    fn the_documented_examples_hold() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(score(&email(-0.3)), 1.15));
        let ombudsman = ImpactInput {
            escalations: 1,
            ..email(-1.0)
        };
        assert!(close(score(&ombudsman), 5.25));
        let third = ImpactInput {
            repeat_contacts: 2,
            ..email(-0.6)
        };
        assert!(close(score(&third), 2.8));
        let tweet = ImpactInput {
            escalations: 2,
            followers: 1000,
            channel: Channel::Twitter,
            ..email(-1.0)
        };
        // Reach: log10(1001) / log10(100001) = 0.6000.
        let s = ImpactConfig::default().score(&tweet);
        assert!((s.reach - 0.6).abs() < 1e-4, "reach part {}", s.reach);
        assert!((s.score - 7.4).abs() < 1e-3, "score {}", s.score);
    }

    #[test]
    fn worse_inputs_never_lower_the_score() {
        let base = ImpactInput {
            followers: 10,
            ..email(0.2)
        };
        let worse: [fn(&mut ImpactInput); 7] = [
            |i| i.sentiment -= 0.5,
            |i| i.escalations += 1,
            |i| i.followers *= 100,
            |i| i.shares += 50,
            |i| i.likes += 1000,
            |i| i.repeat_contacts += 1,
            |i| i.channel = Channel::Twitter,
        ];
        for (n, step) in worse.iter().enumerate() {
            let mut input = base.clone();
            let mut previous = score(&input);
            for _ in 0..6 {
                step(&mut input);
                let next = score(&input);
                assert!(
                    next >= previous,
                    "change {n}: {previous} → {next} for {input:?}"
                );
                previous = next;
            }
        }
        // Each part on its own does raise it.
        assert!(score(&email(-0.5)) > score(&email(0.0)));
        assert_eq!(
            score(&email(0.0)),
            score(&email(1.0)),
            "positive is not less impact"
        );
    }

    #[test]
    fn the_score_stays_within_0_and_10_whatever_comes_in() {
        let worst = ImpactInput {
            sentiment: -1e300,
            escalations: u32::MAX,
            followers: u64::MAX,
            shares: u64::MAX,
            likes: u64::MAX,
            repeat_contacts: u32::MAX,
            channel: Channel::Twitter,
        };
        let s = score(&worst);
        assert!((s - 10.0).abs() < 1e-9, "worst case {s}");
        let calm = ImpactInput {
            channel: Channel::Internal,
            ..email(f64::NAN)
        };
        assert_eq!(score(&calm), 0.0);
        // A viral post gets reach's part, no more.
        let viral = ImpactInput {
            followers: 50_000_000,
            channel: Channel::Twitter,
            ..email(0.0)
        };
        assert!((score(&viral) - 2.0).abs() < 1e-9);
        // Broken settings give a bounded number, not a panic.
        let broken = ImpactConfig {
            weights: ImpactWeights {
                intensity: f64::NAN,
                escalation: f64::INFINITY,
                reach: -3.0,
                repeat: 0.0,
                channel: 0.0,
            },
            reach_saturation: 0,
            ..ImpactConfig::default()
        };
        assert!(broken.validate().is_err());
        assert_eq!(broken.score(&worst).score, 0.0);
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = ImpactConfig::default();
        config.channels.phone = 1.5;
        assert_eq!(
            config.validate().map_err(|e| e.key),
            Err("channels.phone".into())
        );
        config.channels.phone = 0.5;
        config.weights = ImpactWeights {
            intensity: 0.0,
            escalation: 0.0,
            reach: 0.0,
            repeat: 0.0,
            channel: 0.0,
        };
        assert_eq!(config.validate().map_err(|e| e.key), Err("weights".into()));
    }
}
