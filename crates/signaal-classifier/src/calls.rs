//! Call metadata as themes. A 25-minute wait is a reachability signal even when the agent's note
//! does not say so, and a call transferred three times is a handoff: thresholds from config turn
//! a phone signal's `meta` into themes, with the value as evidence (`field` = `meta.…`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signaal_core::{Cause, CauseSide, Classification, Evidence, Signal, ThemeTag};

use crate::Classifier;

/// Thresholds; 0 (or `false`) switches a rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallRules {
    /// A wait of at least this many seconds makes `reachability`.
    pub long_wait_seconds: u64,
    /// An abandoned call (the caller gave up before reaching anyone) makes `reachability`.
    pub abandoned: bool,
    /// At least this many transfers make `handoffs`.
    pub handoff_transfers: u64,
    /// The same caller again within this many days makes `repeat_story`.
    pub repeat_days: u32,
}

impl Default for CallRules {
    fn default() -> Self {
        CallRules {
            long_wait_seconds: 600,
            abandoned: true,
            handoff_transfers: 2,
            repeat_days: 7,
        }
    }
}

impl CallRules {
    /// Adds the themes `signal`'s call metadata earns to `c` (themes the taxonomy does not have
    /// are left out), and recomputes the cause. `previous_call` is when the same caller last
    /// called before this one, if known.
    pub fn apply(
        &self,
        classifier: &Classifier,
        signal: &Signal,
        previous_call: Option<DateTime<Utc>>,
        c: &mut Classification,
    ) {
        let meta = |k: &str| signal.meta.get(k);
        let number = |k: &str| meta(k).and_then(serde_json::Value::as_u64);
        if let Some(wait) = number("wait_seconds") {
            if self.long_wait_seconds > 0 && wait >= self.long_wait_seconds {
                add(
                    classifier,
                    c,
                    "reachability",
                    Evidence::metadata("meta.wait_seconds", wait),
                );
            }
        }
        if self.abandoned && meta("abandoned").and_then(serde_json::Value::as_bool) == Some(true) {
            add(
                classifier,
                c,
                "reachability",
                Evidence::metadata("meta.abandoned", true),
            );
        }
        if let Some(n) = number("transfers") {
            if self.handoff_transfers > 0 && n >= self.handoff_transfers {
                add(
                    classifier,
                    c,
                    "handoffs",
                    Evidence::metadata("meta.transfers", n),
                );
            }
        }
        self.apply_repeat(classifier, signal, previous_call, c);
    }

    /// Only the repeat-caller rule of [`CallRules::apply`]: the worker learns when a caller
    /// called before only after the rest of the classification is done.
    pub fn apply_repeat(
        &self,
        classifier: &Classifier,
        signal: &Signal,
        previous_call: Option<DateTime<Utc>>,
        c: &mut Classification,
    ) {
        if let Some(before) = previous_call {
            let gap = signal.occurred_at - before;
            if self.repeat_days > 0
                && gap >= chrono::Duration::zero()
                && gap <= chrono::Duration::days(i64::from(self.repeat_days))
            {
                add(
                    classifier,
                    c,
                    "repeat_story",
                    Evidence::metadata("previous_call", before.to_rfc3339()),
                );
            }
        }
    }
}

/// Adds `theme` with `evidence` to `c` (or the evidence to its tag) and recomputes the cause;
/// a theme the taxonomy does not have is left out.
fn add(classifier: &Classifier, c: &mut Classification, theme: &str, evidence: Evidence) {
    let Some(side) = classifier.themes().find(|t| t.id == theme).map(|t| t.cause) else {
        return;
    };
    match c.themes.iter_mut().find(|t| t.id == theme) {
        Some(tag) => tag.evidence.push(evidence),
        None => c.themes.push(ThemeTag {
            id: theme.to_string(),
            score: 0.5,
            evidence: vec![evidence],
        }),
    }
    c.cause = match (c.cause, side) {
        (Cause::Unknown, CauseSide::System) | (Cause::System, CauseSide::System) => Cause::System,
        (Cause::Unknown, CauseSide::Human) | (Cause::Human, CauseSide::Human) => Cause::Human,
        _ => Cause::Mixed,
    };
}

/// A phone call for the repeat rule: `(author pseudonym, time, thread_id)`.
pub type Call = (String, DateTime<Utc>, Option<String>);

