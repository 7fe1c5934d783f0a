//! U-LiRA (Hayes et al. 2024, "Inexact Unlearning Needs More Careful Evaluations to Avoid a
//! False Sense of Privacy"): a per-example likelihood-ratio attack on unlearning, from a
//! population of shadow models.
//!
//! Every shadow trained on a random half of the training set and then unlearned its own
//! forget set (drawn within its half) with the method under attack. Leave-one-out: each shadow
//! in turn is the target. For each example `x` of the target's forget set (label: unlearned)
//! and as many examples of the scenario's population the target never saw (label: never
//! seen), Gaussians are fitted to `x`'s confidence under the *other* shadows that unlearned
//! `x` (IN) and under those that never saw it (OUT); the target's confidence scores
//! `ln N(c; IN) - ln N(c; OUT)`. An example with fewer than `min_members` IN or OUT shadows is
//! skipped. Perfect unlearning makes IN and OUT one distribution: accuracy 0.5, AUC 0.5.

/// What a shadow did with one example of the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Not in its half: never seen.
    Out,
    /// In its half and remained: trained on (neither group).
    Remain,
    /// In its half and in its forget set: trained on, then unlearned.
    Forget,
}

/// The attack's results over every target.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Attack {
    /// The share of correct decisions at the likelihood ratio 1 (the Bayes rule for the
    /// balanced classes).
    pub accuracy: f64,
    /// The area under the ROC curve (ties count half).
    pub auc: f64,
    /// The largest true-positive rate at a false-positive rate of at most 1% and 5%.
    pub tpr_at_1: f64,
    pub tpr_at_5: f64,
    /// Decisions made, and examples skipped for too few IN or OUT shadows.
    pub scored: usize,
    pub skipped: usize,
}

/// One decision of the attack: target shadow `target` scored population example `example`
/// (a position in the population), which it unlearned (`true`) or never saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub target: usize,
    pub example: usize,
    pub unlearned: bool,
    /// `ln N(c; IN) - ln N(c; OUT)`: above 0 is a call of "unlearned".
    pub score: f64,
}

/// The attack's results: over every decision, per target, and the decisions themselves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Over every target's decisions pooled.
    pub pooled: Attack,
    /// Each target's own (leave-one-out) results, in shadow order; `None` for a target
    /// without decisions of both kinds.
    pub targets: Vec<Option<Attack>>,
    /// In target order, each target's forget examples (population order) then its never-seen
    /// ones (in `never_seen`'s order).
    pub decisions: Vec<Decision>,
}

/// The smallest standard deviation a fitted Gaussian gets, so that identical confidences (a
/// method that is the identity) give a finite, decisive likelihood.
const MIN_STD: f64 = 1e-3;

/// Runs the attack. `confidences[k][p]` is shadow `k`'s confidence on population example `p`,
/// `membership[k][p]` what shadow `k` did with it, and `never_seen[k]` the population examples
/// (positions) target `k` is scored on as non-members, as many as its forget set and all
/// `Out` for it.
pub fn attack(
    confidences: &[&[f32]],
    membership: &[Vec<Membership>],
    never_seen: &[Vec<usize>],
    min_members: usize,
) -> Outcome {
    let shadows = confidences.len();
    let mut decisions: Vec<Decision> = Vec::new();
    let mut skipped = 0;
    let mut targets = Vec::with_capacity(shadows);
    for target in 0..shadows {
        let first = decisions.len();
        let forget = (0..membership[target].len())
            .filter(|&p| membership[target][p] == Membership::Forget)
            .map(|p| (p, true));
        let never = never_seen[target].iter().map(|&p| (p, false));
        for (p, unlearned) in forget.chain(never) {
            let group = |m: Membership| -> Vec<f64> {
                (0..shadows)
                    .filter(|&k| k != target && membership[k][p] == m)
                    .map(|k| f64::from(confidences[k][p]))
                    .collect()
            };
            let (inside, outside) = (group(Membership::Forget), group(Membership::Out));
            if inside.len() < min_members || outside.len() < min_members {
                skipped += 1;
                continue;
            }
            let c = f64::from(confidences[target][p]);
            let score = log_normal(c, &inside) - log_normal(c, &outside);
            decisions.push(Decision { target, example: p, unlearned, score });
        }
        let mut own: Vec<(f64, bool)> =
            decisions[first..].iter().map(|d| (d.score, d.unlearned)).collect();
        let both = own.iter().any(|d| d.1) && own.iter().any(|d| !d.1);
        targets.push(both.then(|| rates(&mut own)));
    }
    let mut all: Vec<(f64, bool)> = decisions.iter().map(|d| (d.score, d.unlearned)).collect();
    let mut pooled = rates(&mut all);
    pooled.skipped = skipped;
    Outcome { pooled, targets, decisions }
}

/// `ln N(c; mean, std)` of `sample`'s mean and sample standard deviation (at least
/// [`MIN_STD`]), without the constant.
fn log_normal(c: f64, sample: &[f64]) -> f64 {
    let n = sample.len() as f64;
    let mean = sample.iter().sum::<f64>() / n;
    let var = sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let std = var.sqrt().max(MIN_STD);
    -0.5 * ((c - mean) / std).powi(2) - std.ln()
}

