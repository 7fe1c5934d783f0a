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
//! here the samples are sorted and counted by walking them as the thresholds ascend (the same
//! rates), and double thresholds that cannot beat the best epsilon found so far are passed
//! over by a bound (epsilon grows with the positives and falls with the negatives a rule
//! predicts): the same maximum, about 100 times fewer rules tried at 512 models. Rates and logarithms are
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
/// Lefts per block whose bound is tried before its lefts are (see `epsilon`).
const BLOCK: usize = 25;

/// One forget example's epsilon from its confidences under the unlearned and the retrained
/// models.
pub fn epsilon(unlearned: &[f64], retrained: &[f64]) -> f64 {
    epsilon_sorted(&sorted(unlearned), &sorted(retrained))
}

/// [`epsilon`] of confidences already in ascending order: scoring many subsets of the same
/// populations sorts each example once.
pub fn epsilon_sorted(unlearned: &[f64], retrained: &[f64]) -> f64 {
    debug_assert!(unlearned.is_sorted_by(|a, b| a <= b) && retrained.is_sorted_by(|a, b| a <= b));
    let (pos, neg) = if median(retrained) > median(unlearned) {
        (retrained, unlearned)
    } else {
        (unlearned, retrained)
    };
    let range = |v: &[f64]| v[v.len() - 1] - v[0];
    let (pos_range, neg_range) = (range(pos), range(neg));
    let (largest, smallest) =
        if pos_range > neg_range { (pos_range, neg_range) } else { (neg_range, pos_range) };
    if smallest / largest < 0.01 {
        return EPSILON_CAP;
    }
    let mut best = Best::default();
    // Single thresholds: positive when c >= t.
    let (lo, hi) = (pos[0].min(neg[0]), pos[pos.len() - 1].max(neg[neg.len() - 1]));
    let single = Rates::new(pos.len(), neg.len());
    // The thresholds ascend, so the models below each only grow: walk them.
    let (mut pos_below, mut neg_below) = (Count::new(pos), Count::new(neg));
    for t in linspace(lo, hi, ((hi - lo) * PER_UNIT).ceil() as usize) {
        best.add(single.epsilon(pos.len() - pos_below.below(t), neg.len() - neg_below.below(t)));
    }
    // Double thresholds around the peaky group `p`: it is predicted when l <= c <= r.
    let (p, q) = if pos_range >= neg_range { (neg, pos) } else { (pos, neg) };
    let double = Rates::new(p.len(), q.len());
    let width = smallest;
    let (start, end) = (p[0] + width - BUFFER, p[p.len() - 1] + BUFFER);
    // A right threshold's lefts ascend, so the models inside [l, r] only leave as l moves:
    // no pair of counts exceeds p's at its first left or goes below q's at its last, and
    // epsilon grows with p's count and falls with q's (`Rates::bound`). Rights are taken by
    // that bound, largest first, until none can beat the best found: the same maximum as
    // trying them all, in a fraction of the time. The rights ascend, and so do their lefts:
    // every count here is a walk, not a search.
    let (mut p_upto, mut q_upto) = (Count::new(p), Count::new(q));
    let (mut p_first, mut q_first, mut q_last) = (Count::new(p), Count::new(q), Count::new(q));
    let mut rights: Vec<Right> = linspace(start, end, ((end - start) * PER_UNIT).ceil() as usize)
        .map(|r| {
            let (first, last) = (r - width - BUFFER, r - width + BUFFER);
            let right = Right {
                r,
                p_upto: p_upto.at_most(r),
                q_upto: q_upto.at_most(r),
                p_below: p_first.below(first),
                q_below: q_first.below(first),
                bound: 0.0,
            };
            let fewest_q = right.q_upto.saturating_sub(q_last.below(last));
            let bound = double.bound(right.p_upto.saturating_sub(right.p_below), fewest_q);
            Right { bound, ..right }
        })
        .collect();
    rights.sort_unstable_by(|a, b| b.bound.total_cmp(&a.bound));
    for right in rights {
        if right.bound <= best.0 || best.0 >= EPSILON_CAP {
            break;
        }
        let Right { r, p_upto, q_upto, .. } = right;
        let lefts = Lefts::new(r - width - BUFFER, r - width + BUFFER);
        // The models below each left only grow as l ascends, and change only where l passes
        // a model: visit the lefts where one does, not all 400. And the same bound as the
        // right's holds for each block of lefts: blocks that cannot beat the best are
        // passed over.
        let (mut i, mut block_end) = (0, 0);
        let (mut p_below, mut q_below) = (right.p_below, right.q_below);
        // q's count below each block's last left: the blocks ascend, so it is a walk too.
        let mut q_last = Count { v: q, n: right.q_below };
        let mut seen = (usize::MAX, usize::MAX);
        loop {
            if i >= block_end {
                let end = ((i / BLOCK + 1) * BLOCK).min(LEFTS);
                let fewest_q = q_upto.saturating_sub(q_last.below(lefts.at(end - 1)));
                let bound = double.bound(p_upto.saturating_sub(p_below), fewest_q);
                if bound <= best.0 || best.0 >= EPSILON_CAP {
                    if end == LEFTS {
                        break;
                    }
                    i = end;
                    let l = lefts.at(i);
                    p_below = past(p, p_below, l);
                    q_below = past(q, q_below, l);
                    continue;
                }
                block_end = end;
            }
            let inside = (p_upto.saturating_sub(p_below), q_upto.saturating_sub(q_below));
            if inside != seen {
                best.add(double.epsilon(inside.0, inside.1));
                seen = inside;
            }
            let next = match (p.get(p_below), q.get(q_below)) {
                (Some(&a), Some(&b)) => a.min(b),
                (Some(&a), None) | (None, Some(&a)) => a,
                (None, None) => break,
            };
            // The first left above the next model, where it and all below that left count.
            let Some(j) = lefts.first_above(next) else { break };
            i = j;
            let l = lefts.at(i);
            p_below = past(p, p_below, l);
            q_below = past(q, q_below, l);
        }
    }
    best.value().clamp(0.0, EPSILON_CAP)
}

