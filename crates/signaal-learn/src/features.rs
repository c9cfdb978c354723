//! Text, channel and rule hits as a sparse vector of hashed feature indices.
//!
//! A [`Featurizer`] reads a text once (see the `text` module: folding, tokens, negation scope)
//! and emits, for every token,
//!
//! - the word (`NEG_`-marked inside a negation scope: a separate namespace);
//! - the bigram with the token before it, unless a clause boundary lies between them (the
//!   negation marks of both words are part of the bigram);
//! - the character n-grams (`char_min..=char_max`, default 3–5) of `<word>` with its boundary
//!   marks, which let "terugstorting" share evidence with "teruggestort" and Dutch compounds
//!   with their parts. They carry no negation mark: they say what a word is about, the word and
//!   bigram features say whether it was negated. (Complaints mostly negate the thing that went
//!   wrong — "niet teruggestort", "geen reactie" — so a negated word's n-grams are evidence for
//!   its topic, and splitting them off would halve what the model learns about the words that
//!   matter most.)
//!
//! and once per signal the channel, each of the caller's extra features (rule hits such as
//! `rule:theme:payment` or `cue:negation`, taken as given, case-sensitive) and a bias.
//!
//! **Hashing.** Each feature is hashed from a namespace seed with the crate's fixed 64-bit hash
//! (64-bit chunks, multiply-rotate, `fmix64`; a character n-gram is its bytes packed into one
//! `u64`, see `hash.rs`), and its index is the top `bits` bits (`2^bits` buckets, default 2^18).
//! Words are hashed once where they lie in the folded buffer, bigrams combine two word hashes:
//! no feature is ever built as a `String`. The hash is part of the model
//! format: changing it, a namespace seed or the folding changes every index (see the hash
//! stability test).
//!
//! **Values.** Binary: a feature is present or not, however often it occurs (signals are short;
//! a repeated word says little more, and presence is what "the words that contributed" shows).
//! Words, bigrams and character n-grams are three namespaces, each L2-normalised to length 1: a
//! namespace with `k` distinct features gives each the value `1/√k`, so long texts do not get
//! larger scores and the ~10× more numerous character n-grams do not drown the words. Channel,
//! extra features and the bias have value 1: a rule hit counts the same however many other hits
//! there are. Deduplication is a bit per bucket (`2^bits / 8` bytes per thread, 32 KiB at the
//! default 18), set and tested per feature: no sorting, no hash map, no branch per feature.
//!
//! **Order.** Features come out by namespace (words, bigrams, character n-grams, then channel,
//! extras and bias), each in the order of first occurrence. An index can occur twice when two
//! namespaces hash into the same bucket; a linear model simply adds both.
//!
//! Invariants: deterministic and platform-independent (the same text gives the same indices and
//! bit-identical values everywhere), no I/O, no panic on any input.

use std::cell::RefCell;

use crate::hash::{fmix64, hash64, K};
use crate::text::Tokens;
use crate::LearnError;

// Namespace seeds: arbitrary distinct constants (digits of pi), fixed forever.
const NS_WORD: u64 = 0x243f_6a88_85a3_08d3;
const NS_NEG_WORD: u64 = 0x1319_8a2e_0370_7344;
const NS_BIGRAM: u64 = 0xa409_3822_299f_31d0;
const NS_CHAR: u64 = 0x082e_fa98_ec4e_6c89;
const NS_CHANNEL: u64 = 0xbe54_66cf_34e9_0c6c;
const NS_EXTRA: u64 = 0xc0ac_29b7_c97c_50dd;
const NS_BIAS: u64 = 0x3f84_d5b5_b547_0917;

/// Extra features for a caller that has none.
pub const NO_EXTRAS: &[&str] = &[];

