//! What an evaluation yields: each image's prediction and loss ([`Outputs`], computed by the
//! engine that trained the model: `crate::engine::outputs`), the accuracies on the remain,
//! forget and test sets ([`Metrics`]) and the membership-inference attack on the losses.

use crate::mia::Mia;
use crate::tensors::Data;

/// Accuracies in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub remain: f64,
    pub forget: f64,
    pub test: f64,
}

/// Per image of the training and test sets: classified correctly, and its cross-entropy; per
/// training image, its logit-scaled confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub train_correct: Vec<bool>,
    pub test_correct: Vec<bool>,
    /// Cross-entropy per image, exactly: see [`sample_loss`].
    pub train_loss: Vec<f64>,
    pub test_loss: Vec<f64>,
    /// Per training image, the forgetting audit's statistic (see [`confidence`]); empty
    /// unless asked for (`engine::outputs`).
    pub train_confidence: Vec<f64>,
}

impl Outputs {
    /// Accuracy on the remain, forget and test sets.
    pub fn metrics(&self, data: &Data) -> Metrics {
        let percent = |ok: &mut dyn Iterator<Item = bool>, n: usize| {
            100.0 * ok.filter(|&ok| ok).count() as f64 / n as f64
        };
        let train = |ids: &[i64]| {
            percent(&mut ids.iter().map(|&i| self.train_correct[i as usize]), ids.len())
        };
        Metrics {
            remain: train(data.remain()),
            forget: train(data.forget()),
            test: percent(&mut self.test_correct.iter().copied(), self.test_correct.len()),
        }
    }

    /// The membership-inference attack of [`crate::mia`] with its stream from `seed`.
    pub fn mia(&self, data: &Data, seed: u64) -> Mia {
        crate::mia::attack(&self.train_loss, &self.test_loss, data.remain(), data.forget(), seed)
    }
}

/// The cross-entropy of one row of logits against label `y`, in `f64` as
/// `ln(1 + sum_{c != y} exp(z_c - z_y))` (with `ln_1p`), so that confidently classified images
/// keep distinct, tiny losses: computed in `f32` like training's, about 58% of MNIST's
/// training and test images round to a loss of exactly 0, and a membership attack on the loss
/// would see one tie for most of both sets.
pub fn sample_loss(logits: &[f32], y: usize) -> f64 {
    let zy = f64::from(logits[y]);
    let rest: f64 = logits
        .iter()
        .enumerate()
        .filter(|&(c, _)| c != y)
        .map(|(_, &z)| (f64::from(z) - zy).exp())
        .sum();
    rest.ln_1p()
}

/// The per-example statistic of the forgetting audit (LiRA's; the NeurIPS 2023 scorer's):
/// the logit-scaled confidence of a row of logits for its label `y`: `ln p_y - ln(sum_{k != y}
/// p_k)`, in `f64` from the logits less their maximum, `1e-45` added inside both logarithms
/// (as the scorer does).
pub fn confidence(logits: &[f32], y: usize) -> f64 {
    let max = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    let exp = |z: f32| (f64::from(z) - max).exp();
    let total: f64 = logits.iter().map(|&z| exp(z)).sum();
    let correct = exp(logits[y]) / total;
    let wrong: f64 =
        logits.iter().enumerate().filter(|&(k, _)| k != y).map(|(_, &z)| exp(z) / total).sum();
    (correct + 1e-45).ln() - (wrong + 1e-45).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_is_the_log_odds_of_the_label() {
        let logits = [2.0f32, 0.0, -1.0];
        let p: Vec<f64> = logits.iter().map(|&z| f64::from(z).exp()).collect();
        let total: f64 = p.iter().sum();
        let expected = (p[0] / total).ln() - ((p[1] + p[2]) / total).ln();
        assert!((confidence(&logits, 0) - expected).abs() < 1e-12);
        // Far beyond exp's range the max-subtracted form stays finite, and the 1e-45 inside the
        // logarithms caps a confidence at -ln(1e-45) = 103.6 either way.
        let cap = -(1e-45f64).ln();
        assert!((confidence(&[200.0, 0.0], 0) - cap).abs() < 1e-9);
        assert!((confidence(&[200.0, 0.0], 1) + cap).abs() < 1e-9);
    }

    #[test]
    fn sample_loss_is_the_cross_entropy_without_rounding_confident_rows_to_zero() {
        let logits = [1.0f32, 2.0, 0.5];
        let log_sum = logits.iter().map(|&z| f64::from(z).exp()).sum::<f64>().ln();
        for y in 0..3 {
            let expected = log_sum - f64::from(logits[y]);
            assert!((sample_loss(&logits, y) - expected).abs() < 1e-12, "{y}");
        }
        // A margin of 40: f32's log-softmax gives exactly 0; the exact value is 2 e^-40.
        let confident = [40.0f32, 0.0, 0.0];
        let loss = sample_loss(&confident, 0);
        assert!((loss / (2.0 * (-40f64).exp()) - 1.0).abs() < 1e-12, "{loss}");
        assert!(sample_loss(&[50.0f32, 0.0, 0.0], 0) < loss, "ordered by margin");
    }
}