/// F: the mean over forget examples of their bucket's points, for populations of `models`
/// unlearned models.
pub fn forget_score(epsilons: &[f64], models: usize) -> f64 {
    points(epsilons, models).iter().sum::<f64>() / epsilons.len() as f64
}

/// Each forget example's points (its bucket's), for populations of `models` unlearned
/// models: F is their mean.
pub fn points(epsilons: &[f64], models: usize) -> Vec<f64> {
    let max_epsilon = (models as f64 - 1.0).ln().ceil();
    let (mut buckets, mut start, mut points) = (Vec::new(), 0.0, 1.0);
    while start + 0.5 <= max_epsilon {
        buckets.push((start, points));
        points /= 2.0;
        start += 0.5;
    }
    let score = |e: f64| buckets.iter().find(|(s, _)| e < s + 0.5).map_or(0.0, |b| b.1);
    epsilons.iter().map(|&e| score(e)).collect()
}

/// The epsilon of a threshold from its predicted-positive counts in the two groups, for
/// groups of `n_pos` and `n_neg` models. Each of its two terms is a logarithm of one group's
/// rate less one of the other's, so four tables of one logarithm per count (a few KB, in L1
/// cache) give every pair's epsilon with the scorer's own operations: the same bits as
/// the scorer's per-threshold arithmetic (the tests' `threshold_epsilon`), without a table of every pair (2 MB at 512 models, and a cache
/// miss per look-up).
#[derive(Debug)]
struct Rates {
    n_pos: usize,
    logs: std::rc::Rc<Logs>,
}

/// By count predicted positive: `ln FNR` and `ln(1 - delta - FNR)` of the positives,
/// `ln(1 - delta - FPR)` and `ln FPR` of the negatives; `-inf` where the scorer drops a
/// term (the logarithm of a non-positive number).
#[derive(Debug)]
struct Logs {
    fnr: Vec<f64>,
    not_fnr: Vec<f64>,
    not_fpr: Vec<f64>,
    fpr: Vec<f64>,
}

/// A thread's tables, by `(n_pos, n_neg)`: made once per pair of sizes.
type Cached = ((usize, usize), std::rc::Rc<Logs>);

