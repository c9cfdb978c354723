//! The model file: compact, versioned, checked.
//!
//! All numbers little-endian. Strings are a `u16` byte length and UTF-8.
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `SIGLEARN` |
//! | 2 | format version, 1 |
//! | 2 | flags, 0 |
//! | 8 | feature configuration: `bits`, `char_min`, `char_max`, `bigrams` (0/1), `negation_window`, 3 zero bytes |
//! | str | model name |
//! | 2 + … | theme count, then per theme its id (str) and threshold (`f32`) |
//! | 2 + … | kind count, then per kind its label (str) |
//! | 4 × outputs | per output (themes, kinds, staff conduct) the `f32` scale of its `i16` weights |
//! | 4 | number of stored rows |
//! | 2^bits / 8 | bitmap: bit `i` set when bucket `i`'s row is stored (a row of all zeros is not) |
//! | 2 × outputs × rows | the stored rows' `i16` weights, by bucket |
//! | 8 | checksum: the crate's 64-bit hash of every byte before it |
//!
//! Buckets no training example reached are all zero and left out, so the file is a little over
//! `2^bits / 8 + 2 × outputs × (buckets used)` bytes; in memory the model is dense, its rows
//! padded to a multiple of 8 outputs: `2 × 16 × 2^bits` bytes for up to 16 outputs (10 themes,
//! 4 kinds and staff conduct are 15), 8 MiB at the default 2^18 bits.
//!
//! Reading checks everything before trusting anything: the checksum first, then every field, and
//! the encoding must be the one `to_bytes` writes (so a model's bytes and version are one-to-one).
//! Bad input is an error, never a panic or a huge allocation.

use crate::features::{FeatureConfig, Featurizer};
use crate::hash::digest;
use crate::model::{check_labels, row_len, Model, MAX_KINDS, MAX_THEMES};

const MAGIC: &[u8; 8] = b"SIGLEARN";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Largest dense weight table a model file may ask for (128 MiB of `i16`).
const MAX_WEIGHTS: usize = 1 << 26;

/// Why bytes are not a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a signaal-learn model (the magic bytes are wrong)")]
    BadMagic,
    #[error(
        "model format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u16),
    #[error("the model bytes end early, in {0}")]
    Truncated(&'static str),
    #[error("the model's checksum does not match: the bytes are damaged")]
    Checksum,
    #[error("invalid model: {0}")]
    Invalid(String),
}

impl Model {
    /// The model in the format above.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self).0
    }

    /// Reads a model written by [`Model::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, FormatError> {
        decode(bytes)
    }
}

