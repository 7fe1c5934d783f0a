//! Memorization estimates (Feldman and Zhang, NeurIPS 2020) from a population of models each
//! trained on a random half of the training set, and forget sets chosen by them (as in Zhao et
//! al., NeurIPS 2024, whose code is `kairanzhao/RUM`).
//!
//! For training example `i`, with IN the models whose half holds `i` and OUT the others:
//! - memorization: `P(correct | IN) - P(correct | OUT)`, the share of IN models that classify
//!   `i` correctly minus the share of OUT models that do (Feldman and Zhang's estimator);
//! - confidence gap: the mean logit-scaled confidence of `i`'s label under IN minus under OUT
//!   (the continuous version; it orders examples whose memorization ties, most often at 0).
//!
//! Model `k`'s half is `floor(n / 2)` examples drawn from the stream `memorization/<k>/half`
//! of seed [`SEED`]: never the U-LiRA shadows' halves (`shadow/<k>/half`), so a forget set is
//! not chosen by the models that then attack it.

use crate::rng::{stream, subset};

/// The seed of the population's streams: one population serves every experiment (and seed)
/// with the same data, architecture and original protocol.
pub const SEED: u64 = 0;

/// The fewest models an estimate takes.
pub const MIN_MODELS: usize = 8;

/// Model `k`'s half of a training set of `n` examples, ascending.
pub fn half(n: usize, k: usize) -> Vec<usize> {
    subset(&mut stream(SEED, &format!("memorization/{k}/half")), n, n / 2)
}

/// Per training example, the estimates and how many models were on each side.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    pub memorization: Vec<f64>,
    pub confidence_gap: Vec<f64>,
    pub models_in: Vec<u32>,
    pub models_out: Vec<u32>,
}

/// How many of the models whose halves are `halves` trained on each of `n` examples (IN), and
/// how many did not (OUT).
pub fn sides(n: usize, halves: &[Vec<usize>]) -> (Vec<u32>, Vec<u32>) {
    let mut models_in = vec![0u32; n];
    for h in halves {
        for &i in h {
            models_in[i] += 1;
        }
    }
    let models_out = models_in.iter().map(|&c| halves.len() as u32 - c).collect();
    (models_in, models_out)
}

/// The estimates from every model's half and its outputs on the whole training set (correct,
/// logit-scaled confidence of the label, one entry per example). An example with no model on
/// one side gets NaN (callers reject forget pools holding one: [`sides`]).
pub fn estimate(halves: &[Vec<usize>], correct: &[Vec<bool>], confidence: &[Vec<f32>]) -> Scores {
    let n = correct.first().map_or(0, Vec::len);
    let (models_in, models_out) = sides(n, halves);
    // Per example: [correct IN, correct OUT, confidence IN, confidence OUT] sums.
    let mut sums = vec![[0f64; 4]; n];
    for (k, half) in halves.iter().enumerate() {
        let mut is_in = vec![false; n];
        for &i in half {
            is_in[i] = true;
        }
        for (i, s) in sums.iter_mut().enumerate() {
            let side = usize::from(!is_in[i]);
            s[side] += f64::from(u8::from(correct[k][i]));
            s[2 + side] += f64::from(confidence[k][i]);
        }
    }
    let (mut memorization, mut confidence_gap) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, s) in sums.iter().enumerate() {
        let (a, b) = (f64::from(models_in[i]), f64::from(models_out[i]));
        memorization.push(s[0] / a - s[1] / b);
        confidence_gap.push(s[2] / a - s[3] / b);
    }
    Scores { memorization, confidence_gap, models_in, models_out }
}

/// Which examples of a pool to choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The highest memorization.
    High,
    /// The nearest the pool's median memorization.
    Mid,
    /// The lowest memorization.
    Low,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::High => "high",
            Level::Mid => "mid",
            Level::Low => "low",
        }
    }
}

/// The `size` examples of `pool` at `level`, ascending (the first `size` of [`ranked`]).
pub fn choose(scores: &Scores, pool: &[usize], level: Level, size: usize) -> Vec<usize> {
    let mut chosen = ranked(scores, pool, level);
    chosen.truncate(size);
    chosen.sort_unstable();
    chosen
}