/// Accuracy at score 0, AUC and TPR at low FPR of `(score, positive)` decisions.
fn rates(decisions: &mut [(f64, bool)]) -> Attack {
    let positives = decisions.iter().filter(|d| d.1).count();
    let negatives = decisions.len() - positives;
    if positives == 0 || negatives == 0 {
        return Attack { scored: decisions.len(), ..Attack::default() };
    }
    let correct = decisions.iter().filter(|&&(s, p)| (s > 0.0) == p).count();
    // Descending scores: each distinct score is a threshold (ties taken together).
    decisions.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp, mut auc) = (0usize, 0usize, 0.0);
    let (mut tpr_at_1, mut tpr_at_5) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < decisions.len() {
        let (tp0, fp0) = (tp, fp);
        let score = decisions[i].0;
        while i < decisions.len() && decisions[i].0 == score {
            if decisions[i].1 {
                tp += 1
            } else {
                fp += 1
            }
            i += 1;
        }
        // The trapezoid between the two ROC points (ties half).
        auc += (fp - fp0) as f64 * (tp + tp0) as f64 / 2.0;
        let (tpr, fpr) = (tp as f64 / positives as f64, fp as f64 / negatives as f64);
        if fpr <= 0.01 {
            tpr_at_1 = tpr_at_1.max(tpr);
        }
        if fpr <= 0.05 {
            tpr_at_5 = tpr_at_5.max(tpr);
        }
    }
    Attack {
        accuracy: correct as f64 / decisions.len() as f64,
        auc: auc / (positives * negatives) as f64,
        tpr_at_1,
        tpr_at_5,
        scored: decisions.len(),
        skipped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Membership::*;

    #[test]
    fn rates_of_hand_made_decisions() {
        // Scores 4 3 2 1 with labels + - + -: ROC points (0,.5) (.5,.5) (.5,1) (1,1): AUC .75.
        let mut d = vec![(4.0, true), (3.0, false), (2.0, true), (1.0, false)];
        let a = rates(&mut d);
        assert_eq!((a.auc, a.tpr_at_1, a.tpr_at_5, a.scored), (0.75, 0.5, 0.5, 4));
        // Threshold 0: all four called positive: accuracy 1/2.
        assert_eq!(a.accuracy, 0.5);
        // Ties count half: one tied pair is AUC 0.5.
        assert_eq!(rates(&mut [(1.0, true), (1.0, false)]).auc, 0.5);
        let mut d = vec![(1.0, true), (-1.0, false), (2.0, true), (-3.0, false)];
        assert_eq!(rates(&mut d).accuracy, 1.0);
    }

    /// Shadows whose confidence on an example is high when they unlearned it (a method that
    /// forgets nothing) against shadows whose confidence never depends on it (retrain).
    #[test]
    fn separates_a_method_that_remembers_and_not_one_that_forgets() {
        let (shadows, examples) = (40, 60);
        // A fixed pseudo-random sequence (xorshift): halves, forget sets and noise.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let membership: Vec<Vec<Membership>> = (0..shadows)
            .map(|_| {
                (0..examples)
                    .map(|_| match (next() < 0.5, next() < 0.75) {
                        (false, _) => Out,
                        (true, true) => Forget,
                        (true, false) => Remain,
                    })
                    .collect()
            })
            .collect();
        let noise: Vec<Vec<f32>> =
            (0..shadows).map(|_| (0..examples).map(|_| next() as f32).collect()).collect();
        let noise = |k: usize, p: usize| noise[k][p];
        let never_seen: Vec<Vec<usize>> = (0..shadows)
            .map(|k| {
                let forgot = membership[k].iter().filter(|&&m| m == Forget).count();
                (0..examples).filter(|&p| membership[k][p] == Out).take(forgot).collect()
            })
            .collect();
        let conf = |remembers: bool| -> Vec<Vec<f32>> {
            (0..shadows)
                .map(|k| {
                    (0..examples)
                        .map(|p| {
                            let seen = membership[k][p] != Out;
                            noise(k, p) + if remembers && seen { 5.0 } else { 0.0 }
                        })
                        .collect()
                })
                .collect()
        };
        fn slices(c: &[Vec<f32>]) -> Vec<&[f32]> {
            c.iter().map(Vec::as_slice).collect()
        }
        let (remembers, forgets) = (conf(true), conf(false));
        let identity = attack(&slices(&remembers), &membership, &never_seen, 2);
        let retrain = attack(&slices(&forgets), &membership, &never_seen, 2);
        let (i, r) = (identity.pooled, retrain.pooled);
        assert!(i.accuracy > 0.95 && i.auc > 0.95, "{i:?}");
        assert!((r.auc - 0.5).abs() < 0.2, "{r:?}");
        assert!(i.scored > 100 && i.scored == r.scored);
        // Per target: the same decisions (they depend on memberships only), each target's
        // own rates, and the pooled counts add up.
        assert_eq!(identity.decisions.len(), i.scored);
        let same = |d: &[Decision]| d.iter().map(|d| (d.target, d.example)).collect::<Vec<_>>();
        assert_eq!(same(&identity.decisions), same(&retrain.decisions));
        let scored: usize = identity.targets.iter().flatten().map(|t| t.scored).sum();
        assert_eq!(scored, i.scored);
        for (k, t) in identity.targets.iter().enumerate() {
            let t = t.as_ref().expect("every target has both kinds here");
            let mut own: Vec<(f64, bool)> = identity
                .decisions
                .iter()
                .filter(|d| d.target == k)
                .map(|d| (d.score, d.unlearned))
                .collect();
            assert_eq!(*t, rates(&mut own));
            assert!(t.accuracy > 0.8, "target {k}: {t:?}");
        }
        // A minimum nobody reaches skips everything.
        let none = attack(&slices(&remembers), &membership, &never_seen, shadows);
        let n = none.pooled;
        assert_eq!((n.scored, n.skipped), (0, i.scored + i.skipped));
        assert!(none.targets.iter().all(Option::is_none) && none.decisions.is_empty());
    }
}