/// The bytes and their checksum (which makes the version).
pub(crate) fn encode(m: &Model) -> (Vec<u8>, u64) {
    let cfg = m.featurizer.config();
    let len = row_len(m.outputs).max(1);
    let rows = m.weights.len() / len;
    let present: Vec<bool> = m
        .weights
        .chunks_exact(len)
        .map(|row| row.iter().any(|w| *w != 0))
        .collect();
    let stored = present.iter().filter(|p| **p).count();
    let mut out = Vec::with_capacity(64 + rows / 8 + stored * m.outputs * 2);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&[
        cfg.bits,
        cfg.char_min,
        cfg.char_max,
        u8::from(cfg.bigrams),
        cfg.negation_window,
        0,
        0,
        0,
    ]);
    put_str(&mut out, &m.name);
    out.extend_from_slice(&(m.themes.len() as u16).to_le_bytes());
    for (t, th) in m.themes.iter().zip(&m.thresholds) {
        put_str(&mut out, t);
        out.extend_from_slice(&th.to_le_bytes());
    }
    out.extend_from_slice(&(m.kinds.len() as u16).to_le_bytes());
    for k in &m.kinds {
        put_str(&mut out, k);
    }
    for s in &m.scales {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out.extend_from_slice(&(stored as u32).to_le_bytes());
    for chunk in present.chunks(8) {
        let byte = chunk
            .iter()
            .enumerate()
            .fold(0u8, |b, (i, p)| b | u8::from(*p) << i);
        out.push(byte);
    }
    for (row, p) in m.weights.chunks_exact(len).zip(&present) {
        if *p {
            for w in row.iter().take(m.outputs) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
    }
    let sum = digest(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    (out, sum)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths were checked (at most 255 bytes) before a model exists.
    out.extend_from_slice(&(s.len().min(u16::MAX as usize) as u16).to_le_bytes());
    out.extend_from_slice(
        s.as_bytes()
            .get(..s.len().min(u16::MAX as usize))
            .unwrap_or_default(),
    );
}

/// A cursor that never reads past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let end = self.at.checked_add(n).ok_or(FormatError::Truncated(what))?;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or(FormatError::Truncated(what))?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FormatError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, FormatError> {
        self.array(what).map(u16::from_le_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, FormatError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn f32(&mut self, what: &'static str) -> Result<f32, FormatError> {
        self.array(what).map(f32::from_le_bytes)
    }

    fn str(&mut self, what: &'static str) -> Result<String, FormatError> {
        let n = self.u16(what)? as usize;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec())
            .map_err(|_| FormatError::Invalid(format!("{what} is not UTF-8")))
    }
}

fn invalid(msg: impl Into<String>) -> FormatError {
    FormatError::Invalid(msg.into())
}

fn decode(bytes: &[u8]) -> Result<Model, FormatError> {
    let mut r = Reader { bytes, at: 0 };
    if &r.array::<8>("the magic bytes")? != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = r.u16("the format version")?;
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let body_len = bytes
        .len()
        .checked_sub(8)
        .ok_or(FormatError::Truncated("the checksum"))?;
    let (body, sum) = bytes.split_at(body_len);
    let mut s = [0u8; 8];
    s.copy_from_slice(sum);
    if body.len() < 12 || digest(body) != u64::from_le_bytes(s) {
        return Err(FormatError::Checksum);
    }
    let mut r = Reader {
        bytes: body,
        at: 12,
    };
    if bytes.get(10..12) != Some(&[0, 0][..]) {
        return Err(invalid("unknown flags are set"));
    }
    let c = r.array::<8>("the feature configuration")?;
    if c[3] > 1 || c[5..] != [0, 0, 0] {
        return Err(invalid("the feature configuration has unknown values"));
    }
    let config = FeatureConfig {
        bits: c[0],
        char_min: c[1],
        char_max: c[2],
        bigrams: c[3] == 1,
        negation_window: c[4],
    };
    let featurizer = Featurizer::new(config).map_err(|e| invalid(e.to_string()))?;
    let name = r.str("the model name")?;
    let n_themes = r.u16("the theme count")? as usize;
    if n_themes > MAX_THEMES {
        return Err(invalid(format!("{n_themes} themes (at most {MAX_THEMES})")));
    }
    let mut themes = Vec::with_capacity(n_themes);
    let mut thresholds = Vec::with_capacity(n_themes);
    for _ in 0..n_themes {
        themes.push(r.str("a theme id")?);
        let th = r.f32("a theme threshold")?;
        if !(0.0..=1.0).contains(&th) {
            return Err(invalid(format!("threshold {th} is not in 0..=1")));
        }
        thresholds.push(th);
    }
    let n_kinds = r.u16("the kind count")? as usize;
    if n_kinds > MAX_KINDS {
        return Err(invalid(format!("{n_kinds} kinds (at most {MAX_KINDS})")));
    }
    let mut kinds = Vec::with_capacity(n_kinds);
    for _ in 0..n_kinds {
        kinds.push(r.str("a kind")?);
    }
    check_labels(&name, &themes, &kinds).map_err(invalid)?;
    let stride = n_themes + n_kinds + 1;
    let mut scales = Vec::with_capacity(stride);
    for _ in 0..stride {
        let s = r.f32("the weight scales")?;
        if !(s.is_finite() && s >= 0.0) {
            return Err(invalid(format!(
                "weight scale {s} is not a finite non-negative number"
            )));
        }
        scales.push(s);
    }
    let dim = featurizer.dimension();
    let len = row_len(stride);
    let total = dim
        .checked_mul(len)
        .filter(|n| *n <= MAX_WEIGHTS)
        .ok_or_else(|| {
            invalid(format!(
                "2^{} buckets × {stride} outputs is too large",
                config.bits
            ))
        })?;
    let stored = r.u32("the row count")? as usize;
    let bitmap = r.take(dim / 8, "the row bitmap")?;
    let set: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
    if set != stored {
        return Err(invalid(format!(
            "the bitmap marks {set} rows, the header says {stored}"
        )));
    }
    let row_bytes = stride * 2;
    let data = r.take(
        stored
            .checked_mul(row_bytes)
            .ok_or(FormatError::Truncated("the weights"))?,
        "the weights",
    )?;
    if r.at != body.len() {
        return Err(invalid("bytes follow the weights"));
    }
    let mut weights = vec![0i16; total];
    let mut rows = data.chunks_exact(row_bytes);
    for (byte_at, byte) in bitmap.iter().enumerate() {
        let mut bits = *byte;
        while bits != 0 {
            let bucket = byte_at * 8 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let (Some(src), Some(dst)) = (
                rows.next(),
                weights.get_mut(bucket * len..bucket * len + stride),
            ) else {
                return Err(FormatError::Truncated("the weights"));
            };
            let mut any = false;
            for (w, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *w = i16::from_le_bytes([b[0], b[1]]);
                any |= *w != 0;
            }
            if !any {
                return Err(invalid(format!("bucket {bucket} is stored but all zero")));
            }
            if dst.contains(&i16::MIN) {
                return Err(invalid(format!(
                    "bucket {bucket} has a weight out of range"
                )));
            }
        }
    }
    let digest = u64::from_le_bytes(s);
    Ok(Model {
        version: format!("{name}-{digest:016x}"),
        name,
        featurizer,
        themes,
        thresholds,
        kinds,
        outputs: stride,
        scales,
        weights,
    })
}
