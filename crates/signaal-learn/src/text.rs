//! Folding, tokenising and negation scope: the words a featurizer hashes.
//!
//! One pass over the original text produces *tokens*: runs of letters and digits, folded (lower
//! case, diacritics removed — "Één" → "een", "ß" → "ss" — digits kept), with an apostrophe kept
//! between letters ("didn't", "auto's"). Emoji and pictographs are tokens of their own. Every
//! token remembers its byte span in the original text, so features can be explained in the
//! caller's words. Then negation: the tokens after a negator ("niet", "geen", "never", "…n't")
//! up to a clause boundary (`, . ; : ! ? ( ) …`), a contrasting conjunction ("maar", "but") or
//! `window` tokens are marked negated.
//!
//! The folded words are written into one buffer, each as `<word>` with its boundary marks, so a
//! word's character n-grams are a contiguous slice and nothing is allocated per word.

use crate::hash::hash64;

/// One token: where its folded bytes are and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    /// `folded[start..end]` is the folded word, without its marks; `folded[start - 1]` is `<`
    /// and `folded[end]` is `>`.
    pub start: u32,
    pub end: u32,
    /// Byte span in the original text.
    pub orig_start: u32,
    pub orig_end: u32,
    /// `hash64` of the folded word (seed 0); word and bigram features derive from it.
    pub hash: u64,
    /// A clause boundary lies between the previous token and this one.
    pub clause: bool,
    /// Inside a negator's scope.
    pub negated: bool,
    /// An emoji or pictograph: a word feature, no character n-grams.
    pub symbol: bool,
}

/// Reusable buffers for tokenising.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    pub folded: Vec<u8>,
    pub tokens: Vec<Token>,
}

impl Tokens {
    /// The folded word of `t`.
    pub(crate) fn word(&self, t: &Token) -> &[u8] {
        self.folded
            .get(t.start as usize..t.end as usize)
            .unwrap_or_default()
    }

    /// Tokenise `text` and mark negation scope; `window` is the number of tokens a negator
    /// reaches (0 turns negation marking off).
    pub(crate) fn read(&mut self, text: &str, window: u8) {
        self.folded.clear();
        self.tokens.clear();
        // Folding at most triples a character's bytes ("İ" → "i̇"), and marks add 2 per word.
        self.folded.reserve(3 * text.len() + 16);
        let mut reader = Reader {
            out: self,
            word: None,
            apostrophe: false,
            clause: false,
        };
        reader.run(text);
        // Padding, so that the 8 bytes from any position of a word can be loaded at once.
        self.folded.extend_from_slice(&[0; 8]);
        mark_negation(self, window);
    }
}

/// The state of the tokenising pass.
struct Reader<'a> {
    out: &'a mut Tokens,
    /// The word being read: its folded start and original start and end.
    word: Option<(usize, usize, usize)>,
    /// An apostrophe followed the word's last letter; kept if a letter follows.
    apostrophe: bool,
    /// A clause boundary was seen since the last token.
    clause: bool,
}