/// How text becomes features. Part of a trained model: a model must be used with the
/// configuration it was trained with ([`crate::Model::featurizer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureConfig {
    /// `log2` of the number of hash buckets, `10..=24`; default 18 (262,144 buckets).
    pub bits: u8,
    /// Shortest character n-gram, counting the `<` `>` boundary marks; default 3.
    pub char_min: u8,
    /// Longest character n-gram, at most 8; 0 turns character n-grams off. Default 5.
    pub char_max: u8,
    /// Word bigrams within a clause; default on.
    pub bigrams: bool,
    /// How many tokens after a negator are marked negated (0: no negation marking); default 3.
    pub negation_window: u8,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            bits: 18,
            char_min: 3,
            char_max: 5,
            bigrams: true,
            negation_window: 3,
        }
    }
}

impl FeatureConfig {
    /// Checks the ranges documented on the fields.
    pub fn validate(&self) -> Result<(), LearnError> {
        if !(10..=24).contains(&self.bits) {
            return Err(LearnError::Config(format!(
                "`bits` must be in 10..=24, not {}",
                self.bits
            )));
        }
        if self.char_max > 8 || (self.char_max > 0 && !(1..=self.char_max).contains(&self.char_min))
        {
            return Err(LearnError::Config(format!(
                "character n-grams need 1 <= `char_min` <= `char_max` <= 8 (or `char_max` = 0), \
                 not {}..={}",
                self.char_min, self.char_max
            )));
        }
        Ok(())
    }
}

/// A sparse feature vector: parallel lists of bucket indices and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl Features {
    /// Bucket indices, each below `2^bits`.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// The value of each index.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// `(index, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        self.indices
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Gives back spare capacity (for feature vectors kept in memory, as in training).
    pub(crate) fn shrink(&mut self) {
        self.indices.shrink_to_fit();
        self.values.shrink_to_fit();
    }
}

/// A feature that came from the text, and where: `text[start..end]` of the original text. Word
/// and character n-gram features point at their word, bigrams at both words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSpan {
    pub index: u32,
    pub start: usize,
    pub end: usize,
}

/// Turns a text, its channel and extra features into [`Features`]. Cheap to clone, shareable
/// between threads; scratch buffers are per thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Featurizer {
    config: FeatureConfig,
}

