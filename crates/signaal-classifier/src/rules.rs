//! The rule engine: every phrase and cue of the taxonomy compiled into one Aho-Corasick automaton
//! over folded text, one pass per signal.
//!
//! After the pass, matches that are not on word boundaries are dropped and overlaps are resolved
//! leftmost-longest (so "luisterde niet" is one phrase, not a phrase plus a negation). Then, in
//! text order: a negation word up to three words before a phrase, in the same clause, negates it —
//! a negated complaint phrase ("niet onvriendelijk") is dropped, a negated praise phrase ("niet
//! vriendelijk") becomes a complaint of the same theme. Sarcasm markers turn praise into blame.
//!
//! Subject phrases ride in the same automaton and the same pass, but apart: like pair terms and
//! concept words they take no part in the themes' overlap resolution (so "de app" as a subject
//! never hides the theme phrase "app"), and they resolve their own overlaps leftmost-longest
//! ("parkeer vergunning" is the parking permit, not also a permit). Negation does not remove a
//! subject: "geen DigiD" is still about DigiD. A subject phrase's `*` continues over letters only,
//! so its evidence never carries a number written onto it.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use signaal_core::{
    Cause, CauseSide, Classification, Evidence, Kind, Subject, SubjectTag, Theme, ThemeTag,
};

use crate::fold::Folded;
use crate::taxonomy::{Taxonomy, DEFAULT_TAXONOMY};

