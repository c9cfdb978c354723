//! Analysts' corrections checked before they are stored: the CLI (`signaal label`) and the API
//! (`PUT /api/v1/signals/{id}/label`) take the same rules.

use signaal_core::{Cause, Kind};
use signaal_store::labels::{cause_of, Label};

use crate::Vocabulary;

/// A label checked against the taxonomy: themes that exist (each once), a known kind, a cause
/// that agrees with the themes. The message names what is wrong.
pub fn checked_label(
    vocabulary: &Vocabulary,
    signal_id: &str,
    themes: &[String],
    kind: &str,
    cause: Option<&str>,
    analyst: &str,
    note: Option<String>,
) -> Result<Label, String> {
    let mut seen = Vec::new();
    for t in themes.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !vocabulary.themes.contains(t) {
            return Err(format!(
                "unknown theme {t:?} (one of {})",
                vocabulary
                    .themes
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !seen.iter().any(|s: &String| s == t) {
            seen.push(t.to_string());
        }
    }
    let kind: Kind =
        serde_json::from_value(serde_json::Value::String(kind.into())).map_err(|_| {
            format!("unknown kind {kind:?} (complaint, compliment, question, suggestion)")
        })?;
    let derived = cause_of(&seen);
    if let Some(c) = cause {
        let given: Cause = serde_json::from_value(serde_json::Value::String(c.into()))
            .map_err(|_| format!("unknown cause {c:?} (human, system, mixed, unknown)"))?;
        if given != derived {
            return Err(format!(
                "cause {c:?} does not agree with the themes, which make it {:?} (only staff \
                 conduct is human)",
                derived.as_str()
            ));
        }
    }
    Ok(Label {
        signal_id: signal_id.to_string(),
        themes: seen,
        kind,
        cause: derived,
        analyst: analyst.to_string(),
        note,
        labelled_at: chrono::Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary {
            themes: ["staff_conduct", "payment", "reachability"]
                .map(String::from)
                .into(),
            subjects: Default::default(),
        }
    }

    #[test]
    fn a_label_is_checked_and_its_cause_follows_from_its_themes() {
        let v = vocabulary();
        let themes = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let l = checked_label(
            &v,
            "s1",
            &themes(&["payment", " staff_conduct", "payment"]),
            "complaint",
            None,
            "ann",
            None,
        )
        .expect("valid");
        assert_eq!(l.themes, ["payment", "staff_conduct"]);
        assert_eq!(l.cause, Cause::Mixed);
        let none = checked_label(
            &v,
            "s1",
            &themes(&[""]),
            "question",
            Some("unknown"),
            "ann",
            None,
        )
        .expect("no theme");
        assert!(none.themes.is_empty());
        for (t, kind, cause, says) in [
            (
                vec!["billing"],
                "complaint",
                None,
                "unknown theme \"billing\"",
            ),
            (vec!["payment"], "rant", None, "unknown kind"),
            (
                vec!["payment"],
                "complaint",
                Some("human"),
                "does not agree",
            ),
            (vec!["payment"], "complaint", Some("who"), "unknown cause"),
        ] {
            let e = checked_label(&v, "s1", &themes(&t), kind, cause, "ann", None)
                .expect_err("refused");
            assert!(e.contains(says), "{e}");
        }
    }
}
