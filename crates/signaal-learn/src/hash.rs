//! The fixed hash and the fixed random numbers everything else is built on.
//!
//! Both are written out here, not taken from a crate or from `std`, so that a feature index, a
//! shuffle and therefore a trained model are the same on every platform, Rust version and
//! dependency update: `std`'s `DefaultHasher` is explicitly allowed to change between releases.
//!
//! - Hash (`hash64`): the bytes are read as little-endian 64-bit chunks (the last one padded with
//!   zeros); the state starts as `seed ^ len·K` and takes each chunk as
//!   `h = rotl((h ^ chunk)·K, 31)`, with `K = 0x9e3779b97f4a7c15` (2^64 / φ); the result is
//!   MurmurHash3's `fmix64` of the state. One multiply per 8 bytes instead of FNV's one per byte,
//!   and `fmix64` makes every output bit depend on every input bit, so the top bits can serve as
//!   a bucket index. Character n-grams (at most 8 bytes) skip the loop: their bytes packed into
//!   one little-endian `u64`, xor a seed, times `K` (an odd number, so a bijection: two different
//!   n-grams never share a 64-bit hash), and the top bits of that product are the index — the
//!   top bits of a multiplicative hash are the ones every input bit reaches.
//! - Random numbers: SplitMix64 (Steele, Lea, Flood 2014), a 64-bit state and three
//!   multiply/xor-shift steps.

/// 2^64 divided by the golden ratio, odd: the multiplier of `hash64`.
pub(crate) const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output.
#[inline(always)]
pub(crate) const fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[inline(always)]
const fn step(h: u64, chunk: u64) -> u64 {
    (h ^ chunk).wrapping_mul(K).rotate_left(31)
}

/// The hash of `bytes` from `seed` (see the module docs). A `const fn`, so that tables of word
/// hashes can be built at compile time.
#[inline]
pub(crate) const fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut at = 0;
    while at < bytes.len() {
        let mut chunk = 0u64;
        let mut i = 0;
        while i < 8 && at + i < bytes.len() {
            chunk |= (bytes[at + i] as u64) << (8 * i);
            i += 1;
        }
        h = step(h, chunk);
        at += 8;
    }
    fmix64(h)
}

/// A stable 64-bit digest of `bytes`: the model format's checksum and the hash in a model's
/// version.
pub(crate) fn digest(bytes: &[u8]) -> u64 {
    hash64(0x5167_6e61_616c_0001, bytes)
}

/// SplitMix64: small, fast, and fully specified, so a seed gives the same sequence forever.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is below 2^-32 for any `n` here).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Fisher–Yates, from the back.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash64_is_stable() {
        // Computed once with this implementation; these values are part of the model format.
        let got = [
            hash64(0, b""),
            hash64(0, b"a"),
            hash64(0, b"betaling"),
            hash64(7, b"klantvriendelijkheid"),
            digest(b"signaal"),
        ];
        assert_eq!(
            got,
            [
                0,
                16959273658024207090,
                558179818302092699,
                6646016235321897268,
                12163249859290749896
            ]
        );
    }

    #[test]
    fn hash64_separates_lengths_seeds_and_chunk_boundaries() {
        let all = [
            hash64(0, b""),
            hash64(0, b"\0"),
            hash64(0, b"\0\0"),
            hash64(1, b""),
            hash64(0, b"abcdefgh"),
            hash64(0, b"abcdefgh\0"),
            hash64(0, b"bcdefgha"),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // The first outputs of the reference implementation (splitmix64.c) for seed 0.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn shuffle_is_a_permutation_fixed_by_the_seed() {
        let mut a: Vec<u32> = (0..50).collect();
        let mut b = a.clone();
        SplitMix64::new(7).shuffle(&mut a);
        SplitMix64::new(7).shuffle(&mut b);
        assert_eq!(a, b, "the same seed must give the same order");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..50).collect::<Vec<_>>(),
            "a shuffle loses nothing"
        );
        assert_ne!(a, (0..50).collect::<Vec<_>>(), "50 items should move");
    }
}