/// `pool` ordered from the most to the least `level` (the highest memorization first for
/// `High`, the lowest for `Low`, the nearest the pool's median for `Mid`). Ties in
/// memorization (many examples share a value, most often 0) are broken by the confidence gap
/// the same way, then by index, so the order is a function of the scores alone.
pub fn ranked(scores: &Scores, pool: &[usize], level: Level) -> Vec<usize> {
    let (m, g) = (&scores.memorization, &scores.confidence_gap);
    let median = |v: &[f64]| {
        let mut s: Vec<f64> = pool.iter().map(|&i| v[i]).collect();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(0.0)
    };
    let (mm, gm) = (median(m), median(g));
    let rank = |i: usize| match level {
        Level::High => (-m[i], -g[i]),
        Level::Low => (m[i], g[i]),
        Level::Mid => ((m[i] - mm).abs(), (g[i] - gm).abs()),
    };
    let mut order = pool.to_vec();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (rank(a), rank(b));
        ra.0.total_cmp(&rb.0).then(ra.1.total_cmp(&rb.1)).then(a.cmp(&b))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_are_their_own_and_reproducible() {
        let (a, b) = (half(1000, 0), half(1000, 1));
        assert_eq!(a.len(), 500);
        assert!(a.is_sorted() && a != b);
        assert_eq!(a, half(1000, 0));
        let shadow = subset(&mut stream(SEED, "shadow/0/half"), 1000, 500);
        assert_ne!(a, shadow, "never a U-LiRA shadow's half");
    }

    /// Four examples, four models: example 0 is classified right only when trained on
    /// (memorized), 1 always, 2 never, 3 only when not trained on.
    #[test]
    fn estimates_by_hand() {
        let halves = vec![vec![0, 1, 2, 3], vec![0, 1], vec![2, 3], vec![]];
        let is_in = |k: usize, i: usize| halves[k].contains(&i);
        let correct: Vec<Vec<bool>> = (0..4)
            .map(|k| (0..4).map(|i| [is_in(k, i), true, false, !is_in(k, i)][i]).collect())
            .collect();
        let confidence: Vec<Vec<f32>> = (0..4)
            .map(|k| (0..4).map(|i| if is_in(k, i) { 2.0 } else { -1.0 }).collect())
            .collect();
        let s = estimate(&halves, &correct, &confidence);
        assert_eq!(s.models_in, [2, 2, 2, 2]);
        assert_eq!(s.models_out, [2, 2, 2, 2]);
        assert_eq!(s.memorization, [1.0, 0.0, 0.0, -1.0]);
        assert_eq!(s.confidence_gap, [3.0; 4]);
        let none = estimate(&[vec![0]], &[vec![true, true]], &[vec![0.0, 0.0]]);
        assert!(none.memorization[0].is_nan() && none.memorization[1].is_nan());
    }

    #[test]
    fn choices_by_level_with_ties_broken_by_the_gap_then_the_index() {
        let scores = Scores {
            memorization: vec![0.9, 0.0, 0.0, 0.5, -0.2, 0.0, 0.0],
            confidence_gap: vec![5.0, 0.1, 0.3, 2.0, -1.0, 0.3, 0.2],
            ..Scores::default()
        };
        let pool: Vec<usize> = (0..7).collect();
        assert_eq!(
            choose(&scores, &pool, Level::High, 3),
            [0, 2, 3],
            "0.9, 0.5, then gap 0.3 (2 < 5)"
        );
        assert_eq!(choose(&scores, &pool, Level::Low, 2), [1, 4]);
        // Median memorization 0, median gap 0.3: distance 0 in both for 2 and 5.
        assert_eq!(choose(&scores, &pool, Level::Mid, 2), [2, 5]);
        assert_eq!(choose(&scores, &[0, 4], Level::High, 1), [0], "within the pool only");
        assert_eq!(ranked(&scores, &pool, Level::High), [0, 3, 2, 5, 6, 1, 4]);
    }
}