impl Featurizer {
    pub fn new(config: FeatureConfig) -> Result<Featurizer, LearnError> {
        config.validate()?;
        Ok(Featurizer { config })
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// The number of buckets, `2^bits`.
    pub fn dimension(&self) -> usize {
        1 << self.config.bits
    }

    /// The bias feature's index (in every vector).
    pub(crate) fn bias_index(&self) -> u32 {
        self.index(fmix64(NS_BIAS))
    }

    #[inline(always)]
    fn index(&self, hash: u64) -> u32 {
        (hash >> (64 - u32::from(self.config.bits))) as u32
    }

    /// The features of `text` from `channel`, with the caller's `extras` (for example rule
    /// hits); empty extras are ignored.
    pub fn featurize<S: AsRef<str>>(&self, text: &str, channel: &str, extras: &[S]) -> Features {
        let mut out = Features::default();
        self.featurize_into(text, channel, extras, &mut out);
        out
    }

    /// [`Featurizer::featurize`] into `out`, reusing its buffers.
    pub fn featurize_into<S: AsRef<str>>(
        &self,
        text: &str,
        channel: &str,
        extras: &[S],
        out: &mut Features,
    ) {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.run(&mut scratch, text, channel, extras, out),
            // Only reachable through re-entrance, which nothing here does; stay correct anyway.
            Err(_) => self.run(&mut Scratch::default(), text, channel, extras, out),
        });
    }

    fn run<S: AsRef<str>>(
        &self,
        scratch: &mut Scratch,
        text: &str,
        channel: &str,
        extras: &[S],
        out: &mut Features,
    ) {
        scratch.tokens.read(text, self.config.negation_window);
        // Every token gives at most a word and a bigram, every marked byte starts at most
        // `char_max - char_min + 1` n-grams.
        let per_byte = usize::from(self.config.char_max.saturating_sub(self.config.char_min)) + 1;
        let bound = 2 * scratch.tokens.tokens.len()
            + per_byte * scratch.tokens.folded.len()
            + extras.len()
            + 2;
        let Scratch {
            tokens,
            seen,
            found,
        } = scratch;
        let words = 1usize << self.config.bits.saturating_sub(6);
        if seen.len() < words {
            seen.resize(words, 0);
        }
        if found.len() < bound {
            found.resize(bound, 0);
        }
        let mut sink = Sink {
            seen,
            out: found,
            filled: 0,
            namespace_start: 0,
        };
        self.words(tokens, |index, _, _| sink.push(index));
        let words = sink.end_namespace();
        self.bigrams(tokens, |index, _, _| sink.push(index));
        let bigrams = sink.end_namespace();
        self.char_ngrams(tokens, |index, _, _| sink.push(index));
        let chars = sink.end_namespace();
        sink.push(self.channel_index(channel));
        for extra in extras {
            let extra = extra.as_ref();
            if !extra.is_empty() {
                sink.push(self.index(hash64(NS_EXTRA, extra.as_bytes())));
            }
        }
        sink.push(self.bias_index());
        let binary = sink.end_namespace();
        let filled = sink.filled;
        out.indices.clear();
        out.indices
            .extend_from_slice(found.get(..filled).unwrap_or_default());
        out.values.clear();
        for n in [words, bigrams, chars] {
            let value = if n > 0 { 1.0 / (n as f32).sqrt() } else { 0.0 };
            out.values.extend(std::iter::repeat_n(value, n));
        }
        out.values.extend(std::iter::repeat_n(1.0, binary));
        scratch.trim();
    }

    /// Every text feature of `text` with the span of the original text it came from, in the
    /// order they are produced (an index appears once per occurrence). The slow path, for
    /// explanations; channel, extras and bias have no span and are not listed.
    pub fn explain(&self, text: &str) -> Vec<FeatureSpan> {
        let mut tokens = Tokens::default();
        tokens.read(text, self.config.negation_window);
        let mut spans = Vec::new();
        let mut push = |index, start: u32, end: u32| {
            spans.push(FeatureSpan {
                index,
                start: start as usize,
                end: end as usize,
            })
        };
        self.words(&tokens, &mut push);
        self.bigrams(&tokens, &mut push);
        self.char_ngrams(&tokens, &mut push);
        spans
    }

    /// The channel's index; channels compare ASCII-case-insensitively.
    fn channel_index(&self, channel: &str) -> u32 {
        let mut short = [0u8; 32];
        let hash = match short.get_mut(..channel.len()) {
            Some(buf) => {
                buf.copy_from_slice(channel.as_bytes());
                buf.make_ascii_lowercase();
                hash64(NS_CHANNEL, buf)
            }
            None => hash64(NS_CHANNEL, channel.to_ascii_lowercase().as_bytes()),
        };
        self.index(hash)
    }

    /// Calls `emit(index, original start, original end)` for every word.
    #[inline(always)]
    fn words(&self, tokens: &Tokens, mut emit: impl FnMut(u32, u32, u32)) {
        for t in &tokens.tokens {
            let ns = if t.negated { NS_NEG_WORD } else { NS_WORD };
            emit(self.index(fmix64(t.hash ^ ns)), t.orig_start, t.orig_end);
        }
    }

    /// Calls `emit(index, original start, original end)` for every bigram inside a clause.
    #[inline(always)]
    fn bigrams(&self, tokens: &Tokens, mut emit: impl FnMut(u32, u32, u32)) {
        if !self.config.bigrams {
            return;
        }
        for pair in tokens.tokens.windows(2) {
            let [p, t] = pair else { continue };
            if t.clause {
                continue;
            }
            let flags = u64::from(p.negated) | u64::from(t.negated) << 1;
            let h = p.hash.rotate_left(23) ^ t.hash ^ NS_BIGRAM.wrapping_add(flags);
            emit(self.index(fmix64(h)), p.orig_start, t.orig_end);
        }
    }

    /// Calls `emit(index, original start, original end)` for every character n-gram of every
    /// word; the span is the word's.
    #[inline(always)]
    fn char_ngrams(&self, tokens: &Tokens, emit: impl FnMut(u32, u32, u32)) {
        let (lo, hi) = (
            usize::from(self.config.char_min),
            usize::from(self.config.char_max),
        );
        // The default lengths as constants, so that the inner loop is unrolled.
        if (lo, hi) == (3, 5) {
            self.ngram_loop(tokens, 3, 5, emit);
        } else if hi > 0 {
            self.ngram_loop(tokens, lo, hi, emit);
        }
    }

    #[inline(always)]
    fn ngram_loop(
        &self,
        tokens: &Tokens,
        lo: usize,
        hi: usize,
        mut emit: impl FnMut(u32, u32, u32),
    ) {
        let shift = 64 - u32::from(self.config.bits);
        for t in tokens.tokens.iter().filter(|t| !t.symbol) {
            let seed = NS_CHAR;
            // `<word>` starts one byte before the word. The buffer is padded, so 8 bytes from any
            // position of the word can be read: `window` holds the 8 bytes from position `s`, and
            // an n-gram is its low `n` bytes.
            let first = (t.start as usize).saturating_sub(1);
            let len = (t.end - t.start) as usize + 2;
            let bytes = tokens.folded.get(first..).unwrap_or_default();
            let mut window = load8(bytes, 0);
            for s in 0..len {
                let left = len - s;
                let mut gram = |n: usize| {
                    let gram = window & MASKS.get(n).copied().unwrap_or(u64::MAX);
                    // Distinct n-grams give distinct products (xor and an odd multiplier are
                    // bijections; no n-gram has a zero byte, so lengths never collide); the top
                    // bits of a multiplicative hash are its well-mixed ones.
                    let index = ((gram ^ seed).wrapping_mul(K) >> shift) as u32;
                    emit(index, t.orig_start, t.orig_end);
                };
                // Two loops, so that the common one has constant bounds and unrolls.
                if left >= hi {
                    (lo..hi + 1).for_each(&mut gram);
                } else {
                    (lo..left + 1).for_each(&mut gram);
                }
                let next = bytes.get(s + 8).copied().unwrap_or(0);
                window = window >> 8 | u64::from(next) << 56;
            }
        }
    }
}

