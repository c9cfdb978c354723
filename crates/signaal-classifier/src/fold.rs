//! Case and diacritics folding with an offset map back to the original text.
//!
//! Matching happens on the folded text ("Één" → "een", "café" → "cafe"); evidence must point into
//! the original, so every folded byte remembers the byte offset of the character it came from.

/// Folded text plus, for non-ASCII input, the original byte offset of every folded byte.
pub struct Folded {
    pub text: String,
    /// `map[i]` is the original offset of folded byte `i`; empty when the input was ASCII
    /// (offsets are then identical). One extra entry maps the end.
    map: Vec<u32>,
}

impl Folded {
    pub fn new(original: &str) -> Folded {
        // Fast path: ASCII with single spaces only keeps every offset.
        let irregular_space =
            original.as_bytes().windows(2).any(|w| {
                w[0].is_ascii_whitespace() && (w[0] != b' ' || w[1].is_ascii_whitespace())
            }) || original
                .as_bytes()
                .last()
                .is_some_and(|b| b.is_ascii_whitespace() && *b != b' ');
        if original.is_ascii() && !irregular_space {
            let bytes: Vec<u8> = original.bytes().map(fold_byte).collect();
            // Only ASCII bytes, so this cannot fail; fall back to lossy just in case.
            let text = String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            return Folded {
                text,
                map: Vec::new(),
            };
        }
        if original.is_ascii() {
            // ASCII with newlines or double spaces (emails): a byte loop, no per-char folding.
            let mut text = Vec::with_capacity(original.len());
            let mut map = Vec::with_capacity(original.len() + 1);
            for (at, b) in original.bytes().enumerate() {
                if b.is_ascii_whitespace() {
                    if text.last() == Some(&b' ') {
                        continue;
                    }
                    text.push(b' ');
                } else {
                    text.push(fold_byte(b));
                }
                map.push(u32::try_from(at).unwrap_or(u32::MAX));
            }
            map.push(u32::try_from(original.len()).unwrap_or(u32::MAX));
            // Only ASCII bytes were pushed, so this cannot fail; fall back to lossy just in case.
            let text = String::from_utf8(text)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            return Folded { text, map };
        }
        let mut text = String::with_capacity(original.len());
        let mut map = Vec::with_capacity(original.len() + 1);
        for (at, c) in original.char_indices() {
            let offset = u32::try_from(at).unwrap_or(u32::MAX);
            if c.is_ascii() && !c.is_ascii_whitespace() {
                text.push(char::from(fold_byte(c as u8)));
                map.push(offset);
                continue;
            }
            let before = text.len();
            if c.is_whitespace() {
                // Runs of whitespace (newlines, tabs) become one space, so phrases match across them.
                if !text.ends_with(' ') {
                    text.push(' ');
                }
                map.resize(map.len() + (text.len() - before), offset);
                continue;
            }
            match fold_char(c) {
                Some(s) => text.push_str(s),
                None => text.extend(c.to_lowercase()),
            }
            map.resize(map.len() + (text.len() - before), offset);
        }
        map.push(u32::try_from(original.len()).unwrap_or(u32::MAX));
        Folded { text, map }
    }

    /// The original byte offset for a folded offset (a match start or end).
    pub fn original(&self, folded: usize) -> usize {
        if self.map.is_empty() {
            return folded;
        }
        self.map
            .get(folded)
            .map(|o| *o as usize)
            .unwrap_or_else(|| self.map.last().map(|o| *o as usize).unwrap_or(0))
    }

    /// The original end offset for a folded end: the end of the character the last byte came from.
    pub fn original_end(&self, original: &str, folded_end: usize) -> usize {
        if self.map.is_empty() || folded_end == 0 {
            return folded_end;
        }
        let start = self.original(folded_end - 1);
        original[start..]
            .chars()
            .next()
            .map(|c| start + c.len_utf8())
            .unwrap_or(start)
    }
}

/// One ASCII byte: lower case, and every digit becomes `0`, so "al 8 keer gebeld" in a taxonomy
/// matches any count. (Fewer distinct bytes also keep the phrase automaton small.)
fn fold_byte(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b'0'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Latin letters with diacritics as Dutch, German, French and Turkish names and words use them,
/// and typographic punctuation, folded to ASCII.
fn fold_char(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => "a",
        'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' | 'ı' | 'İ' => "i",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => "o",
        'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "u",
        'ý' | 'ÿ' | 'Ý' => "y",
        'ç' | 'Ç' => "c",
        'ñ' | 'Ñ' => "n",
        'ş' | 'Ş' => "s",
        'ğ' | 'Ğ' => "g",
        'ß' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ĳ' | 'Ĳ' => "ij",
        '\u{2019}' | '\u{2018}' | '`' | '´' => "'",
        '\u{201c}' | '\u{201d}' | '\u{201e}' => "\"",
        '\u{2013}' | '\u{2014}' => "-",
        '\u{a0}' => " ",
        // The emoji that cue lists use, as ASCII names: the automaton then needs no classes for
        // their UTF-8 bytes, and every other emoji's bytes share one.
        '🙄' => ":eyeroll:",
        '🙃' => ":upsidedown:",
        '😡' => ":angry:",
        '😤' => ":huff:",
        '😩' => ":weary:",
        '👏' => ":clap:",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_and_maps_back() {
        let original = "Één Café, DIDN’T!";
        let f = Folded::new(original);
        assert_eq!(f.text, "een cafe, didn't!");
        let start = f.text.find("cafe").unwrap_or(0);
        let (s, e) = (f.original(start), f.original_end(original, start + 4));
        assert_eq!(&original[s..e], "Café");
        let start = f.text.find("didn't").unwrap_or(0);
        assert_eq!(
            &original[f.original(start)..f.original_end(original, start + 6)],
            "DIDN’T"
        );
    }

    #[test]
    fn whitespace_runs_fold_to_one_space() {
        let original = "in de\n\n  wacht";
        let f = Folded::new(original);
        assert_eq!(f.text, "in de wacht");
        assert_eq!(
            &original[f.original(6)..f.original_end(original, 11)],
            "wacht"
        );
    }

    #[test]
    fn digits_fold_to_zero_and_cue_emoji_to_names() {
        let original = "Al 8 keer gebeld 🙄 Ⅻ";
        let f = Folded::new(original);
        assert_eq!(f.text, "al 0 keer gebeld :eyeroll: ⅻ");
        let start = f.text.find(":eyeroll:").unwrap_or(0);
        assert_eq!(
            &original[f.original(start)..f.original_end(original, start + 9)],
            "🙄"
        );
        assert_eq!(Folded::new("Week 12").text, "week 00");
    }

    #[test]
    fn ascii_is_identity() {
        let f = Folded::new("In De Wacht");
        assert_eq!(f.text, "in de wacht");
        assert_eq!(f.original(3), 3);
    }
}