impl Reader<'_> {
    fn run(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let b = bytes[at];
            if b < 0x80 {
                if b.is_ascii_alphanumeric() {
                    // A run of ASCII letters and digits at once.
                    let run = bytes[at..]
                        .iter()
                        .position(|b| !b.is_ascii_alphanumeric())
                        .map_or(bytes.len(), |n| at + n);
                    let letters = &bytes[at..run];
                    self.letter(at, run, |buf| {
                        buf.extend(letters.iter().map(u8::to_ascii_lowercase))
                    });
                    at = run;
                    continue;
                } else if b == b'\'' || b == b'`' {
                    self.quote();
                } else {
                    self.separator(is_clause_byte(b));
                }
                at += 1;
                continue;
            }
            // A non-ASCII character: `at` is always a char boundary (we step by whole chars).
            let Some(c) = text.get(at..).and_then(|s| s.chars().next()) else {
                break;
            };
            let end = at + c.len_utf8();
            if let Some(folded) = fold_letter(c) {
                self.letter(at, end, |buf| buf.extend_from_slice(folded.as_bytes()));
            } else if matches!(c, '\u{2019}' | '\u{2018}' | '\u{b4}') {
                self.quote();
            } else if c.is_alphanumeric() {
                self.letter(at, end, |buf| {
                    for l in c.to_lowercase() {
                        let mut tmp = [0u8; 4];
                        buf.extend_from_slice(l.encode_utf8(&mut tmp).as_bytes());
                    }
                });
            } else if is_pictograph(c) {
                self.separator(false);
                self.symbol(text, at, end);
            } else if matches!(c, '\u{fe0f}' | '\u{200d}' | '\u{1f3fb}'..='\u{1f3ff}') {
                // Emoji variation selectors, joiners and skin tones: part of the symbol before.
            } else {
                self.separator(matches!(c, '\u{2026}' | '\u{ff0c}' | '\u{3002}'));
            }
            at = end;
        }
        self.separator(false);
    }

    /// Letters or digits at `start..end` of the original, folded by `push`.
    #[inline(always)]
    fn letter(&mut self, start: usize, end: usize, push: impl FnOnce(&mut Vec<u8>)) {
        match &mut self.word {
            Some((_, _, word_end)) => {
                if self.apostrophe {
                    self.out.folded.push(b'\'');
                    self.apostrophe = false;
                }
                *word_end = end;
            }
            None => {
                self.out.folded.push(b'<');
                self.word = Some((self.out.folded.len(), start, end));
            }
        }
        push(&mut self.out.folded);
    }

    fn quote(&mut self) {
        if self.word.is_some() && !self.apostrophe {
            self.apostrophe = true;
        } else {
            self.separator(false);
        }
    }

    /// Anything that ends a word; `clause` says it also ends a clause.
    #[inline]
    fn separator(&mut self, clause: bool) {
        self.apostrophe = false;
        if let Some((start, orig_start, orig_end)) = self.word.take() {
            let end = self.out.folded.len();
            self.out.folded.push(b'>');
            let hash = hash64(0, self.out.folded.get(start..end).unwrap_or_default());
            self.push(start, end, orig_start, orig_end, hash, false);
        }
        self.clause |= clause;
    }

    /// An emoji at `start..end`: a token of its own (modifiers after it are skipped).
    fn symbol(&mut self, text: &str, start: usize, end: usize) {
        self.out.folded.push(b'<');
        let folded_start = self.out.folded.len();
        self.out
            .folded
            .extend_from_slice(text.get(start..end).unwrap_or_default().as_bytes());
        let folded_end = self.out.folded.len();
        self.out.folded.push(b'>');
        let hash = hash64(
            0,
            self.out
                .folded
                .get(folded_start..folded_end)
                .unwrap_or_default(),
        );
        self.push(folded_start, folded_end, start, end, hash, true);
    }

    fn push(
        &mut self,
        start: usize,
        end: usize,
        orig_start: usize,
        orig_end: usize,
        hash: u64,
        symbol: bool,
    ) {
        let first = self.out.tokens.is_empty();
        self.out.tokens.push(Token {
            start: to_u32(start),
            end: to_u32(end),
            orig_start: to_u32(orig_start),
            orig_end: to_u32(orig_end),
            hash,
            clause: self.clause && !first,
            negated: false,
            symbol,
        });
        self.clause = false;
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Punctuation that ends a clause (and so a negation scope and bigrams).
#[inline]
fn is_clause_byte(b: u8) -> bool {
    matches!(b, b'.' | b',' | b';' | b':' | b'!' | b'?' | b'(' | b')')
}

/// Emoji and pictographs: Miscellaneous Symbols, Dingbats and the emoji planes.
fn is_pictograph(c: char) -> bool {
    matches!(c, '\u{2600}'..='\u{27bf}' | '\u{1f000}'..='\u{1f3fa}' | '\u{1f400}'..='\u{1faff}')
}

/// Latin letters with diacritics and ligatures as Dutch, German, French and Turkish words and
/// names use them, folded to ASCII; `None` for anything else.
fn fold_letter(c: char) -> Option<&'static str> {
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
        _ => return None,
    })
}

/// Words that open a negation scope (folded), besides every word ending in "n't".
const NEGATORS: &[&[u8]] = &[
    // Dutch
    b"niet",
    b"geen",
    b"nooit",
    b"nergens",
    b"niets",
    b"niemand",
    b"niks",
    b"noch",
    // English
    b"not",
    b"no",
    b"never",
    b"nobody",
    b"nothing",
    b"none",
    b"nowhere",
    b"neither",
    b"nor",
    b"cannot",
    b"cant",
    b"dont",
    b"doesnt",
    b"didnt",
    b"isnt",
    b"wasnt",
    b"arent",
    b"werent",
    b"wont",
    b"havent",
    b"hasnt",
    b"hadnt",
    b"couldnt",
    b"shouldnt",
    b"wouldnt",
];

/// Conjunctions that turn the clause around and so end a negation scope (folded).
const CONTRASTS: &[&[u8]] = &[
    b"maar",
    b"echter",
    b"want",
    b"omdat",
    b"hoewel",
    b"but",
    b"however",
    b"because",
    b"although",
    b"though",
    b"while",
];

/// What a word does to negation scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Negator,
    Contrast,
    Other,
}

/// A 1024-bit filter over word hashes: a word whose bit is clear is neither a negator nor a
/// contrast word, which is what almost every word is, so the exact check rarely runs.
const FILTER: [u64; 16] = {
    let mut f = [0u64; 16];
    let mut i = 0;
    while i < NEGATORS.len() {
        let h = hash64(0, NEGATORS[i]);
        f[(h >> 6 & 15) as usize] |= 1 << (h & 63);
        i += 1;
    }
    let mut i = 0;
    while i < CONTRASTS.len() {
        let h = hash64(0, CONTRASTS[i]);
        f[(h >> 6 & 15) as usize] |= 1 << (h & 63);
        i += 1;
    }
    f
};