#[derive(Debug, thiserror::Error)]
pub enum TaxonomyError {
    #[error("taxonomy is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("`extends = \"{0}\"` is not known (only \"default\")")]
    Extends(String),
    #[error("`remove_themes` names `{0}`, which the taxonomy does not have")]
    UnknownTheme(String),
    #[error("theme `{0}` has no phrases")]
    Empty(String),
    #[error("new theme `{theme}` needs `{field}`")]
    Missing { theme: String, field: &'static str },
    #[error("taxonomy has no themes")]
    NoThemes,
    #[error("theme `{theme}` combines concept `{concept}`, which `[concepts]` does not define (or defines empty)")]
    UnknownConcept { theme: String, concept: String },
    #[error("theme `{0}` has an empty `when` group")]
    EmptyGroup(String),
    #[error("`remove_subjects` names `{0}`, which the taxonomy does not have")]
    UnknownSubject(String),
    #[error("subject `{0}` has no phrases")]
    SubjectEmpty(String),
    #[error("new subject `{subject}` needs `{field}`")]
    SubjectMissing {
        subject: String,
        field: &'static str,
    },
    #[error("subject id `{0}` is not snake_case (lowercase ASCII letters, digits and `_`, starting with a letter)")]
    SubjectId(String),
    #[error("{list}: phrase {phrase:?} is empty after folding")]
    EmptyPhrase { list: String, phrase: String },
    #[error("could not build the phrase automaton: {0}")]
    Automaton(#[from] aho_corasick::BuildError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Polarity {
    Negative,
    Positive,
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cat {
    Theme(u16, Polarity),
    Negation,
    ClauseBreak,
    Ignore,
    PositiveCue,
    NegativeCue,
    Question,
    Suggestion,
    Sarcasm,
    Escalation(u16),
    Lang(u16),
    /// A term of one or more proximity pairs.
    Near(u16),
    /// A word of a concept (`[concepts]`).
    Concept(u16),
    /// A phrase of a subject (`[subjects]`).
    Subject(u16),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    cat: Cat,
    /// The last word may continue (`wacht*`).
    prefix: bool,
    /// First and last characters are word characters: boundaries are checked there.
    word_start: bool,
    word_end: bool,
}

/// A compiled taxonomy. Build once, share across threads (`Send + Sync`).
pub struct Classifier {
    version: String,
    themes: Vec<Theme>,
    subjects: Vec<Subject>,
    automaton: AhoCorasick,
    /// Per automaton pattern: what it means (a phrase may serve several lists).
    entries: Vec<Vec<Entry>>,
    /// Per automaton pattern: what its entries share, so a match is checked without a walk over
    /// them.
    shapes: Vec<Shape>,
    escalations: Vec<String>,
    languages: Vec<String>,
    /// (theme, term a, term b) proximity pairs.
    pairs: Vec<(usize, u16, u16)>,
    /// Concept groups: a theme's problem (or praise) when all its concepts share a sentence.
    groups: Vec<Group>,
    /// `[concepts]` names, by concept id.
    concept_names: Vec<String>,
}

struct Group {
    theme: usize,
    praise: bool,
    concepts: Vec<u16>,
}

/// Where one term (a proximity-pair term or a concept word) occurred in the folded text.
#[derive(Debug, Clone, Copy)]
struct Term {
    id: u16,
    start: usize,
    end: usize,
}

/// What every entry of one automaton pattern shares (the phrase's boundaries), and whether any
/// entry, or any entry but a subject's, takes continuations (`*`).
#[derive(Debug, Clone, Copy, Default)]
struct Shape {
    word_start: bool,
    word_end: bool,
    prefix: bool,
    prefix_other: bool,
}

impl Shape {
    fn of(entries: &[Entry]) -> Shape {
        Shape {
            word_start: entries.first().is_some_and(|e| e.word_start),
            word_end: entries.first().is_some_and(|e| e.word_end),
            prefix: entries.iter().any(|e| e.prefix),
            // A subject phrase's `*` decides nothing for the other entries of the phrase.
            prefix_other: entries
                .iter()
                .any(|e| e.prefix && !matches!(e.cat, Cat::Subject(_))),
        }
    }
}

/// Where one subject phrase occurred in the folded text.
#[derive(Debug, Clone, Copy)]
struct Mention {
    subject: u16,
    start: usize,
    /// The end of the evidence: the phrase, and for a `*` phrase the letters that continue it.
    end: usize,
    /// The end of the phrase as written: of two mentions of one span, the longer phrase is the
    /// more specific ("incassobureau*" over "incasso*" on "incassobureau").
    phrase_end: usize,
}

/// The terms found in one text: pair terms, concept words and subject phrases, apart.
struct Terms {
    near: Vec<Term>,
    concepts: Vec<Term>,
    subjects: Vec<Mention>,
}

/// How many words may stand between the two terms of a proximity pair.
const NEAR_WORDS: usize = 5;

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

struct Builder {
    phrases: Vec<String>,
    entries: Vec<Vec<Entry>>,
    index: std::collections::HashMap<String, usize>,
}

impl Builder {
    fn add(&mut self, list: &str, phrase: &str, cat: Cat) -> Result<(), TaxonomyError> {
        let (body, prefix) = match phrase.trim_end().strip_suffix('*') {
            Some(b) => (b.trim(), true),
            None => (phrase, false),
        };
        // Leading and trailing spaces are kept: " de " matches the word between spaces only.
        let folded = Folded::new(body).text;
        let folded = if folded.trim().is_empty() {
            String::new()
        } else {
            folded
        };
        if folded.is_empty() {
            return Err(TaxonomyError::EmptyPhrase {
                list: list.to_string(),
                phrase: phrase.to_string(),
            });
        }
        let entry = Entry {
            cat,
            prefix,
            word_start: folded.chars().next().is_some_and(is_word),
            word_end: folded.chars().next_back().is_some_and(is_word),
        };
        let at = match self.index.get(&folded) {
            Some(i) => *i,
            None => {
                self.phrases.push(folded.clone());
                self.entries.push(Vec::new());
                self.index.insert(folded, self.phrases.len() - 1);
                self.phrases.len() - 1
            }
        };
        if !self.entries[at]
            .iter()
            .any(|e| e.cat == cat && e.prefix == prefix)
        {
            self.entries[at].push(entry);
        }
        Ok(())
    }
}

#[derive(Default)]
struct Interner {
    terms: Vec<String>,
}

impl Interner {
    fn intern(&mut self, term: &str) -> u16 {
        let at = match self.terms.iter().position(|t| t == term) {
            Some(i) => i,
            None => {
                self.terms.push(term.to_string());
                self.terms.len() - 1
            }
        };
        u16::try_from(at).unwrap_or(u16::MAX)
    }
}

/// One phrase occurrence that survived boundary checks.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    pattern: usize,
    /// The phrase ended on a word boundary (otherwise only `*` entries apply).
    exact: bool,
}

impl Classifier {
    pub fn default_taxonomy() -> Result<Classifier, TaxonomyError> {
        Classifier::from_toml(DEFAULT_TAXONOMY)
    }

    pub fn from_toml(text: &str) -> Result<Classifier, TaxonomyError> {
        Classifier::new(Taxonomy::parse(text)?)
    }

    pub fn new(tax: Taxonomy) -> Result<Classifier, TaxonomyError> {
        let mut b = Builder {
            phrases: Vec::new(),
            entries: Vec::new(),
            index: Default::default(),
        };
        let mut themes = Vec::with_capacity(tax.themes.len());
        let mut near_terms = Interner::default();
        let mut pairs = Vec::new();
        let concept_names: Vec<&String> = tax.concepts.keys().collect();
        let concept_id = |name: &String| {
            let at = concept_names.iter().position(|n| *n == name).unwrap_or(0);
            u16::try_from(at).unwrap_or(u16::MAX)
        };
        let mut groups = Vec::new();
        for (i, t) in tax.themes.iter().enumerate() {
            let i = u16::try_from(i).unwrap_or(u16::MAX);
            for p in &t.patterns {
                b.add(&t.id, p, Cat::Theme(i, Polarity::Negative))?;
            }
            for p in &t.positive {
                b.add(&t.id, p, Cat::Theme(i, Polarity::Positive))?;
            }
            for p in &t.topic {
                b.add(&t.id, p, Cat::Theme(i, Polarity::Neutral))?;
            }
            themes.push(Theme {
                id: t.id.clone(),
                label: t.label.clone(),
                cause: t.cause,
            });
            for [a, other] in &t.near {
                let ia = near_terms.intern(a);
                let ib = near_terms.intern(other);
                pairs.push((usize::from(i), ia, ib));
            }
            for (list, praise) in [(&t.when, false), (&t.when_praised, true)] {
                for group in list {
                    groups.push(Group {
                        theme: usize::from(i),
                        praise,
                        concepts: group.iter().map(&concept_id).collect(),
                    });
                }
            }
        }
        let lists: [(&str, &Vec<String>, Cat); 8] = [
            ("negation", &tax.negation, Cat::Negation),
            ("clause_break", &tax.clause_break, Cat::ClauseBreak),
            ("ignore", &tax.ignore, Cat::Ignore),
            ("positive", &tax.positive, Cat::PositiveCue),
            ("negative", &tax.negative, Cat::NegativeCue),
            ("question", &tax.question, Cat::Question),
            ("suggestion", &tax.suggestion, Cat::Suggestion),
            ("sarcasm", &tax.sarcasm, Cat::Sarcasm),
        ];
        for (name, list, cat) in lists {
            for p in list {
                b.add(name, p, cat)?;
            }
        }
        let mut subjects = Vec::with_capacity(tax.subjects.len());
        for (i, s) in tax.subjects.iter().enumerate() {
            let cat = Cat::Subject(u16::try_from(i).unwrap_or(u16::MAX));
            for list in s.phrases.values() {
                for p in list {
                    b.add(&s.id, p, cat)?;
                }
            }
            subjects.push(Subject {
                id: s.id.clone(),
                label: s.label.clone(),
                kind: s.kind,
            });
        }
        for (i, term) in near_terms.terms.iter().enumerate() {
            b.add(
                "near",
                term,
                Cat::Near(u16::try_from(i).unwrap_or(u16::MAX)),
            )?;
        }
        for (i, (name, words)) in tax.concepts.iter().enumerate() {
            let cat = Cat::Concept(u16::try_from(i).unwrap_or(u16::MAX));
            for w in words {
                b.add(name, w, cat)?;
            }
        }
        let mut escalations = Vec::new();
        for (i, (name, list)) in tax.escalation.iter().enumerate() {
            escalations.push(name.clone());
            for p in list {
                b.add(
                    name,
                    p,
                    Cat::Escalation(u16::try_from(i).unwrap_or(u16::MAX)),
                )?;
            }
        }
        let mut languages = Vec::new();
        for (i, (code, list)) in tax.language.iter().enumerate() {
            languages.push(code.clone());
            for p in list {
                b.add(code, p, Cat::Lang(u16::try_from(i).unwrap_or(u16::MAX)))?;
            }
        }
        // A full DFA: a few hundred kilobytes for the default taxonomy, and the fastest
        // overlapping search (one table lookup per byte).
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&b.phrases)?;
        let concept_names = tax.concepts.keys().cloned().collect();
        Ok(Classifier {
            concept_names,
            pairs,
            groups,
            version: tax.version,
            themes,
            subjects,
            automaton,
            shapes: b.entries.iter().map(|e| Shape::of(e)).collect(),
            entries: b.entries,
            escalations,
            languages,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn themes(&self) -> impl Iterator<Item = &Theme> {
        self.themes.iter()
    }

    /// The subjects a classification can name, in taxonomy order.
    pub fn subjects(&self) -> impl Iterator<Item = &Subject> {
        self.subjects.iter()
    }

    /// Every phrase occurrence on word boundaries, overlaps resolved leftmost-longest; and the
    /// language word counts over all occurrences (stop words inside phrases count too).
    fn hits(&self, text: &str, lang: &mut [u32], terms: &mut Terms) -> Vec<Hit> {
        let mut all: Vec<Hit> = Vec::with_capacity(32);
        for m in self.automaton.find_overlapping_iter(text) {
            let pattern = m.pattern().as_usize();
            let (Some(entries), Some(shape)) =
                (self.entries.get(pattern), self.shapes.get(pattern))
            else {
                continue;
            };
            let (start, end) = (m.start(), m.end());
            if shape.word_start && text[..start].chars().next_back().is_some_and(is_word) {
                continue;
            }
            let mut prefix_end = end;
            if shape.prefix {
                prefix_end += text[end..]
                    .chars()
                    .take_while(|c| is_word(*c))
                    .map(char::len_utf8)
                    .sum::<usize>();
            }
            let exact_ok = !shape.word_end || !text[end..].chars().next().is_some_and(is_word);
            if !exact_ok && prefix_end == end {
                continue;
            }
            let phrase_end = end;
            // Without a prefix entry the exact form must end on a boundary.
            let end = if exact_ok { end } else { prefix_end };
            let mut only_counted = true;
            for e in entries {
                if !exact_ok && !e.prefix {
                    // "caller" is not the pair term or concept word "call".
                    if shape.prefix_other
                        && !matches!(
                            e.cat,
                            Cat::Lang(_) | Cat::Near(_) | Cat::Concept(_) | Cat::Subject(_)
                        )
                    {
                        only_counted = false;
                    }
                    continue;
                }
                match e.cat {
                    Cat::Lang(i) => lang[usize::from(i)] += 1,
                    Cat::Near(id) => terms.near.push(Term { id, start, end }),
                    Cat::Concept(id) => terms.concepts.push(Term { id, start, end }),
                    Cat::Subject(subject) => {
                        // Letters only after a `*`: "polisnummer12345678" shows "polisnummer".
                        let end = if exact_ok {
                            phrase_end
                        } else {
                            phrase_end
                                + text[phrase_end..]
                                    .chars()
                                    .take_while(|c| c.is_alphabetic())
                                    .map(char::len_utf8)
                                    .sum::<usize>()
                        };
                        terms.subjects.push(Mention {
                            subject,
                            start,
                            end,
                            phrase_end,
                        });
                    }
                    _ => only_counted = false,
                }
            }
            // Stop words, pair terms, concept words and subject phrases only count; they take no part
            // in the themes' overlap resolution.
            if !only_counted {
                all.push(Hit {
                    start,
                    end,
                    pattern,
                    exact: exact_ok,
                });
            }
        }
        all.sort_unstable_by(|a, b| {
            (a.start.cmp(&b.start))
                .then(b.end.cmp(&a.end))
                .then(a.pattern.cmp(&b.pattern))
        });
        // In place: `retain` visits in order.
        let mut last_end = 0;
        all.retain(|h| {
            let keep = h.start >= last_end;
            if keep {
                last_end = h.end;
            }
            keep
        });
        let chosen = all;
        // Concept words and subject phrases inside a set phrase ("met vriendelijke groet",
        // "Geachte heer/mevrouw", "in aansluiting op") say nothing about the signal.
        if !terms.concepts.is_empty() || !terms.subjects.is_empty() {
            let ignored: Vec<(usize, usize)> = chosen
                .iter()
                .filter(|h| self.entries[h.pattern].iter().any(|e| e.cat == Cat::Ignore))
                .map(|h| (h.start, h.end))
                .collect();
            if !ignored.is_empty() {
                let outside = |start: usize, end: usize| {
                    !ignored.iter().any(|(s, e)| start >= *s && end <= *e)
                };
                terms.concepts.retain(|t| outside(t.start, t.end));
                terms.subjects.retain(|m| outside(m.start, m.end));
            }
        }
        chosen
    }

    /// Whether a negation that ended at `neg_end` reaches a phrase starting at `start`: at most
    /// three words between, and no clause boundary.
    fn negation_reaches(text: &str, neg_end: usize, start: usize, broke: bool) -> bool {
        if broke || start < neg_end {
            return false;
        }
        let gap = &text[neg_end..start];
        !gap.contains(['.', ',', ';', ':', '!', '?', '\n']) && gap.split_whitespace().count() <= 3
    }

    /// Concept groups: a theme that no phrase found yet is the problem (or praise) when every
    /// concept of one of its groups has a word in the same sentence. Praise groups do not fire on
    /// negated words ("niet behulpzaam"). The evidence is each concept's first word there.
    fn concept_groups(
        &self,
        original: &str,
        folded: &Folded,
        words: &[Term],
        negations: &[usize],
        evidence: &mut [Vec<Evidence>],
        counts: &mut [(u32, u32)],
    ) {
        let text = folded.text.as_str();
        // Which concepts occur at all: most groups fail here, before any sentence work.
        let bit = |id: u16| 1u128.checked_shl(u32::from(id)).unwrap_or(0);
        let present = words.iter().fold(0u128, |m, w| m | bit(w.id));
        let mut breaks: Vec<usize> = Vec::new();
        let sentence = |breaks: &[usize], at: usize| breaks.partition_point(|b| *b < at);
        let negated = |t: &Term| {
            negations
                .iter()
                .any(|n| Self::negation_reaches(text, *n, t.start, false))
        };
        let mut found: Vec<Term> = Vec::new();
        for g in &self.groups {
            if !evidence[g.theme].is_empty() {
                continue;
            }
            let Some((&first, rest)) = g.concepts.split_first() else {
                continue;
            };
            // (Concepts beyond the 128th have no bit and are always looked for.)
            if g.concepts
                .iter()
                .any(|c| bit(*c) != 0 && present & bit(*c) == 0)
            {
                continue;
            }
            if breaks.is_empty() {
                breaks.extend(
                    text.bytes()
                        .enumerate()
                        .filter(|(_, b)| matches!(b, b'.' | b'!' | b'?' | b'\n'))
                        .map(|(i, _)| i),
                );
                breaks.push(usize::MAX);
            }
            let hit = words.iter().filter(|w| w.id == first).find_map(|a| {
                let s = sentence(&breaks, a.start);
                found.clear();
                found.push(*a);
                for c in rest {
                    // A concept named twice needs two different words.
                    let w = words.iter().find(|w| {
                        w.id == *c
                            && sentence(&breaks, w.start) == s
                            && !found.iter().any(|f| f.start == w.start)
                    })?;
                    found.push(*w);
                }
                (!g.praise || !found.iter().any(negated)).then_some(())
            });
            if hit.is_none() {
                continue;
            }
            if g.praise {
                counts[g.theme].1 += 1;
            } else {
                counts[g.theme].0 += 1;
            }
            // Every word has its own start (a group never uses one word twice).
            found.sort_by_key(|w| w.start);
            for w in &found {
                let (s, end) = (
                    folded.original(w.start),
                    folded.original_end(original, w.end),
                );
                evidence[g.theme].push(Evidence::words(s, end, original[s..end].to_string()));
            }
        }
    }

    /// Subject mentions to tags: overlaps resolved leftmost-longest, then grouped by subject in
    /// taxonomy order, each subject's evidence in text order.
    fn subject_tags(
        &self,
        original: &str,
        folded: &Folded,
        mentions: &mut Vec<Mention>,
    ) -> Vec<SubjectTag> {
        if mentions.is_empty() {
            return Vec::new();
        }
        mentions.sort_unstable_by(|a, b| {
            (a.start.cmp(&b.start))
                .then(b.end.cmp(&a.end))
                .then(b.phrase_end.cmp(&a.phrase_end))
                .then(a.subject.cmp(&b.subject))
        });
        // In place, as for theme phrases: `retain` visits in order.
        let mut last_end = 0;
        mentions.retain(|m| {
            let keep = m.start >= last_end;
            if keep {
                last_end = m.end;
            }
            keep
        });
        // Stable: text order within a subject.
        mentions.sort_by_key(|m| m.subject);
        let mut tags: Vec<SubjectTag> = Vec::new();
        let mut current = None;
        for m in mentions.iter() {
            let Some(subject) = self.subjects.get(usize::from(m.subject)) else {
                continue;
            };
            let (s, e) = (
                folded.original(m.start),
                folded.original_end(original, m.end),
            );
            let evidence = Evidence::words(s, e, original[s..e].to_string());
            match tags.last_mut() {
                Some(tag) if current == Some(m.subject) => tag.evidence.push(evidence),
                _ => {
                    current = Some(m.subject);
                    tags.push(SubjectTag {
                        id: subject.id.clone(),
                        evidence: vec![evidence],
                    });
                }
            }
        }
        tags
    }

    pub fn classify(&self, original: &str) -> Classification {
        self.classify_with_concepts(original).0
    }

    /// [`Classifier::classify`], and the names of the `[concepts]` that have a word in the text
    /// (outside set phrases), sorted, each once: the learned layer takes them as features, and
    /// the staff-conduct check asks for `person`. One pass finds both.
    pub fn classify_with_concepts(&self, original: &str) -> (Classification, Vec<&str>) {
        let mut folded = Folded::new(original);
        crate::privacy::mask_placeholders(&mut folded.text);
        let text = folded.text.as_str();
        let mut lang = vec![0u32; self.languages.len()];
        let mut terms = Terms {
            near: Vec::new(),
            concepts: Vec::with_capacity(16),
            subjects: Vec::new(),
        };
        let hits = self.hits(text, &mut lang, &mut terms);
        let subjects = self.subject_tags(original, &folded, &mut terms.subjects);
        let mut negations: Vec<usize> = Vec::new();

        let mut evidence: Vec<Vec<Evidence>> = vec![Vec::new(); self.themes.len()];
        let mut counts = vec![(0u32, 0u32); self.themes.len()]; // (blame, praise) per theme
        let (mut pos_cues, mut neg_cues, mut question, mut suggestion, mut sarcasm) =
            (0u32, 0u32, false, false, false);
        let mut escalation = vec![false; self.escalations.len()];
        let mut negation: Option<usize> = None;
        let mut broke = false;

        for h in &hits {
            let negated = negation.is_some_and(|n| Self::negation_reaches(text, n, h.start, broke));
            let entries = &self.entries[h.pattern];
            let mut this_is_negation = false;
            for e in entries {
                if !h.exact && !e.prefix {
                    // Only a `*` entry of this phrase matches the longer word.
                    continue;
                }
                match e.cat {
                    Cat::Theme(i, pol) => {
                        let i = usize::from(i);
                        let pol = match (pol, negated) {
                            (Polarity::Negative, true) => continue,
                            (Polarity::Positive, true) => Polarity::Negative,
                            (p, _) => p,
                        };
                        match pol {
                            Polarity::Negative => counts[i].0 += 1,
                            Polarity::Positive => counts[i].1 += 1,
                            Polarity::Neutral => {}
                        }
                        let (s, end) = (
                            folded.original(h.start),
                            folded.original_end(original, h.end),
                        );
                        if !evidence[i].iter().any(|ev| ev.start == s) {
                            evidence[i].push(Evidence::words(s, end, original[s..end].to_string()));
                        }
                    }
                    Cat::Negation => this_is_negation = true,
                    Cat::ClauseBreak => broke = true,
                    Cat::Ignore => {}
                    Cat::PositiveCue if negated => neg_cues += 1,
                    Cat::PositiveCue => pos_cues += 1,
                    Cat::NegativeCue if negated => {}
                    Cat::NegativeCue => neg_cues += 1,
                    Cat::Question => question = true,
                    Cat::Suggestion => suggestion = true,
                    Cat::Sarcasm => sarcasm = true,
                    Cat::Escalation(i) if !negated => escalation[usize::from(i)] = true,
                    Cat::Escalation(_) => {}
                    Cat::Lang(_) | Cat::Near(_) | Cat::Concept(_) | Cat::Subject(_) => {}
                }
            }
            if this_is_negation {
                negations.push(h.end);
                negation = Some(h.end);
                broke = false;
            }
        }

        // Proximity pairs: both terms within NEAR_WORDS words, in one sentence.
        let near = &terms.near;
        let pairs = if near.len() < 2 {
            &[][..]
        } else {
            &self.pairs[..]
        };
        for (theme, ta, tb) in pairs {
            let found = near.iter().filter(|t| t.id == *ta).find_map(|a| {
                near.iter().filter(|t| t.id == *tb).find_map(|b| {
                    let (first, second) = if a.start <= b.start { (a, b) } else { (b, a) };
                    if second.start < first.end {
                        return None;
                    }
                    let gap = &text[first.end..second.start];
                    let words = gap.split_whitespace().count();
                    (words <= NEAR_WORDS && !gap.contains(['.', '!', '?']))
                        .then_some((first.start, second.end))
                })
            });
            if let Some((s, e)) = found {
                if evidence[*theme].is_empty() {
                    counts[*theme].0 += 1;
                    let (s, end) = (folded.original(s), folded.original_end(original, e));
                    evidence[*theme].push(Evidence::words(s, end, original[s..end].to_string()));
                }
            }
        }

        if !terms.concepts.is_empty() {
            self.concept_groups(
                original,
                &folded,
                &terms.concepts,
                &negations,
                &mut evidence,
                &mut counts,
            );
        }

        let mut themes = Vec::new();
        let (mut human, mut system) = (false, false);
        let (mut blame, mut praise) = (neg_cues, pos_cues);
        for (i, ev) in evidence.into_iter().enumerate() {
            if ev.is_empty() {
                continue;
            }
            let (b, p) = counts[i];
            blame += b;
            praise += p;
            match self.themes[i].cause {
                CauseSide::Human => human = true,
                CauseSide::System => system = true,
            }
            let n = i32::try_from(ev.len()).unwrap_or(i32::MAX);
            themes.push(ThemeTag {
                id: self.themes[i].id.clone(),
                score: 1.0 - 0.5f32.powi(n),
                evidence: ev,
            });
        }
        if sarcasm {
            blame += praise;
            praise = 0;
        }
        let cause = Cause::of_sides(human, system);
        let question = question || original.contains('?');
        let kind = if suggestion && neg_cues == 0 {
            Kind::Suggestion
        } else if praise > blame {
            Kind::Compliment
        } else if blame > 0 {
            Kind::Complaint
        } else if question {
            // Nothing praised or blamed, and something asked.
            Kind::Question
        } else {
            // A statement with no praise: at a complaint desk the prior is a complaint.
            Kind::Complaint
        };
        let (p, b) = (praise as f32, blame as f32);
        let sentiment = ((p - b) / (p + b + 1.0)).clamp(-1.0, 1.0);
        let lang = match lang.iter().enumerate().max_by_key(|(_, n)| **n) {
            Some((i, n)) if *n > 0 => self.languages[i].clone(),
            _ => "und".to_string(),
        };
        let mut ids: Vec<u16> = terms.concepts.iter().map(|t| t.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let concepts = ids
            .iter()
            .filter_map(|id| self.concept_names.get(usize::from(*id)).map(String::as_str))
            .collect();
        let classification = Classification {
            themes,
            subjects,
            cause,
            kind,
            lang,
            sentiment,
            escalation: self
                .escalations
                .iter()
                .zip(escalation)
                .filter(|(_, on)| *on)
                .map(|(n, _)| n.clone())
                .collect(),
            impact: None,
        };
        (classification, concepts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classifier() -> Classifier {
        match Classifier::default_taxonomy() {
            Ok(c) => c,
            Err(e) => panic!("default taxonomy must compile: {e}"),
        }
    }

    fn ids(c: &Classification) -> Vec<&str> {
        c.themes.iter().map(|t| t.id.as_str()).collect()
    }

    #[test]
    fn cause_versus_tone_negation_kind_and_language() {
        let c = classifier();
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], Cause, Kind, &str)] = &[
            // Treatment words alone never make staff conduct: the system theme wins.
            ("Schandalige behandeling! Het online formulier werkte niet", &["digital_service"], Cause::System, Kind::Complaint, "nl"),
            ("Zeer klantonvriendelijk: de brief snapt toch niemand.", &["unclear_communication"], Cause::System, Kind::Complaint, "nl"),
            ("Respectloos. Drie keer doorverbonden en nog steeds geen antwoord.", &["response_time", "handoffs"], Cause::System, Kind::Complaint, "nl"),
            ("I was treated like a number: nobody answers the phone.", &["reachability"], Cause::System, Kind::Complaint, "en"),
            // Staff conduct needs described behaviour.
            ("De medewerker snauwde me af en luisterde niet", &["staff_conduct"], Cause::Human, Kind::Complaint, "nl"),
            ("The agent was rude and hung up on me", &["staff_conduct"], Cause::Human, Kind::Complaint, "en"),
            // Negation.
            ("De medewerker was niet onvriendelijk, maar het formulier werkte niet", &["digital_service"], Cause::System, Kind::Complaint, "nl"),
            ("This is not a complaint about your staff, but the letter is confusing", &["unclear_communication"], Cause::System, Kind::Complaint, "en"),
            ("De medewerker was niet vriendelijk en ook niet behulpzaam", &["staff_conduct"], Cause::Human, Kind::Complaint, "nl"),
            // Compliments are compliments of the same theme.
            ("Wat een vriendelijke medewerker, ze dacht echt met mij mee. Bedankt!", &["staff_conduct"], Cause::Human, Kind::Compliment, "nl"),
            ("The agent really listened and was so helpful, thank you!", &["staff_conduct"], Cause::Human, Kind::Compliment, "en"),
            // Sarcasm.
            ("Super service weer, 40 minuten in de wacht 🙄", &["reachability"], Cause::System, Kind::Complaint, "nl"),
            // Mixed.
            ("Na 40 minuten in de wacht snauwde de medewerker me af", &["staff_conduct", "reachability"], Cause::Mixed, Kind::Complaint, "nl"),
            // No theme.
            ("Hoe laat is het loket open?", &[], Cause::Unknown, Kind::Question, "nl"),
            ("Het zou fijn zijn als jullie ook op zaterdag open zijn", &[], Cause::Unknown, Kind::Suggestion, "nl"),
            // Sign-offs are not praise.
            ("Nog steeds geen reactie gekregen.\n\nMet vriendelijke groet,\nJan", &["response_time"], Cause::System, Kind::Complaint, "nl"),
            // Diacritics, case and inflections.
            ("ONBEGRIJPELIJKE brief, en de medewerkster was ongeïnteresseerd", &["staff_conduct", "unclear_communication"], Cause::Mixed, Kind::Complaint, "nl"),
            ("Die foutmeldingen op de website!", &["digital_service"], Cause::System, Kind::Complaint, "nl"),
        ];
        for (text, themes, cause, kind, lang) in cases {
            let got = c.classify(text);
            assert_eq!(ids(&got), *themes, "themes for {text:?}");
            assert_eq!(got.cause, *cause, "cause for {text:?}");
            assert_eq!(got.kind, *kind, "kind for {text:?}");
            assert_eq!(got.lang, *lang, "lang for {text:?}");
        }
    }

    #[test]
    fn evidence_points_at_the_original_words() {
        let text = "Ik stond 40 minuten IN DE   WACHT en de medewerkster was ongeïnteresseerd.";
        let got = classifier().classify(text);
        for tag in &got.themes {
            for ev in &tag.evidence {
                assert_eq!(&text[ev.start..ev.end], ev.text, "evidence of {}", tag.id);
            }
        }
        let words: Vec<&str> = got
            .themes
            .iter()
            .flat_map(|t| t.evidence.iter().map(|e| e.text.as_str()))
            .collect();
        assert_eq!(words, vec!["ongeïnteresseerd", "IN DE   WACHT"]);
    }

    #[test]
    fn phrases_match_on_word_boundaries_only() {
        let c = classifier();
        // "app" inside "appartement", "site" inside "website" is its own word, "pers" in "persoonlijk".
        assert!(ids(&c.classify("Mijn appartement is mooi")).is_empty());
        assert!(c.classify("Een persoonlijk gesprek").escalation.is_empty());
        assert_eq!(
            c.classify("Ik ga naar de pers en de ombudsman").escalation,
            vec!["ombudsman", "press"]
        );
    }

    #[test]
    fn proximity_pairs_need_both_terms_close_and_in_one_sentence() -> Result<(), TaxonomyError> {
        let own = r#"
[[theme]]
id = "reachability"
label = "bereikbaarheid"
cause = "system"
near = [["gebeld", "niemand"]]
"#;
        let c = Classifier::from_toml(own)?;
        let got = c.classify("Ik heb vanochtend gebeld maar er was niemand");
        assert_eq!(ids(&got), vec!["reachability"]);
        assert_eq!(got.themes[0].evidence[0].text, "gebeld maar er was niemand");
        assert_eq!(
            ids(&c.classify("Niemand wist het, dus ik heb gebeld")),
            vec!["reachability"],
            "either order"
        );
        assert!(
            ids(&c.classify("Ik heb gebeld. Niemand anders deed het.")).is_empty(),
            "not across sentences"
        );
        assert!(
            ids(&c.classify("Ik heb gebeld en toen kwam er na heel lang wachten toch niemand"))
                .is_empty(),
            "more than five words apart"
        );
        Ok(())
    }

    #[test]
    fn concept_groups_need_every_concept_in_one_sentence() -> Result<(), TaxonomyError> {
        let own = r#"
[cues]
negation = ["niet", "not"]
ignore = ["met vriendelijke groet"]

[concepts]
object = ["brief", "letter"]
trouble = ["snap*", "understand"]
person = ["medewerker", "agent"]
good = ["vriendelijk*", "helped"]
party = ["gemeente", "werkgever", "verzekeraar"]
says = ["zegt"]

[[theme]]
id = "unclear_communication"
label = "onduidelijk"
cause = "system"
when = [["object", "trouble"]]

[[theme]]
id = "staff_conduct"
label = "bejegening"
cause = "human"
when_praised = [["person", "good"]]

[[theme]]
id = "handoffs"
label = "doorverwijzen"
cause = "system"
when = [["party", "party", "says"]]
"#;
        let c = Classifier::from_toml(own)?;
        let got = c.classify("Die brief van jullie, ik snap er helemaal niks van.");
        assert_eq!(ids(&got), vec!["unclear_communication"]);
        let words: Vec<&str> = got.themes[0]
            .evidence
            .iter()
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(
            words,
            vec!["brief", "snap"],
            "each concept's word is evidence"
        );
        assert_eq!(got.kind, Kind::Complaint);
        assert!(
            ids(&c.classify("I got a letter. I understand the rest.")).is_empty(),
            "not across sentences"
        );
        let praise = c.classify("The agent helped me so much");
        assert_eq!(ids(&praise), vec!["staff_conduct"]);
        assert_eq!(praise.kind, Kind::Compliment);
        assert!(
            ids(&c.classify("De medewerker was niet vriendelijk")).is_empty(),
            "negated praise is no praise"
        );
        assert!(
            ids(&c.classify("Vraag voor een medewerker.\n\nMet vriendelijke groet, Jan"))
                .is_empty(),
            "words inside ignored set phrases do not count"
        );
        assert_eq!(
            ids(&c.classify("De verzekeraar zegt dat het bij de werkgever ligt")),
            vec!["handoffs"]
        );
        assert!(
            ids(&c.classify("De gemeente zegt dat het goed komt")).is_empty(),
            "a concept named twice needs two different words"
        );
        Ok(())
    }

    #[test]
    fn organisations_extend_rename_and_remove_without_recompiling() -> Result<(), TaxonomyError> {
        let own = r#"
extends = "default"
version = "gemeente-2026.1"
remove_themes = ["product_quality"]

[[theme]]
id = "staff_conduct"
label = "Bejegening (KCC)"
add_patterns = ["zuchtte hoorbaar"]

[[theme]]
id = "parking"
label = "Parkeren"
cause = "system"
patterns = ["parkeervergunning*", "wielklem"]
when = [["vehicle", "towed"]]

[concepts]
vehicle = ["auto", "wagen", "car", "scooter*"]
towed = ["weggesleept", "weggehaald", "towed", "wielklem*"]
"#;
        let c = Classifier::from_toml(own)?;
        assert_eq!(c.version(), "gemeente-2026.1");
        let labels: Vec<(&str, &str)> = c
            .themes()
            .map(|t| (t.id.as_str(), t.label.as_str()))
            .collect();
        assert!(labels.contains(&("staff_conduct", "Bejegening (KCC)")));
        assert!(labels.contains(&("parking", "Parkeren")));
        assert!(!labels.iter().any(|(id, _)| *id == "product_quality"));
        assert_eq!(
            ids(&c.classify("De medewerker zuchtte hoorbaar")),
            vec!["staff_conduct"]
        );
        assert_eq!(
            ids(&c.classify("Mijn parkeervergunningaanvraag en een wielklem")),
            vec!["parking"]
        );
        assert!(ids(&c.classify("Het pakket was kapot")).is_empty());
        assert_eq!(
            ids(&c.classify("Mijn scooter is gisteren weggehaald")),
            vec!["parking"],
            "an organisation's own concepts"
        );
        Ok(())
    }

    fn subject_ids(c: &Classification) -> Vec<&str> {
        c.subjects.iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn subjects_in_dutch_and_english_with_their_words() {
        let c = classifier();
        #[rustfmt::skip]
        let cases: &[(&str, &[&str], &[&str])] = &[
            // (text, subjects in taxonomy order, every evidence in text order per subject)
            ("Mijn WOZ-beschikking klopt niet, ik ga in bezwaar", &["objection_appeal", "woz_assessment"], &["bezwaar", "WOZ-beschikking"]),
            ("The WOZ value on the assessment notice is far too high", &["woz_assessment"], &["WOZ value"]),
            ("Inloggen met DigiD lukt niet in de app", &["app", "digid"], &["de app", "DigiD"]),
            ("Your app logs me out and DigiD won't accept my code", &["app", "digid"], &["Your app", "DigiD"]),
            ("Al drie weken probeer ik in te loggen op Mijn Omgeving", &["customer_portal"], &["Mijn Omgeving"]),
            ("Ik kreeg een herinneringsbrief en daarna een aanmaning voor de aanslag gemeentelijke belastingen", &["municipal_tax", "reminder"], &["gemeentelijke belastingen", "herinneringsbrief", "aanmaning"]),
            ("I got a final reminder for my council tax", &["municipal_tax", "reminder"], &["council tax", "final reminder"]),
            ("Mijn parkeervergunning is nog steeds niet verlengd", &["parking_permit"], &["parkeervergunning"]),
            ("How long does a residents' permit take?", &["parking_permit"], &["residents' permit"]),
            ("Na de verhuizing klopt mijn adres niet; adreswijziging doorgegeven", &["move_address"], &["verhuizing", "adreswijziging"]),
            ("I registered my change of address twice", &["move_address"], &["change of address"]),
            ("De eigen risico en de premie voor mijn zorgverzekering zijn te hoog", &["deductible", "health_insurance", "premium"], &["eigen risico", "zorgverzekering", "premie"]),
            ("My claim for the physiotherapy invoice was rejected", &["claim", "invoice"], &["My claim", "invoice"]),
            ("De huurverhoging en de servicekosten kloppen niet", &["rent_increase", "service_charges"], &["huurverhoging", "servicekosten"]),
            ("Mijn reparatieverzoek voor de cv-ketel staat al weken open", &["heating", "repair"], &["cv-ketel", "reparatieverzoek"]),
            ("De slimme meter stuurt geen meterstand door en mijn jaarafrekening is te hoog", &["annual_statement", "meter_reading", "smart_meter"], &["jaarafrekening", "meterstand", "slimme meter"]),
            ("Power cut again and the new smart meter shows nothing", &["outage", "smart_meter"], &["Power cut", "smart meter"]),
            ("Waarom is mijn termijnbedrag verhoogd na de storing?", &["instalment", "outage"], &["termijnbedrag", "storing"]),
            ("Gisteren is de grijze container niet geleegd", &["waste_collection"], &["container"]),
            ("Mijn WMO-aanvraag voor een scootmobiel", &["wmo_support"], &["WMO-aanvraag", "scootmobiel"]),
            ("Ik zit in de schuldhulpverlening en heb een betalingsregeling gevraagd", &["debt_help", "payment_arrangement"], &["schuldhulpverlening", "betalingsregeling"]),
            // Diacritics and case fold; inflections through `*`.
            ("Wanneer krijg ik mijn nieuwe PASPOORTEN en de ID-kaart?", &["passport_id"], &["PASPOORTEN", "ID-kaart"]),
            ("Mijn zorgtoeslag en huurtoeslag zijn gestopt", &["healthcare_allowance", "rent_allowance"], &["zorgtoeslag", "huurtoeslag"]),
        ];
        for (text, subjects, words) in cases {
            let got = c.classify(text);
            assert_eq!(subject_ids(&got), *subjects, "subjects for {text:?}");
            let evidence: Vec<&str> = got
                .subjects
                .iter()
                .flat_map(|s| s.evidence.iter().map(|e| e.text.as_str()))
                .collect();
            assert_eq!(evidence, *words, "evidence for {text:?}");
            for s in &got.subjects {
                for ev in &s.evidence {
                    assert_eq!(
                        &text[ev.start..ev.end],
                        ev.text,
                        "offsets of {} in {text:?}",
                        s.id
                    );
                }
            }
        }
    }

    #[test]
    fn subject_phrases_do_not_fire_on_near_misses() {
        let c = classifier();
        for text in [
            "Mijn appartement is mooi en de appel is rood",
            "Dat vind ik bezwaarlijk",
            "Ter herinnering: morgen is het loket dicht",
            "In aansluiting op uw brief van gisteren",
            "Bill called me yesterday",
            "That service was rubbish and the call got disconnected",
            "Pets are not permitted in the hall",
            "De premiere van de film",
            "Storingsvrij en betrouwbaar",
            "I will appear in person",
            "Een app gestuurd naar mijn zus",
            "Digidentity is een ander bedrijf",
            "De receptie en de receptionist waren er niet",
            "De wozzeck-opera",
        ] {
            let got = c.classify(text);
            assert!(
                got.subjects.is_empty(),
                "no subject in {text:?}: {:?}",
                got.subjects
            );
        }
    }

    #[test]
    fn the_most_specific_subject_phrase_wins_an_overlap() {
        let c = classifier();
        for (text, want) in [
            ("De parkeer vergunning is verlopen", "parking_permit"),
            ("Het incassobureau belt steeds", "debt_collection"),
            ("I bought cancellation insurance", "travel_insurance"),
            ("Ik wil de huur opzeggen", "tenancy_end"),
        ] {
            assert_eq!(subject_ids(&c.classify(text)), vec![want], "{text:?}");
        }
    }

    #[test]
    fn subject_evidence_never_runs_into_a_number() {
        let c = classifier();
        for text in [
            "polisnummer12345678 klopt niet",
            "Mijn polisnummer 12345678 klopt niet",
        ] {
            let got = c.classify(text);
            assert_eq!(subject_ids(&got), vec!["policy"], "{text:?}");
            assert_eq!(got.subjects[0].evidence[0].text, "polisnummer", "{text:?}");
        }
        // A `*` subject phrase takes the letters of a compound along.
        let got = c.classify("De woz-beschikkingen van 2026");
        assert_eq!(got.subjects[0].evidence[0].text, "woz-beschikkingen");
    }

    #[test]
    fn subjects_leave_themes_alone() -> Result<(), TaxonomyError> {
        let mut without = Taxonomy::parse(DEFAULT_TAXONOMY)?;
        without.subjects.clear();
        let without = Classifier::new(without)?;
        let with = classifier();
        for text in [
            // "de app" is a subject phrase; the theme phrase "app" inside it still counts.
            "In de app kan ik niet inloggen met DigiD",
            "Een aanmaning voor een factuur die al betaald is",
            "Storing bij Mijn Omgeving, de medewerker was niet onvriendelijk",
            "Mijn parkeervergunningaanvraag en een wielklem",
            "The app crashes when I upload my claim form",
        ] {
            let (a, b) = (with.classify(text), without.classify(text));
            assert!(!a.subjects.is_empty(), "{text:?} has a subject");
            assert_eq!(a.themes, b.themes, "themes of {text:?}");
            assert_eq!(
                (a.cause, a.kind, a.sentiment, &a.escalation),
                (b.cause, b.kind, b.sentiment, &b.escalation),
                "{text:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_default_subjects_have_both_languages() {
        let tax = match Taxonomy::parse(DEFAULT_TAXONOMY) {
            Ok(t) => t,
            Err(e) => panic!("default taxonomy must parse: {e}"),
        };
        assert!(
            (40..=70).contains(&tax.subjects.len()),
            "{} subjects",
            tax.subjects.len()
        );
        for s in &tax.subjects {
            for lang in ["nl", "en"] {
                assert!(
                    s.label.contains_key(lang),
                    "subject `{}` has no {lang} label",
                    s.id
                );
                assert!(
                    s.phrases.get(lang).is_some_and(|p| !p.is_empty()),
                    "subject `{}` has no {lang} phrases",
                    s.id
                );
            }
        }
        let c = classifier();
        let digid = c.subjects().find(|s| s.id == "digid");
        assert_eq!(
            digid.map(|s| s.kind),
            Some(signaal_core::SubjectKind::Service)
        );
        let woz = c.subjects().find(|s| s.id == "woz_assessment");
        assert_eq!(woz.map(|s| s.label_in("nl")), Some("WOZ-beschikking"));
        assert_eq!(woz.map(|s| s.label_in("de")), Some("WOZ value assessment"));
    }

    #[test]
    fn organisations_add_change_and_remove_subjects() -> Result<(), TaxonomyError> {
        let own = r#"
extends = "default"
remove_subjects = ["travel_insurance"]

[subjects.waste_pass]
kind = "product"
label = { nl = "afvalpas", en = "waste pass" }
phrases.nl = ["afvalpas*", "milieupas*"]
phrases.en = ["waste pass*"]

[subjects.waste_collection]
remove_phrases.nl = ["afvalpas*"]

[subjects.digid]
label = { nl = "DigiD (inloggen)" }
add_phrases.nl = ["inlogmiddel*"]
"#;
        let c = Classifier::from_toml(own)?;
        let got =
            c.classify("Mijn milieupas werkt niet bij de container, en mijn afvalpas ook niet");
        assert_eq!(subject_ids(&got), vec!["waste_collection", "waste_pass"]);
        assert_eq!(got.subjects[1].evidence[0].text, "milieupas");
        assert_eq!(got.subjects[1].evidence[1].text, "afvalpas");
        assert_eq!(
            subject_ids(&c.classify("My waste pass is lost")),
            vec!["waste_pass"]
        );
        assert_eq!(
            subject_ids(&c.classify("Mijn inlogmiddel is verlopen")),
            vec!["digid"]
        );
        assert!(c.classify("I bought travel insurance").subjects.is_empty());
        let digid = c.subjects().find(|s| s.id == "digid");
        assert_eq!(digid.map(|s| s.label_in("nl")), Some("DigiD (inloggen)"));
        assert_eq!(
            digid.map(|s| s.label_in("en")),
            Some("DigiD"),
            "other languages stay"
        );
        assert_eq!(
            c.subjects().find(|s| s.id == "waste_pass").map(|s| s.kind),
            Some(signaal_core::SubjectKind::Product)
        );

        // A file of its own, without the default, may have subjects too.
        let alone = Classifier::from_toml(
            r#"
[[theme]]
id = "payment"
label = "betaling"
cause = "system"
patterns = ["dubbel afgeschreven"]

[subjects.parking_permit]
kind = "product"
label = { nl = "parkeervergunning" }
phrases.nl = ["parkeervergunning*"]
"#,
        )?;
        let got = alone.classify("Parkeervergunning dubbel afgeschreven");
        assert_eq!(ids(&got), vec!["payment"]);
        assert_eq!(subject_ids(&got), vec!["parking_permit"]);
        Ok(())
    }

    #[test]
    fn bad_taxonomies_are_rejected_with_reasons() {
        let cases = [
            ("version = 1", "not valid TOML"),
            ("extends = \"mine\"", "only \"default\""),
            (
                "extends = \"default\"\nremove_themes = [\"nope\"]",
                "does not have",
            ),
            (
                "[[theme]]\nid = \"a\"\nlabel = \"a\"\ncause = \"system\"\npatterns = []",
                "has no phrases",
            ),
            (
                "[[theme]]\nid = \"a\"\ncause = \"system\"\npatterns = [\"x\"]",
                "needs `label`",
            ),
            (
                "[[theme]]\nid = \"a\"\nlabel = \"a\"\ncause = \"system\"\npatterns = [\" * \"]",
                "empty after folding",
            ),
            ("version = \"x\"", "no themes"),
            (
                "[[theme]]\nid = \"a\"\nlabel = \"a\"\ncause = \"system\"\nwhen = [[\"nope\"]]",
                "does not define",
            ),
            (
                "[[theme]]\nid = \"a\"\nlabel = \"a\"\ncause = \"system\"\nwhen = [[]]",
                "empty `when` group",
            ),
            (
                "extends = \"default\"\nremove_subjects = [\"nope\"]",
                "`remove_subjects` names `nope`",
            ),
            (
                "extends = \"default\"\n[subjects.a]\nlabel = { nl = \"a\" }\nphrases.nl = [\"a\"]",
                "new subject `a` needs `kind`",
            ),
            (
                "extends = \"default\"\n[subjects.a]\nkind = \"product\"\nphrases.nl = [\"a\"]",
                "new subject `a` needs `label`",
            ),
            (
                "extends = \"default\"\n[subjects.a]\nkind = \"product\"\nlabel = { nl = \"a\" }",
                "subject `a` has no phrases",
            ),
            (
                "extends = \"default\"\n[subjects.digid]\nremove_phrases.nl = [\"digid\", \"digi-d\", \"digi d\", \"digid-app\", \"digid app\", \"digid-code\", \"digid code\"]\nphrases.en = []",
                "subject `digid` has no phrases",
            ),
            (
                "extends = \"default\"\n[subjects.Parkeren]\nkind = \"product\"\nlabel = { nl = \"a\" }\nphrases.nl = [\"a\"]",
                "not snake_case",
            ),
            (
                "extends = \"default\"\n[subjects.a]\nkind = \"letter\"\nlabel = { nl = \"a\" }\nphrases.nl = [\"a\"]",
                "not valid TOML",
            ),
            (
                "extends = \"default\"\n[subjects.a]\nkind = \"product\"\nlabels = { nl = \"a\" }\nphrases.nl = [\"a\"]",
                "not valid TOML",
            ),
            (
                "extends = \"default\"\n[subjects.a]\nkind = \"product\"\nlabel = { nl = \"a\" }\nphrases.nl = [\" * \"]",
                "empty after folding",
            ),
        ];
        for (text, want) in cases {
            match Classifier::from_toml(text) {
                Ok(_) => panic!("taxonomy {text:?} should be rejected"),
                Err(e) => assert!(e.to_string().contains(want), "`{e}` should say `{want}`"),
            }
        }
    }
}