/// `MASKS[n]` keeps the low `n` bytes of a `u64`.
const MASKS: [u64; 9] = [
    0,
    0xff,
    0xffff,
    0xff_ffff,
    0xffff_ffff,
    0xff_ffff_ffff,
    0xffff_ffff_ffff,
    0xff_ffff_ffff_ffff,
    u64::MAX,
];

/// The 8 bytes at `at` as a little-endian `u64`, zeros past the end.
#[inline(always)]
fn load8(bytes: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    match bytes.get(at..at + 8) {
        Some(b) => a.copy_from_slice(b),
        None => {
            let rest = bytes.get(at..).unwrap_or_default();
            a[..rest.len()].copy_from_slice(rest);
        }
    }
    u64::from_le_bytes(a)
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Per-thread buffers: the tokens, and a bitset over the `2^bits` buckets that says which
/// indices the current namespace has already produced (all zero between calls).
#[derive(Debug, Default)]
struct Scratch {
    tokens: Tokens,
    seen: Vec<u64>,
    /// The indices found, in order; a buffer as long as the longest text needed.
    found: Vec<u32>,
}

/// Buffers beyond this many bytes are given back after a call instead of kept by the thread (a
/// 300-byte signal needs a few KiB; a rare 1 MB email should not pin megabytes).
const KEEP_BYTES: usize = 1 << 18;

impl Scratch {
    fn trim(&mut self) {
        if self.tokens.folded.capacity() > KEEP_BYTES {
            self.tokens.folded = Vec::new();
        }
        if self.tokens.tokens.capacity() * std::mem::size_of::<crate::text::Token>() > KEEP_BYTES {
            self.tokens.tokens = Vec::new();
        }
        if self.found.capacity() * 4 > KEEP_BYTES {
            self.found = Vec::new();
        }
    }
}

/// Deduplicates the indices of one namespace into `out`: a bit test-and-set per feature, and a
/// write that only advances for a new index, so there is no branch on whether it was new.
struct Sink<'a> {
    seen: &'a mut [u64],
    /// Sized by the caller to hold every feature a text can produce.
    out: &'a mut [u32],
    filled: usize,
    namespace_start: usize,
}

