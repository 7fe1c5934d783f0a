//! The NeurIPS 2023 Machine Unlearning competition's forgetting-quality score
//! (google-deepmind/unlearning_evaluation, `metric.py`), computed from the per-example
//! confidences of two populations of models: N unlearned replicates and N retrained ones.
//!
//! Per forget example, the "positive" group is the one with the larger median confidence (the
//! unlearned one on a tie). If the smaller of the two groups' ranges is under 1% of the larger,
//! the example's epsilon is the cap, 50 (a peaky distribution: e.g. identical replicates).
//! Otherwise every threshold of two decision-rule families is tried:
//! - single thresholds `t` over `linspace(min, max)` of both groups pooled, `ceil((max - min) *
//!   100)` of them, predicting positive when `c >= t`;
//! - double thresholds: `P`, the group with the smaller range (on a tie, the scorer's negative
//!   group), of range `w`; right thresholds `r` over `linspace(min(P) + w - 2, max(P) + 2)`,
//!   `ceil(span * 100)` of them, and for each 400 left ones over `linspace(r - w - 2, r - w + 2)`,
//!   predicting `P` when `l <= c <= r`.
//!
//! Per threshold: epsilon is infinite where FPR = FNR = 0; thresholds where just one of them is
//! 0 are dropped; otherwise `max(ln(1 - delta - FPR) - ln FNR, ln(1 - delta - FNR) - ln FPR)`,
//! at least 0 (a logarithm of a non-positive number drops its term). The example's epsilon is
//! the largest kept, clipped to [0, 50]. An example scores `2^-k` for an epsilon in `[0.5k,
//! 0.5k + 0.5)` while the bucket ends at or below `ceil(ln(N - 1))`, and 0 beyond; F is the
//! mean over forget examples.
//!
//! Where this differs from `metric.py`: the scorer counts every threshold against every model;
//! here the samples are sorted and counted by search (the same rates). Rates and logarithms are
//! in `f64` (the scorer's are `f32`; only an epsilon within rounding of a bucket edge could
//! move). Where no threshold survives (both groups a single value, the same one: the scorer's
//! `assert` fails there), the example's epsilon is 0: the two groups cannot be told apart.

/// The scorer's `delta`.
pub const DELTA: f64 = 1e-5;
/// The largest epsilon an example can get.
pub const EPSILON_CAP: f64 = 50.0;
/// Thresholds per unit of confidence.
const PER_UNIT: f64 = 100.0;
/// The double-threshold family's margin around the peaky group, and its left thresholds per
/// right one (`ceil(2 * 2 * 100)`).
const BUFFER: f64 = 2.0;
const LEFTS: usize = 400;

/// One forget example's epsilon from its confidences under the unlearned and the retrained
/// models.
pub fn epsilon(unlearned: &[f64], retrained: &[f64]) -> f64 {
    let (pos, neg) = if median(retrained) > median(unlearned) {
        (retrained, unlearned)
    } else {
        (unlearned, retrained)
    };
    let (pos, neg) = (sorted(pos), sorted(neg));
    let range = |v: &[f64]| v[v.len() - 1] - v[0];
    let (pos_range, neg_range) = (range(&pos), range(&neg));
    let (largest, smallest) =
        if pos_range > neg_range { (pos_range, neg_range) } else { (neg_range, pos_range) };
    if smallest / largest < 0.01 {
        return EPSILON_CAP;
    }
    let mut best = Best::default();
    // Single thresholds: positive when c >= t.
    let (lo, hi) = (pos[0].min(neg[0]), pos[pos.len() - 1].max(neg[neg.len() - 1]));
    let single = Rates::new(pos.len(), neg.len());
    for t in linspace(lo, hi, ((hi - lo) * PER_UNIT).ceil() as usize) {
        best.add(single.epsilon(at_least(&pos, t), at_least(&neg, t)));
    }
    // Double thresholds around the peaky group `p`: it is predicted when l <= c <= r.
    let (p, q) = if pos_range >= neg_range { (&neg, &pos) } else { (&pos, &neg) };
    let double = Rates::new(p.len(), q.len());
    let width = smallest;
    let (start, end) = (p[0] + width - BUFFER, p[p.len() - 1] + BUFFER);
    for r in linspace(start, end, ((end - start) * PER_UNIT).ceil() as usize) {
        let (p_upto, q_upto) = (at_most(p, r), at_most(q, r));
        // The lefts ascend, so the counts below each move one way: walk them.
        let (mut p_below, mut q_below) = (0, 0);
        for l in linspace(r - width - BUFFER, r - width + BUFFER, LEFTS) {
            while p_below < p.len() && p[p_below] < l {
                p_below += 1;
            }
            while q_below < q.len() && q[q_below] < l {
                q_below += 1;
            }
            let inside = |upto: usize, below: usize| upto.saturating_sub(below);
            best.add(double.epsilon(inside(p_upto, p_below), inside(q_upto, q_below)));
        }
    }
    best.value().clamp(0.0, EPSILON_CAP)
}

