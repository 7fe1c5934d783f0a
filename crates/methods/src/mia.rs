//! Membership-inference efficacy (MIA): how many forget samples a loss-based attacker calls
//! non-members, as in the unlearning literature (Jia et al. 2023, Fan et al. 2024), with a
//! logistic regression in place of their SVM.
//!
//! The attack, exactly:
//! 1. feature: `x = ln(max(loss, 1e-300))`, the sample's cross-entropy under the model,
//!    computed exactly in `f64` (`eval::sample_loss`);
//! 2. data: `n = min(|remain|, |test|)` remain samples (members, label 1) and `n` test
//!    samples (non-members, label 0), each the first `n` of a permutation drawn from the
//!    stream `data::rng::stream(seed, "mia")` (remain first, then test), then each list split in two
//!    halves: the first trains the attack, the second measures it;
//! 3. model: `P(member | x) = sigmoid(a * z + b)` with `z` the feature standardised by the
//!    training half's mean and standard deviation, fitted by Newton's method on the mean
//!    log-loss plus `1e-4 * a^2 / 2` (which keeps it finite on separable data), from `a = b = 0`
//!    until the step is below 1e-10 or after 100 steps;
//! 4. reported: `mia`, the percentage of forget samples with `P(member) < 0.5`, and
//!    `attack_acc`, the attack's accuracy (%) on the held-out balanced half.
//!
//! A model that has never seen the forget set scores them like test samples (the retrained
//! model's `mia` is the attack's true-negative rate); the original model, which trained on
//! them, scores most as members.

use data::rng::{Rng, permutation, stream};

/// The attack protocol's version: stored with each evaluation, so that results of an earlier
/// protocol are recomputed rather than reused. 2: exact `f64` losses (1 took `f32` losses,
/// most of which round to 0).
pub const PROTOCOL: u32 = 2;

/// The attack's result, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mia {
    /// Forget samples called non-members.
    pub mia: f64,
    /// Held-out accuracy of the attack on remain (members) vs test (non-members).
    pub attack_acc: f64,
}

/// Runs the attack on per-sample losses: `train_loss[i]` for training sample `i` (indexed by
/// `remain` and `forget`) and `test_loss` for the test set.
pub fn attack(
    train_loss: &[f64],
    test_loss: &[f64],
    remain: &[i64],
    forget: &[i64],
    seed: u64,
) -> Mia {
    let feature = |loss: f64| loss.max(1e-300).ln();
    let mut rng = stream(seed, "mia");
    let n = remain.len().min(test_loss.len());
    let members: Vec<f64> =
        draw(&mut rng, remain.len(), n).map(|j| feature(train_loss[remain[j] as usize])).collect();
    let others: Vec<f64> =
        draw(&mut rng, test_loss.len(), n).map(|j| feature(test_loss[j])).collect();
    let half = n / 2;
    let (fit_x, fit_y): (Vec<f64>, Vec<f64>) = members[..half]
        .iter()
        .map(|&x| (x, 1.0))
        .chain(others[..half].iter().map(|&x| (x, 0.0)))
        .unzip();
    let model = Logistic::fit(&fit_x, &fit_y);
    let held_out = members[half..].iter().filter(|&&x| model.member(x)).count()
        + others[half..].iter().filter(|&&x| !model.member(x)).count();
    let nonmembers =
        forget.iter().filter(|&&i| !model.member(feature(train_loss[i as usize]))).count();
    Mia {
        mia: 100.0 * nonmembers as f64 / forget.len().max(1) as f64,
        attack_acc: 100.0 * held_out as f64 / (2 * (n - half)).max(1) as f64,
    }
}

/// `k` distinct indices below `n`: the first `k` of a random permutation.
fn draw(rng: &mut Rng, n: usize, k: usize) -> impl Iterator<Item = usize> {
    permutation(rng, n).into_iter().take(k).map(|i| i as usize)
}

/// A one-feature logistic regression on a standardised input.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Logistic {
    mean: f64,
    std: f64,
    a: f64,
    b: f64,
}

/// The ridge on the slope: keeps separable data from driving it to infinity.
const RIDGE: f64 = 1e-4;

impl Logistic {
    fn fit(x: &[f64], y: &[f64]) -> Self {
        let n = x.len().max(1) as f64;
        let mean = x.iter().sum::<f64>() / n;
        let std = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let std = if std > 0.0 { std } else { 1.0 };
        let z: Vec<f64> = x.iter().map(|v| (v - mean) / std).collect();
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for _ in 0..100 {
            // Gradient and Hessian of mean log-loss + RIDGE * a^2 / 2.
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (RIDGE * a, 0.0, RIDGE, 0.0, 0.0);
            for (&z, &y) in z.iter().zip(y) {
                let p = sigmoid(a * z + b);
                let (r, w) = ((p - y) / n, p * (1.0 - p) / n);
                ga += r * z;
                gb += r;
                haa += w * z * z;
                hab += w * z;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if !(det.is_finite() && det > 0.0) {
                break;
            }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            a -= da;
            b -= db;
            if da.abs().max(db.abs()) < 1e-10 {
                break;
            }
        }
        Self { mean, std, a, b }
    }

    /// Whether the attack calls a sample with feature `x` a member.
    fn member(&self, x: f64) -> bool {
        sigmoid(self.a * (x - self.mean) / self.std + self.b) >= 0.5
    }
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_regression_finds_the_boundary_between_two_groups() {
        // Members at x in [0, 1), non-members at x in [2, 3): the boundary is near 1.5.
        let x: Vec<f64> = (0..100)
            .map(|i| f64::from(i) / 100.0)
            .chain((0..100).map(|i| 2.0 + f64::from(i) / 100.0))
            .collect();
        let y: Vec<f64> = (0..200).map(|i| if i < 100 { 1.0 } else { 0.0 }).collect();
        let m = Logistic::fit(&x, &y);
        assert!(m.member(0.9) && m.member(1.3) && !m.member(1.7) && !m.member(2.1), "{m:?}");
        // Overlapping groups: the fitted boundary sits where the densities cross.
        let x = [0.0, 1.0, 2.0, 1.0, 2.0, 3.0];
        let y = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let m = Logistic::fit(&x, &y);
        assert!(m.member(1.4) && !m.member(1.6), "{m:?}");
        assert!(m.a < 0.0 && (m.b / m.a).abs() < 1e-6, "symmetric around the mean: {m:?}");
    }

    #[test]
    fn forget_samples_with_member_like_losses_are_members() {
        // Training losses 1e-4 (remembered), test losses 1.0 (unseen).
        let mut train = vec![1e-4f64; 1000];
        let test = vec![1.0f64; 400];
        let remain: Vec<i64> = (0..800).collect();
        let forget: Vec<i64> = (800..1000).collect();
        let remembered = attack(&train, &test, &remain, &forget, 0);
        assert_eq!(remembered, Mia { mia: 0.0, attack_acc: 100.0 });
        // Forgotten: the forget samples now look like test samples, but for a quarter.
        for (k, l) in train[800..].iter_mut().enumerate() {
            *l = if k % 4 == 0 { 1e-4 } else { 0.8 };
        }
        let forgotten = attack(&train, &test, &remain, &forget, 0);
        assert_eq!(forgotten, Mia { mia: 75.0, attack_acc: 100.0 });
        assert_eq!(attack(&train, &test, &remain, &forget, 0), forgotten, "deterministic");
    }
}
