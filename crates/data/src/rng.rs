//! Per-run random streams.
//!
//! Every random draw of a run (the split, an initialisation, the shuffles of one method) comes
//! from its own stream, derived from the run's seed and a purpose string:
//! `ChaCha8(SHA-256("unlearn-bench/rng/v1" 0x00 seed_le purpose))`. Streams never depend on
//! process-global state (`tch::manual_seed`) nor on which thread runs the job, so results are
//! the same whatever the parallelism. ChaCha8 is portable: the same seed gives the same stream
//! on every platform.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

pub type Rng = ChaCha8Rng;

/// The stream of `purpose` for `seed`.
pub fn stream(seed: u64, purpose: &str) -> Rng {
    let mut h = Sha256::new();
    h.update(b"unlearn-bench/rng/v1\0");
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    Rng::from_seed(h.finalize().into())
}

/// A uniformly random permutation of `0..n`, as `i64` indices ready for a tensor.
pub fn permutation(rng: &mut Rng, n: usize) -> Vec<i64> {
    let mut p: Vec<i64> = (0..n as i64).collect();
    p.shuffle(rng);
    p
}

/// `k` distinct indices of `0..n` drawn uniformly (`k` at most `n`), ascending.
pub fn subset(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let mut chosen = rand::seq::index::sample(rng, n, k).into_vec();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    const GOLDEN_U32: u32 = 2_637_614_609;

    #[test]
    fn streams_are_pinned() {
        // Golden values: if a dependency upgrade changes them, every cached result and every
        // committed number changes too, so bump the cache schema and regenerate results/.
        assert_eq!(permutation(&mut stream(0, "test"), 8), vec![7, 4, 2, 3, 0, 1, 6, 5]);
        assert_eq!(stream(1, "test").random::<u32>(), GOLDEN_U32);
    }

    #[test]
    fn streams_differ_by_seed_and_purpose() {
        let draw = |seed, purpose| stream(seed, purpose).random::<u64>();
        assert_eq!(draw(0, "a"), draw(0, "a"));
        assert_ne!(draw(0, "a"), draw(1, "a"));
        assert_ne!(draw(0, "a"), draw(0, "b"));
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(&mut stream(3, "perm"), 1000);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