/// F: the mean over forget examples of their bucket's points, for populations of `models`
/// unlearned models.
pub fn forget_score(epsilons: &[f64], models: usize) -> f64 {
    let max_epsilon = (models as f64 - 1.0).ln().ceil();
    let (mut buckets, mut start, mut points) = (Vec::new(), 0.0, 1.0);
    while start + 0.5 <= max_epsilon {
        buckets.push((start, points));
        points /= 2.0;
        start += 0.5;
    }
    let score = |e: f64| buckets.iter().find(|(s, _)| e < s + 0.5).map_or(0.0, |b| b.1);
    epsilons.iter().map(|&e| score(e)).sum::<f64>() / epsilons.len() as f64
}

/// The epsilon of a threshold from its predicted-positive counts in the two groups, for
/// groups of `n_pos` and `n_neg` models (`None` where the scorer drops the threshold): a
/// table of every pair of counts, made once per pair of sizes and thread.
#[derive(Debug)]
struct Rates {
    n_neg: usize,
    table: Table,
}

/// Epsilons by `pos_predicted * (n_neg + 1) + neg_predicted`.
type Table = std::rc::Rc<Vec<Option<f64>>>;

thread_local! {
    static TABLES: std::cell::RefCell<Vec<((usize, usize), Table)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Rates {
    fn new(n_pos: usize, n_neg: usize) -> Self {
        let table = TABLES.with_borrow_mut(|tables| {
            if let Some((_, t)) = tables.iter().find(|(k, _)| *k == (n_pos, n_neg)) {
                return t.clone();
            }
            let t: Vec<Option<f64>> = (0..=n_pos)
                .flat_map(|a| (0..=n_neg).map(move |b| threshold_epsilon(a, n_pos, b, n_neg)))
                .collect();
            let t = std::rc::Rc::new(t);
            tables.push(((n_pos, n_neg), t.clone()));
            t
        });
        Self { n_neg, table }
    }

    fn epsilon(&self, pos_predicted: usize, neg_predicted: usize) -> Option<f64> {
        self.table[pos_predicted * (self.n_neg + 1) + neg_predicted]
    }
}

/// A threshold's epsilon from its rates, as the scorer computes it.
fn threshold_epsilon(
    pos_predicted: usize,
    n_pos: usize,
    neg_predicted: usize,
    n_neg: usize,
) -> Option<f64> {
    let tpr = pos_predicted as f64 / n_pos as f64;
    let fnr = (n_pos - pos_predicted) as f64 / n_pos as f64;
    let fpr = neg_predicted as f64 / n_neg as f64;
    let tnr = (n_neg - neg_predicted) as f64 / n_neg as f64;
    if fpr + fnr == 0.0 && tpr + tnr == 2.0 {
        return Some(f64::INFINITY);
    }
    if fpr * fnr == 0.0 {
        return None;
    }
    let term = |a: f64, b: f64| {
        let x = 1.0 - DELTA - a;
        (x > 0.0).then(|| x.ln() - b.ln())
    };
    match (term(fpr, fnr), term(fnr, fpr)) {
        (Some(a), Some(b)) => Some(a.max(b).max(0.0)),
        (Some(e), None) | (None, Some(e)) => Some(e.max(0.0)),
        (None, None) => None,
    }
}

/// The largest epsilon of the kept thresholds.
#[derive(Debug, Default)]
struct Best(Option<f64>);

impl Best {
    fn add(&mut self, e: Option<f64>) {
        if let Some(e) = e {
            self.0 = Some(self.0.map_or(e, |b| b.max(e)));
        }
    }

    /// 0 where no threshold was kept (see the module's notes).
    fn value(&self) -> f64 {
        self.0.unwrap_or(0.0)
    }
}

/// numpy's `linspace(start, stop, num)`: `start + i * step`, the last exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> impl Iterator<Item = f64> {
    let step = if num > 1 { (stop - start) / (num - 1) as f64 } else { 0.0 };
    (0..num).map(move |i| if i + 1 == num && num > 1 { stop } else { start + i as f64 * step })
}