/// For each `(author pseudonym, time, thread)` of a batch, the caller's latest earlier call
/// within `days`, from calls `known` (already in the register) and the batch itself. A call in
/// the same thread is a leg of the same call (a transfer, a queue retry), not an earlier one.
pub fn previous_calls(
    batch: &[(Option<String>, DateTime<Utc>, Option<String>)],
    known: &[Call],
    days: u32,
) -> Vec<Option<DateTime<Utc>>> {
    let window = chrono::Duration::days(i64::from(days));
    type Seen<'a> = (DateTime<Utc>, Option<&'a str>);
    let mut by_author: std::collections::HashMap<&str, Vec<Seen<'_>>> =
        std::collections::HashMap::new();
    let batch_known = batch
        .iter()
        .filter_map(|(a, t, th)| a.as_deref().map(|a| (a, *t, th.as_deref())));
    for (a, t, th) in known
        .iter()
        .map(|(a, t, th)| (a.as_str(), *t, th.as_deref()))
        .chain(batch_known)
    {
        by_author.entry(a).or_default().push((t, th));
    }
    batch
        .iter()
        .map(|(author, at, thread)| {
            let times = by_author.get(author.as_deref()?)?;
            times
                .iter()
                .filter(|(t, th)| {
                    let same_call = thread.is_some() && *th == thread.as_deref();
                    t < at && *at - *t <= window && !same_call
                })
                .map(|(t, _)| *t)
                .max()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;
    use signaal_core::Channel;

    fn call(meta: serde_json::Value, text: &str) -> Signal {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 17, 9, 0, 0)
            .single()
            .unwrap_or_default();
        let mut s = Signal::new(Channel::Phone, "cc", "c1", at, text);
        if let serde_json::Value::Object(m) = meta {
            s.meta = m;
        }
        s
    }

    fn themes(c: &Classification) -> Vec<&str> {
        let mut t: Vec<&str> = c.themes.iter().map(|t| t.id.as_str()).collect();
        t.sort_unstable();
        t
    }

    #[test]
    fn thresholds_make_themes_with_the_value_as_evidence() -> Result<(), Box<dyn std::error::Error>>
    {
        let k = Classifier::default_taxonomy()?;
        let rules = CallRules::default();
        let s = call(
            json!({"wait_seconds": 1500, "transfers": 3, "abandoned": false}),
            "",
        );
        let mut c = k.classify(&s.text);
        assert_eq!(c.cause, Cause::Unknown);
        rules.apply(&k, &s, None, &mut c);
        assert_eq!(themes(&c), ["handoffs", "reachability"]);
        assert_eq!(c.cause, Cause::System);
        let wait = &c
            .themes
            .iter()
            .find(|t| t.id == "reachability")
            .ok_or("none")?
            .evidence[0];
        assert_eq!(
            (wait.field.as_deref(), wait.text.as_str()),
            (Some("meta.wait_seconds"), "1500")
        );

        // Under the thresholds nothing is added; rules set to 0 are off.
        let short = call(json!({"wait_seconds": 599, "transfers": 1}), "");
        let mut c = k.classify(&short.text);
        rules.apply(&k, &short, None, &mut c);
        assert!(c.themes.is_empty());
        let off = CallRules {
            long_wait_seconds: 0,
            ..rules
        };
        let mut c = k.classify(&s.text);
        off.apply(&k, &s, None, &mut c);
        assert_eq!(themes(&c), ["handoffs"]);
        Ok(())
    }

    #[test]
    fn abandoned_and_repeat_callers_and_mixed_cause() -> Result<(), Box<dyn std::error::Error>> {
        let k = Classifier::default_taxonomy()?;
        let rules = CallRules::default();
        let s = call(
            json!({"abandoned": true}),
            "De medewerker schreeuwde tegen me en hing op.",
        );
        let mut c = k.classify(&s.text);
        assert_eq!(c.cause, Cause::Human, "{c:?}");
        let week_ago = s.occurred_at - chrono::Duration::days(6);
        rules.apply(&k, &s, Some(week_ago), &mut c);
        assert_eq!(
            themes(&c),
            ["reachability", "repeat_story", "staff_conduct"]
        );
        assert_eq!(c.cause, Cause::Mixed);

        let mut c = k.classify("");
        let long_ago = s.occurred_at - chrono::Duration::days(8);
        rules.apply(&k, &call(json!({}), ""), Some(long_ago), &mut c);
        assert!(c.themes.is_empty(), "outside the window");
        Ok(())
    }

    #[test]
    fn previous_calls_come_from_the_register_and_the_batch() {
        let t = |day: i64| {
            Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0)
                .single()
                .unwrap_or_default()
                + chrono::Duration::days(day)
        };
        let a = Some("a_1".to_string());
        let batch = vec![
            (a.clone(), t(10), None),
            (a.clone(), t(12), None),
            (None, t(12), None),
            (Some("a_2".into()), t(3), None),
        ];
        // The register has a_1 on day 1 (too long ago) and day 8, and this very call (replayed).
        let known = vec![
            ("a_1".to_string(), t(1), None),
            ("a_1".to_string(), t(8), None),
            ("a_1".to_string(), t(10), None),
        ];
        assert_eq!(
            previous_calls(&batch, &known, 7),
            vec![Some(t(8)), Some(t(10)), None, None]
        );
        assert_eq!(
            previous_calls(&batch, &known, 1),
            vec![None, None, None, None]
        );
    }

    #[test]
    fn legs_of_one_call_are_not_a_repeat_caller() {
        let t = |minute: i64| {
            Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0)
                .single()
                .unwrap_or_default()
                + chrono::Duration::minutes(minute)
        };
        let a = Some("a_1".to_string());
        let call = |th: &str| Some(th.to_string());
        // Call 1 has two legs (a transfer 5 minutes in); call 2 comes an hour later.
        let batch = vec![
            (a.clone(), t(0), call("1700.1")),
            (a.clone(), t(5), call("1700.1")),
            (a.clone(), t(60), call("1760.9")),
        ];
        assert_eq!(
            previous_calls(&batch, &[], 7),
            vec![None, None, Some(t(5))],
            "the second leg is the same call; the call an hour later is a repeat"
        );
        // The first leg already in the register.
        let known = vec![("a_1".to_string(), t(0), call("1700.1"))];
        assert_eq!(previous_calls(&batch[1..2], &known, 7), vec![None]);
    }

    #[test]
    fn themes_the_taxonomy_removed_stay_out() -> Result<(), Box<dyn std::error::Error>> {
        let k = Classifier::from_toml(
            "extends = \"default\"\nversion = \"t\"\nremove_themes = [\"handoffs\"]\n",
        )?;
        let s = call(json!({"transfers": 5}), "");
        let mut c = k.classify(&s.text);
        CallRules::default().apply(&k, &s, None, &mut c);
        assert!(c.themes.is_empty());
        Ok(())
    }
}
