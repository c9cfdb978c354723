//! Privacy: personal data is replaced by typed placeholders before classified signals leave the
//! pipeline, and authors become keyed pseudonyms.
//!
//! Numbers are only redacted when they are what they claim to be: IBANs must pass the mod-97
//! check, BSNs the 11-proef. Phone numbers take Dutch (`06-12345678`, `020 123 4567`,
//! `+31 (0)6 …`) and international (`+44 20 …`, `0049 …`) forms.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use regex::Regex;
use sha2::Sha256;

/// Every placeholder the redactor leaves.
pub const PLACEHOLDERS: [&str; 5] = ["[email]", "[iban]", "[bsn]", "[phone]", "[address]"];

/// Blanks the word inside each placeholder of (folded, lower-case) text with `-`, keeping every
/// byte offset: the classifier must not read "[email]" as the customer writing "email", or a
/// redacted signal would be classified otherwise than the words its customer wrote.
pub fn mask_placeholders(text: &mut String) {
    if !text.contains('[') {
        return;
    }
    let mut bytes = std::mem::take(text).into_bytes();
    for p in PLACEHOLDERS {
        let p = p.as_bytes();
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(p.len()).position(|w| w == p) {
            let start = at + i;
            bytes[start + 1..start + p.len() - 1].fill(b'-');
            at = start + p.len();
        }
    }
    // ASCII letters became ASCII hyphens: still UTF-8.
    *text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// A validator returns how much of a candidate is really personal data (`None`: nothing).
type Validate = fn(&str) -> Option<usize>;

struct Rule {
    regex: Regex,
    placeholder: &'static str,
    validate: Validate,
    /// Cheap prefilters: most texts have no `@` and few digits, so most rules never run.
    needs_at: bool,
    min_digits: usize,
}

pub struct Redactor {
    rules: Vec<Rule>,
}

fn always(s: &str) -> Option<usize> {
    Some(s.len())
}

fn bsn(s: &str) -> Option<usize> {
    bsn_valid(s).then_some(s.len())
}

/// IBANs written in groups may be followed by a word the pattern took along: try the longest
/// prefix ending at a group boundary that passes mod-97.
fn iban(s: &str) -> Option<usize> {
    if iban_valid(s) {
        return Some(s.len());
    }
    s.rmatch_indices(' ')
        .map(|(i, _)| i)
        .find(|i| iban_valid(&s[..*i]))
}

/// ISO 13616 mod-97 check.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.len() < 15
        || compact.len() > 34
        || !compact.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The 11-proef for a Dutch citizen service number (9 digits, separators allowed).
pub fn bsn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 9 || digits.iter().all(|d| *d == 0) {
        return false;
    }
    let sum: i64 = digits[..8]
        .iter()
        .zip((2..=9).rev())
        .map(|(d, w)| i64::from(*d) * w)
        .sum::<i64>()
        - i64::from(digits[8]);
    sum % 11 == 0
}

impl Redactor {
    pub fn new() -> Result<Redactor, regex::Error> {
        let rule = |p: &str,
                    placeholder,
                    validate: Validate,
                    needs_at,
                    min_digits|
         -> Result<Rule, regex::Error> {
            Ok(Rule {
                regex: Regex::new(p)?,
                placeholder,
                validate,
                needs_at,
                min_digits,
            })
        };
        Ok(Redactor {
            rules: vec![
                rule(
                    r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
                    "[email]",
                    always,
                    true,
                    0,
                )?,
                rule(
                    r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b",
                    "[iban]",
                    iban,
                    false,
                    9,
                )?,
                rule(
                    r"\b\d{4}\.\d{2}\.\d{3}\b|\b\d{3}[ .]?\d{3}[ .]?\d{3}\b",
                    "[bsn]",
                    bsn,
                    false,
                    9,
                )?,
                rule(
                    r"(?:(?:\+|\b00)31[ \-]?(?:\(0\)[ \-]?)?|\b0)[1-9](?:[ \-]?\d){8}\b|(?:\+|\b00)[1-9]\d{0,2}(?:[ \-]?\(?\d\)?){7,12}\b",
                    "[phone]",
                    always,
                    false,
                    8,
                )?,
                rule(
                    r"\b[A-Z][a-z]+(?:straat|laan|weg|plein|gracht|kade|singel|dijk|pad|steeg|hof|dreef|park|markt)\s+\d{1,5}(?:\s?[a-zA-Z]\b)?",
                    "[address]",
                    always,
                    false,
                    1,
                )?,
                rule(
                    r"\b[1-9]\d{3} ?(?:[A-RT-Z][A-Z]|S[BCE-RT-Z])\b(?:,? \d{1,5}(?: ?[a-z]\b)?)?",
                    "[address]",
                    always,
                    false,
                    4,
                )?,
            ],
        })
    }