impl Sink<'_> {
    #[inline(always)]
    fn push(&mut self, index: u32) {
        let (word, bit) = ((index >> 6) as usize, 1u64 << (index & 63));
        let (Some(w), Some(o)) = (self.seen.get_mut(word), self.out.get_mut(self.filled)) else {
            // Only if `out` were too short or `index` too large, which the sizes rule out.
            return;
        };
        *o = index;
        self.filled += usize::from(*w & bit == 0);
        *w |= bit;
    }

    /// Ends the current namespace: clears its bits and returns how many indices it had.
    fn end_namespace(&mut self) -> usize {
        let produced = self
            .out
            .get(self.namespace_start..self.filled)
            .unwrap_or_default();
        for index in produced {
            if let Some(w) = self.seen.get_mut((index >> 6) as usize) {
                *w = 0;
            }
        }
        let n = self.filled - self.namespace_start;
        self.namespace_start = self.filled;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn featurizer() -> Featurizer {
        Featurizer::new(FeatureConfig::default()).expect("the default config is valid")
    }

    #[test]
    fn config_ranges_are_checked() {
        let bad = [
            FeatureConfig {
                bits: 9,
                ..FeatureConfig::default()
            },
            FeatureConfig {
                bits: 25,
                ..FeatureConfig::default()
            },
            FeatureConfig {
                char_min: 6,
                char_max: 5,
                ..FeatureConfig::default()
            },
            FeatureConfig {
                char_max: 9,
                ..FeatureConfig::default()
            },
        ];
        for c in bad {
            assert!(Featurizer::new(c).is_err(), "{c:?} should be refused");
        }
        let no_chars = FeatureConfig {
            char_min: 0,
            char_max: 0,
            ..FeatureConfig::default()
        };
        assert!(Featurizer::new(no_chars).is_ok());
    }

    #[test]
    fn hash_indices_are_stable() {
        // Computed once with this implementation. If this test fails, every trained model's
        // indices have moved: bump the model format version instead of editing these numbers.
        let f = featurizer();
        let word = |text: &str, word: &str| {
            f.explain(text)
                .into_iter()
                .find(|s| &text[s.start..s.end] == word)
                .map(|s| s.index)
        };
        let got = [
            word("betaling", "betaling"),
            word("niet betaald", "betaald"),
            word("Teruggestort", "Teruggestort"),
            Some(f.bias_index()),
        ];
        assert_eq!(got, [Some(91418), Some(13532), Some(213276), Some(98889)]);
        let fx = f.featurize("", "email", &["rule:theme:payment"]);
        assert_eq!(
            fx.indices(),
            [52261, 137480, 98889],
            "channel, rule hit, bias"
        );
        // A smaller table keeps the top bits of the same hash.
        let small = Featurizer::new(FeatureConfig {
            bits: 16,
            ..FeatureConfig::default()
        })
        .expect("valid");
        assert_eq!(
            small.explain("Betaling").first().map(|s| s.index),
            got[0].map(|i| i >> 2)
        );
    }

    #[test]
    fn ngrams_cover_words_bigrams_and_characters() {
        let f = featurizer();
        // "<ab>": 3-grams "<ab", "ab>", 4-gram "<ab>"; "<cd>" the same; 1 bigram; 2 words.
        let spans = f.explain("ab cd");
        assert_eq!(spans.len(), 2 + 1 + 3 + 3);
        // A word of n letters has n 3-grams, n-1 4-grams and n-2 5-grams.
        let spans = f.explain("betaling");
        assert_eq!(spans.len(), 1 + 8 + 7 + 6);
        // No bigram across a clause boundary.
        assert_eq!(f.explain("ab. cd").len(), 2 + 3 + 3);
        // Configurable off.
        let plain = Featurizer::new(FeatureConfig {
            char_max: 0,
            bigrams: false,
            ..FeatureConfig::default()
        })
        .expect("valid");
        assert_eq!(plain.explain("ab cd ef").len(), 3);
    }

    #[test]
    fn shared_character_ngrams_link_inflections() {
        let f = featurizer();
        let grams = |w: &str| -> std::collections::BTreeSet<u32> {
            f.explain(w).iter().skip(1).map(|s| s.index).collect()
        };
        let a = grams("teruggestort");
        let b = grams("terugstorting");
        let c = grams("vriendelijk");
        let shared = a.intersection(&b).count();
        assert!(
            shared >= 8,
            "teruggestort/terugstorting share {shared} n-grams"
        );
        assert!(
            a.intersection(&c).count() <= 1,
            "unrelated words share (almost) nothing"
        );
    }

    #[test]
    fn negation_marks_words_and_bigrams_but_not_character_ngrams() {
        let f = featurizer();
        let plain = f.explain("vriendelijk");
        let negated = f.explain("niet vriendelijk");
        let word = plain[0].index;
        assert!(
            !negated.iter().any(|s| s.index == word),
            "`vriendelijk` after `niet` must not produce the plain word feature"
        );
        let plain_chars: Vec<u32> = plain[1..].iter().map(|s| s.index).collect();
        let shared = negated
            .iter()
            .filter(|s| plain_chars.contains(&s.index))
            .count();
        assert_eq!(
            shared,
            plain_chars.len(),
            "the word's n-grams are the same, negated or not"
        );
        let bigram = |text: &str| f.explain(text).get(2).map(|s| s.index);
        assert_ne!(bigram("niet vriendelijk"), bigram("heel vriendelijk"));
    }

    #[test]
    fn values_are_normalised_per_namespace() {
        let f = featurizer();
        let fx = f.featurize(
            "de brief de brief de brief",
            "email",
            &["cue:x", "cue:x", ""],
        );
        let total: f32 = fx.values().iter().map(|v| v * v).sum();
        // Words, bigrams, characters: 1 each; channel, one extra (deduplicated), bias: 1 each.
        assert!((total - 6.0).abs() < 1e-4, "squared norm {total}");
        let empty = f.featurize("", "", NO_EXTRAS);
        assert_eq!(empty.len(), 2, "channel and bias only");
        assert!(empty.indices().contains(&f.bias_index()));
    }

    #[test]
    fn featurizing_is_deterministic_and_case_and_accent_blind() {
        let f = featurizer();
        let a = f.featurize("Het Café was DICHT", "Email", NO_EXTRAS);
        let b = f.featurize("het cafe was dicht", "email", NO_EXTRAS);
        assert_eq!(a, b);
        assert_eq!(a, f.featurize("Het Café was DICHT", "Email", NO_EXTRAS));
    }

    #[test]
    fn explain_spans_point_at_the_words() {
        let f = featurizer();
        let text = "Mijn geld is nog níét teruggestort!";
        for s in f.explain(text) {
            let word = &text[s.start..s.end];
            assert!(!word.is_empty() && !word.contains('!'), "span {word:?}");
        }
        let spans = f.explain(text);
        let fx = f.featurize(text, "email", NO_EXTRAS);
        for s in &spans {
            assert!(
                fx.indices().contains(&s.index),
                "every explained index is a feature"
            );
        }
        let last = spans.last().map(|s| &text[s.start..s.end]);
        assert_eq!(last, Some("teruggestort"));
        let bigram = spans
            .iter()
            .map(|s| &text[s.start..s.end])
            .find(|w| w.contains(' '));
        assert_eq!(bigram, Some("Mijn geld"));
    }

    #[test]
    fn large_and_hostile_inputs_do_not_panic() {
        let f = featurizer();
        let big = "klant ".repeat(50_000) + &"\u{1f621}".repeat(1000) + "\u{0}\u{fffd}";
        let fx = f.featurize(&big, "\u{0}", &["\u{0}"]);
        assert!(!fx.is_empty());
        let small = f.featurize("ok", "email", NO_EXTRAS);
        assert!(
            !small.is_empty(),
            "the scratch table recovers after a large text"
        );
    }
}