/// numpy's median: the middle value, or the mean of the two middle ones.
fn median(v: &[f64]) -> f64 {
    let s = sorted(v);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// How many of the sorted `v` are `>= t`.
fn at_least(v: &[f64], t: f64) -> usize {
    v.len() - v.partition_point(|&x| x < t)
}

/// How many of the sorted `v` are `<= t`.
fn at_most(v: &[f64], t: f64) -> usize {
    v.partition_point(|&x| x <= t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metric.py`'s per-example loop as written: every threshold counted against every model.
    fn brute_force(unlearned: &[f64], retrained: &[f64]) -> f64 {
        let (pos, neg) = if median(retrained) > median(unlearned) {
            (retrained, unlearned)
        } else {
            (unlearned, retrained)
        };
        let range = |v: &[f64]| {
            v.iter().copied().fold(f64::MIN, f64::max) - v.iter().copied().fold(f64::MAX, f64::min)
        };
        let (pd, nd) = (range(pos), range(neg));
        let (largest, smallest) = if pd > nd { (pd, nd) } else { (nd, pd) };
        if smallest / largest < 0.01 {
            return EPSILON_CAP;
        }
        let mean = |v: &[f64], pred: &dyn Fn(f64) -> bool| {
            v.iter().filter(|&&c| pred(c)).count() as f64 / v.len() as f64
        };
        let mut rates = Vec::new();
        let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
        let max = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
        let (p, q) = if pd >= nd { (neg, pos) } else { (pos, neg) };
        let (a, b) = (min(p) + smallest - 2.0, max(p) + 2.0);
        for r in linspace(a, b, ((b - a) * 100.0).ceil() as usize) {
            for l in linspace(r - smallest - 2.0, r - smallest + 2.0, 400) {
                let pp = |c: f64| l <= c && c <= r;
                let (tpr, fpr) = (mean(p, &pp), mean(q, &pp));
                rates.push((tpr, 1.0 - tpr, fpr, 1.0 - fpr));
            }
        }
        let (lo, hi) = (min(pos).min(min(neg)), max(pos).max(max(neg)));
        for t in linspace(lo, hi, ((hi - lo) * 100.0).ceil() as usize) {
            let (tpr, fpr) = (mean(pos, &|c| c >= t), mean(neg, &|c| c >= t));
            rates.push((tpr, 1.0 - tpr, fpr, 1.0 - fpr));
        }
        let mut kept = Vec::new();
        for (tpr, fnr, fpr, tnr) in rates {
            if fpr + fnr == 0.0 && tpr + tnr == 2.0 {
                kept.push(f64::INFINITY);
            } else if fpr * fnr != 0.0 {
                let e1 = (1.0 - DELTA - fpr).ln() - fnr.ln();
                let e2 = (1.0 - DELTA - fnr).ln() - fpr.ln();
                let e = match (e1.is_nan(), e2.is_nan()) {
                    (false, false) => e1.max(e2),
                    (true, false) => e2,
                    (false, true) => e1,
                    (true, true) => continue,
                };
                kept.push(e.max(0.0));
            }
        }
        kept.into_iter().fold(0.0, f64::max).clamp(0.0, EPSILON_CAP)
    }

    /// `n` draws from N(mean, sd) by Box-Muller over a fixed LCG: no dependency, reproducible.
    fn normal(n: usize, mean: f64, sd: f64, seed: u64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut uniform = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (uniform(), uniform());
                mean + sd * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect()
    }

    #[test]
    fn known_cases_get_their_known_epsilons() {
        // Perfect separation with comparable spreads: a threshold with FPR = FNR = 0 exists.
        let low: Vec<f64> = (0..8).map(|i| f64::from(i) * 0.1).collect();
        let high: Vec<f64> = low.iter().map(|c| c + 10.0).collect();
        assert_eq!(epsilon(&low, &high), EPSILON_CAP);
        // The same samples: every threshold has TPR = FPR, so every epsilon is <= 0.
        assert_eq!(epsilon(&low, &low), 0.0);
        // Identical replicates (the identity method) against a spread: capped at once.
        assert_eq!(epsilon(&[3.0; 8], &high), EPSILON_CAP);
        // Both groups one and the same value: nothing to tell apart (no threshold kept).
        assert_eq!(epsilon(&[1.0; 4], &[1.0; 4]), 0.0);
        // Worked out by hand: 4 + 4 models, one sample swapped across a gap. The best single
        // threshold (between 2.x and 10) has TPR 3/4, FPR 1/4: ln(1 - 1e-5 - 1/4) - ln(1/4).
        let a = [0.0, 0.1, 0.2, 10.0];
        let b = [2.0, 2.1, 2.2, 10.1];
        let expected = (0.75 - DELTA).ln() - 0.25f64.ln();
        assert!((epsilon(&a, &b) - brute_force(&a, &b)).abs() < 1e-12);
        assert!(epsilon(&a, &b) >= expected - 1e-12, "{} {expected}", epsilon(&a, &b));
        // A shifted and squeezed distribution with one straggler, recorded from an independent
        // numpy transcription of metric.py (every threshold against every model, in float64):
        // the best rule misses one model in four, epsilon = ln((0.75 - 1e-5) / 0.25).
        let u = [0.0, 0.3, 0.5, 0.9, 1.2, 1.4, 1.9, 2.3];
        let mut r: Vec<f64> = u.iter().map(|c| c * 0.8 + 0.9).collect();
        r[2] = 0.2;
        assert!((epsilon(&u, &r) - 1.0985856216458811).abs() < 1e-12, "{}", epsilon(&u, &r));
    }

    #[test]
    fn counting_by_search_gives_the_brute_force_epsilons() {
        for seed in 0..40u64 {
            let n = [4, 8, 16, 32][seed as usize % 4];
            let shift = (seed % 5) as f64 * 0.4;
            let sd = 0.5 + (seed % 3) as f64;
            let (u, r) = (normal(n, shift, sd, seed), normal(n, 0.0, 1.0, seed + 1000));
            let (fast, slow) = (epsilon(&u, &r), brute_force(&u, &r));
            assert!((fast - slow).abs() < 1e-12, "seed {seed}: {fast} vs {slow}");
        }
    }

    #[test]
    fn scores_and_the_noise_floor_of_small_populations() {
        // N = 32: buckets [0, 0.5) ... [3.5, 4) (ceil(ln 31) = 4) give 1, 1/2, ..., 1/128.
        assert_eq!(
            forget_score(&[0.0, 0.49, 0.5, 3.9, 4.0, 50.0], 32),
            (1.0 + 1.0 + 0.5 + 1.0 / 128.0) / 6.0
        );
        assert_eq!(forget_score(&[EPSILON_CAP; 3], 32), 0.0, "the identity scores 0");
        // Two samples of 32 from one normal distribution score about 0.17 (the issue's
        // figure), far from the 1 that identical distributions would deserve.
        let eps: Vec<f64> = (0..200u64)
            .map(|i| epsilon(&normal(32, 0.0, 1.0, 2 * i), &normal(32, 0.0, 1.0, 2 * i + 1)))
            .collect();
        let f = forget_score(&eps, 32);
        assert!((0.1..0.3).contains(&f), "{f}");
    }
}