thread_local! {
    static LOGS: std::cell::RefCell<Vec<Cached>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Rates {
    fn new(n_pos: usize, n_neg: usize) -> Self {
        let logs = LOGS.with_borrow_mut(|all| {
            if let Some((_, l)) = all.iter().find(|(k, _)| *k == (n_pos, n_neg)) {
                return l.clone();
            }
            let ln = |x: f64| if x > 0.0 { x.ln() } else { f64::NEG_INFINITY };
            let fnr = |a: usize| (n_pos - a) as f64 / n_pos as f64;
            let fpr = |b: usize| b as f64 / n_neg as f64;
            let logs = std::rc::Rc::new(Logs {
                fnr: (0..=n_pos).map(|a| ln(fnr(a))).collect(),
                not_fnr: (0..=n_pos).map(|a| ln(1.0 - DELTA - fnr(a))).collect(),
                not_fpr: (0..=n_neg).map(|b| ln(1.0 - DELTA - fpr(b))).collect(),
                fpr: (0..=n_neg).map(|b| ln(fpr(b))).collect(),
            });
            all.push(((n_pos, n_neg), logs.clone()));
            logs
        });
        Self { n_pos, logs }
    }

    /// The threshold's epsilon, `-inf` where the scorer drops it.
    #[inline]
    fn epsilon(&self, pos_predicted: usize, neg_predicted: usize) -> f64 {
        let (a, b) = (pos_predicted, neg_predicted);
        if a == self.n_pos || b == 0 {
            // FNR = 0 or FPR = 0: infinite where both are, dropped where one is.
            return if a == self.n_pos && b == 0 { f64::INFINITY } else { f64::NEG_INFINITY };
        }
        let l = &*self.logs;
        let e = (l.not_fpr[b] - l.fnr[a]).max(l.not_fnr[a] - l.fpr[b]);
        if e == f64::NEG_INFINITY { e } else { e.max(0.0) }
    }

    /// The largest epsilon of any threshold that predicts at most `most_pos` positives and at
    /// least `fewest_neg` negatives as positive. Where kept (0 < FNR and 0 < FPR), epsilon
    /// grows with the positives predicted and falls with the negatives (each term is
    /// `ln` of a rate that does, less `ln` of one that does the opposite; a term dropped for
    /// a non-positive logarithm is where its rate has gone past 1 - delta): the best kept
    /// one is at `(min(most_pos, n_pos - 1), max(fewest_neg, 1))`. Only FPR = FNR = 0,
    /// infinite, escapes that, when it is in reach.
    fn bound(&self, most_pos: usize, fewest_neg: usize) -> f64 {
        if most_pos >= self.n_pos && fewest_neg == 0 {
            return f64::INFINITY;
        }
        self.epsilon(most_pos.min(self.n_pos - 1), fewest_neg.max(1))
    }
}

/// The largest epsilon of the kept thresholds, `-inf` before any.
#[derive(Debug)]
struct Best(f64);

impl Default for Best {
    fn default() -> Self {
        Self(f64::NEG_INFINITY)
    }
}

impl Best {
    /// Keeps `e` if it is larger (a dropped threshold, `-inf`, never is).
    fn add(&mut self, e: f64) {
        self.0 = self.0.max(e);
    }

    /// 0 where no threshold was kept (see the module's notes).
    fn value(&self) -> f64 {
        if self.0 == f64::NEG_INFINITY { 0.0 } else { self.0 }
    }
}

/// numpy's `linspace(start, stop, num)`: `start + i * step`, the last exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> impl Iterator<Item = f64> {
    let step = if num > 1 { (stop - start) / (num - 1) as f64 } else { 0.0 };
    (0..num).map(move |i| if i + 1 == num && num > 1 { stop } else { start + i as f64 * step })
}

/// The double thresholds' lefts for one right: numpy's `linspace(first, last, LEFTS)`.
struct Lefts {
    first: f64,
    last: f64,
    step: f64,
}

impl Lefts {
    fn new(first: f64, last: f64) -> Self {
        Self { first, last, step: (last - first) / (LEFTS - 1) as f64 }
    }

    /// The `i`th left, as `linspace` computes it.
    fn at(&self, i: usize) -> f64 {
        if i + 1 == LEFTS { self.last } else { self.first + i as f64 * self.step }
    }