    /// The text with personal data replaced; borrowed when there was nothing to replace.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let has_at = text.contains('@');
        let digits = text.bytes().filter(u8::is_ascii_digit).count();
        let mut spans: Vec<(usize, usize, &'static str)> = Vec::new();
        for rule in &self.rules {
            if (rule.needs_at && !has_at) || digits < rule.min_digits {
                continue;
            }
            let placeholder = rule.placeholder;
            for m in rule.regex.find_iter(text) {
                let Some(len) = (rule.validate)(m.as_str()) else {
                    continue;
                };
                let (start, end) = (m.start(), m.start() + len);
                if !spans.iter().any(|(s, e, _)| start < *e && *s < end) {
                    spans.push((start, end, placeholder));
                }
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (s, e, p) in spans {
            out.push_str(&text[at..s]);
            out.push_str(p);
            at = e;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }
}

/// A keyed pseudonym for an author: HMAC-SHA256(secret, normalised author), so recurrence per
/// customer stays countable while the identity does not leave the pipeline.
pub fn author_key(secret: &[u8], author: &str) -> String {
    let normalised: String = author
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(normalised.as_bytes());
    format!("a_{}", hex::encode(&mac.finalize().into_bytes()[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redactor() -> Redactor {
        match Redactor::new() {
            Ok(r) => r,
            Err(e) => panic!("redaction patterns must compile: {e}"),
        }
    }

    #[test]
    fn every_placeholder_is_known_and_masked() -> Result<(), regex::Error> {
        let r = Redactor::new()?;
        for rule in &r.rules {
            assert!(
                PLACEHOLDERS.contains(&rule.placeholder),
                "{}",
                rule.placeholder
            );
        }
        let mut text = "mail [email] of bel [phone]; [iban] [bsn] [address] [x]".to_string();
        mask_placeholders(&mut text);
        assert_eq!(
            text,
            "mail [-----] of bel [-----]; [----] [---] [-------] [x]"
        );
        Ok(())
    }

    #[test]
    fn table() {
        let r = redactor();
        let cases = [
            (
                "mail jan.jansen@example.nl of bel 06-12345678",
                "mail [email] of bel [phone]",
            ),
            (
                "bel +31 (0)20 123 4567 of 020 1234567",
                "bel [phone] of [phone]",
            ),
            ("call +44 20 7946 0958 please", "call [phone] please"),
            ("IBAN NL91 ABNA 0417 1643 00 graag", "IBAN [iban] graag"),
            ("IBAN NL91ABNA0417164300", "IBAN [iban]"),
            (
                "rekening NL92ABNA0417164300 (fout)",
                "rekening NL92ABNA0417164300 (fout)",
            ),
            ("mijn BSN is 111222333", "mijn BSN is [bsn]"),
            ("bsn 1112.22.333", "bsn [bsn]"),
            ("ordernummer 123456789", "ordernummer 123456789"),
            (
                "ik woon op 1234 AB, 12a in Utrecht",
                "ik woon op [address] in Utrecht",
            ),
            (
                "Dorpsstraat 12, 1234 AB Amsterdam",
                "[address], [address] Amsterdam",
            ),
            (
                "in 2026 is de brief op 17-11-2026 verstuurd",
                "in 2026 is de brief op 17-11-2026 verstuurd",
            ),
            (
                "kosten 1500 euro, 40 minuten gewacht",
                "kosten 1500 euro, 40 minuten gewacht",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact(input), want, "redacting {input:?}");
        }
    }

    #[test]
    fn checks() {
        assert!(iban_valid("NL91ABNA0417164300"));
        assert!(iban_valid("DE89 3704 0044 0532 0130 00"));
        assert!(!iban_valid("NL91ABNA0417164301"));
        assert!(bsn_valid("111222333"));
        assert!(!bsn_valid("111222334"));
        assert!(!bsn_valid("000000000"));
    }

    #[test]
    fn author_keys_are_stable_keyed_and_normalised() {
        let a = author_key(b"secret", "Jan@Example.nl");
        assert_eq!(a, author_key(b"secret", " jan@example.nl "));
        assert_ne!(a, author_key(b"other", "jan@example.nl"));
        assert!(a.starts_with("a_") && a.len() == 34, "{a}");
        assert!(!a.contains("jan"));
    }
}