fn role(word: &[u8], hash: u64) -> Role {
    if word.ends_with(b"n't") {
        return Role::Negator;
    }
    if FILTER[(hash >> 6 & 15) as usize] & 1 << (hash & 63) == 0 {
        return Role::Other;
    }
    if NEGATORS.contains(&word) {
        Role::Negator
    } else if CONTRASTS.contains(&word) {
        Role::Contrast
    } else {
        Role::Other
    }
}

/// Mark the tokens in a negator's scope.
fn mark_negation(tokens: &mut Tokens, window: u8) {
    if window == 0 {
        return;
    }
    let mut left = 0u8;
    for i in 0..tokens.tokens.len() {
        let t = tokens.tokens[i];
        if t.clause {
            left = 0;
        }
        if t.symbol {
            continue;
        }
        match role(tokens.word(&t), t.hash) {
            Role::Negator => {
                left = window;
                continue;
            }
            Role::Contrast => {
                left = 0;
                continue;
            }
            Role::Other => {}
        }
        if left > 0 {
            tokens.tokens[i].negated = true;
            left -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Tokens {
        let mut t = Tokens::default();
        t.read(text, 3);
        t
    }

    /// The folded words, negated ones with a `NEG_` prefix, `|` at clause boundaries.
    fn show(text: &str) -> String {
        let t = read(text);
        let mut out = Vec::new();
        for tok in &t.tokens {
            if tok.clause {
                out.push("|".to_string());
            }
            let w = String::from_utf8_lossy(t.word(tok)).into_owned();
            out.push(if tok.negated { format!("NEG_{w}") } else { w });
        }
        out.join(" ")
    }

    #[test]
    fn folding_lowercases_and_strips_diacritics_keeping_digits() {
        let cases = [
            ("Één café", "een cafe"),
            ("Geëmigreerd naïef", "geemigreerd naief"),
            ("Straße ÆON œuvre ĳs", "strasse aeon oeuvre ijs"),
            ("Çağrı Ñandú", "cagri nandu"),
            ("40 minuten in de wacht", "40 minuten in de wacht"),
            ("DigiD-code 123abc", "digid code 123abc"),
            ("ПРИВЕТ мир", "привет мир"),
        ];
        for (input, want) in cases {
            assert_eq!(show(input), want, "folding {input:?}");
        }
    }

    #[test]
    fn apostrophes_stay_inside_words_only() {
        assert_eq!(show("I didn't get it"), "i didn't NEG_get NEG_it");
        assert_eq!(show("auto's en foto’s"), "auto's en foto's");
        assert_eq!(
            show("'s avonds 'quoted' klanten'"),
            "s avonds quoted klanten"
        );
    }

    #[test]
    fn negation_scope_ends_at_punctuation_contrast_or_window() {
        let cases = [
            (
                "ik ben niet teruggebeld door de medewerker",
                "ik ben niet NEG_teruggebeld NEG_door NEG_de medewerker",
            ),
            (
                "geen reactie, wel een brief",
                "geen NEG_reactie | wel een brief",
            ),
            (
                "het personeel was niet onvriendelijk maar het formulier werkte niet.",
                "het personeel was niet NEG_onvriendelijk maar het formulier werkte niet",
            ),
            (
                "The staff were not unfriendly, but the form did not work",
                "the staff were not NEG_unfriendly | but the form did not NEG_work",
            ),
            (
                "nobody answered! never again",
                "nobody NEG_answered | never NEG_again",
            ),
            ("I don't know why", "i don't NEG_know NEG_why"),
            ("nooit meer gehoord", "nooit NEG_meer NEG_gehoord"),
        ];
        for (input, want) in cases {
            assert_eq!(show(input), want, "negation in {input:?}");
        }
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "Één  brief\nnaïef didn't 😡👍🏽!";
        let t = read(text);
        let spans: Vec<&str> = t
            .tokens
            .iter()
            .map(|tok| &text[tok.orig_start as usize..tok.orig_end as usize])
            .collect();
        assert_eq!(spans, ["Één", "brief", "naïef", "didn't", "😡", "👍"]);
        assert!(t.tokens[4].symbol && t.tokens[5].symbol);
        for tok in &t.tokens {
            let (start, end) = (tok.start as usize, tok.end as usize);
            assert_eq!(
                t.folded.get(start - 1),
                Some(&b'<'),
                "a word starts after `<`"
            );
            assert_eq!(t.folded.get(end), Some(&b'>'), "a word ends before `>`");
        }
    }

    #[test]
    fn empty_and_hostile_input_gives_no_tokens_and_no_panic() {
        assert!(read("").tokens.is_empty());
        assert!(read("  ,.;!? \n\t").tokens.is_empty());
        assert!(read("\u{fe0f}\u{200d}''``").tokens.is_empty());
        let long = "a".repeat(100_000);
        assert_eq!(read(&long).tokens.len(), 1);
    }
}