    /// The index of the smallest left above `x`, `None` if none is.
    fn first_above(&self, x: f64) -> Option<usize> {
        // A guess from the spacing, then corrected against the lefts as computed.
        let guess = ((x - self.first) / self.step).floor() + 1.0;
        let mut i = if guess.is_nan() { 0 } else { guess.clamp(0.0, LEFTS as f64) as usize };
        while i > 0 && self.at(i - 1) > x {
            i -= 1;
        }
        while i < LEFTS && self.at(i) <= x {
            i += 1;
        }
        (i < LEFTS).then_some(i)
    }
}

/// numpy's median of ascending `s`: the middle value, or the mean of the two middle ones.
fn median(s: &[f64]) -> f64 {
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// A right threshold and its counts: of p and q at most `r`, and below its first left.
struct Right {
    r: f64,
    p_upto: usize,
    q_upto: usize,
    p_below: usize,
    q_below: usize,
    /// The largest epsilon any of its lefts can give (`Rates::bound`).
    bound: f64,
}

/// Counts of a sorted slice below (or at most) thresholds that never descend.
struct Count<'a> {
    v: &'a [f64],
    n: usize,
}

impl<'a> Count<'a> {
    fn new(v: &'a [f64]) -> Self {
        Self { v, n: 0 }
    }

    /// How many are `< t`.
    fn below(&mut self, t: f64) -> usize {
        self.n = past(self.v, self.n, t);
        self.n
    }

    /// How many are `<= t`.
    fn at_most(&mut self, t: f64) -> usize {
        while self.n + STRIDE <= self.v.len() && self.v[self.n + STRIDE - 1] <= t {
            self.n += STRIDE;
        }
        while self.n < self.v.len() && self.v[self.n] <= t {
            self.n += 1;
        }
        self.n
    }
}

/// How many of the sorted `v` are `< t`, knowing that the first `n` are: a walk from `n`
/// that strides over `STRIDE` at a time while the last of them is below (the walks between
/// lefts cross tens of models at 512).
fn past(v: &[f64], mut n: usize, t: f64) -> usize {
    while n + STRIDE <= v.len() && v[n + STRIDE - 1] < t {
        n += STRIDE;
    }
    while n < v.len() && v[n] < t {
        n += 1;
    }
    n
}

/// Models a walk strides over at a time.
const STRIDE: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;

    /// A threshold's epsilon from its rates, as the scorer computes it (`None` where it drops
    /// the threshold).
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

    /// `metric.py`'s per-example loop as written: every threshold counted against every model.
    fn brute_force(unlearned: &[f64], retrained: &[f64]) -> f64 {
        let (pos, neg) = if median(&sorted(retrained)) > median(&sorted(unlearned)) {
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

    /// Larger populations, where most right thresholds are passed over by their bound, and
    /// spreads from peaky to wide on either side: still every epsilon as brute force's.
    #[test]
    fn passing_over_rights_by_their_bound_keeps_the_brute_force_epsilons() {
        for seed in 0..24u64 {
            let n = [64, 128][seed as usize % 2];
            let shift = [0.0, 0.3, 1.0, 2.5][seed as usize % 4];
            let sd = [0.05, 0.4, 1.0, 2.0, 3.0, 0.7][seed as usize % 6];
            let (u, r) = (normal(n, shift, sd, seed), normal(n, 0.0, 1.0, seed + 500));
            let (fast, slow) = (epsilon(&u, &r), brute_force(&u, &r));
            assert!((fast - slow).abs() < 1e-12, "seed {seed}: {fast} vs {slow}");
            let (fast, slow) = (epsilon(&r, &u), brute_force(&r, &u));
            assert!((fast - slow).abs() < 1e-12, "seed {seed}, swapped: {fast} vs {slow}");
        }
    }

    #[test]
    fn rates_from_four_logarithm_tables_are_the_scorers_epsilons_bit_for_bit() {
        for (n_pos, n_neg) in [(1, 1), (4, 7), (64, 64), (256, 512), (512, 512)] {
            let rates = Rates::new(n_pos, n_neg);
            for a in 0..=n_pos {
                for b in 0..=n_neg {
                    let expected =
                        threshold_epsilon(a, n_pos, b, n_neg).unwrap_or(f64::NEG_INFINITY);
                    assert_eq!(
                        rates.epsilon(a, b).to_bits(),
                        expected.to_bits(),
                        "{a}/{n_pos} {b}/{n_neg}"
                    );
                }
            }
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
