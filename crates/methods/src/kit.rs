//! What the baselines of `crate::catalog` share: the optimiser, relabelling forget samples with
//! random wrong classes, losses against such labels, an epoch's running losses and the L1
//! norm; the batch loops are `crate::loops`'. The baselines start from a copy of the original
//! model and train with libtorch's autograd (their Adam is `torch.optim.Adam`'s).

use data::rng::Rng;
use model::Classifier;
use rand::Rng as _;
use tch::{Kind, Reduction, Tensor};

pub(crate) use crate::engine::autograd::adam;
use crate::engine::step::{EpochStats, Rows, TensorTotals};
pub(crate) use crate::loops::{for_batches, for_pairs};
use crate::tensors::Data;

/// The training labels with every forget sample's label replaced by a wrong class drawn
/// uniformly from the other `classes - 1` (in forget-set order, from `rng`).
pub(crate) fn random_wrong_labels(data: &Data, classes: usize, rng: &mut Rng) -> Tensor {
    let classes = classes as i64;
    let mut labels: Vec<i64> =
        data.images().dataset().train.labels.iter().map(|&y| i64::from(y)).collect();
    for &i in data.forget() {
        let shift = rng.random_range(1..classes);
        labels[i as usize] = (labels[i as usize] + shift) % classes;
    }
    Tensor::from_slice(&labels).to_device(data.device())
}

/// Mean cross-entropy of `model` on `rows` against `labels` (all training labels, indexed).
pub(crate) fn ce_with(model: &Classifier, rows: &Rows<'_>, labels: &Tensor) -> Tensor {
    let (x, _) = rows.gather();
    model.forward(&x).cross_entropy_for_logits(&labels.index_select(0, &rows.index()))
}

/// An epoch's running losses ([`TensorTotals`]: tensors, read once per epoch) and its steps.
#[derive(Default)]
pub(crate) struct Epoch {
    totals: TensorTotals,
    steps: usize,
}

impl Epoch {
    pub(crate) fn add(&mut self, loss: &Tensor, ce: &Tensor) {
        self.totals.add(loss.detach(), ce.detach(), None);
        self.steps += 1;
    }

    pub(crate) fn stats(mut self) -> EpochStats {
        let stats = self.totals.take().mean(self.steps.max(1));
        EpochStats { steps: self.steps, ..stats }
    }
}

/// The sum of `|p|` over every parameter of `model`.
pub(crate) fn l1_norm(model: &Classifier) -> Tensor {
    let vars = model.var_store().trainable_variables();
    let norms: Vec<Tensor> = vars.iter().map(|v| v.abs().sum(Kind::Float)).collect();
    Tensor::stack(&norms, 0).sum(Kind::Float)
}

/// `KL(softmax(teacher / T) || softmax(student / T)) * T^2`, summed over classes and averaged
/// over rows.
pub(crate) fn distill_kl(student: &Tensor, teacher: &Tensor, t: f64) -> Tensor {
    let log_s = (student / t).log_softmax(1, Kind::Float);
    let p_t = (teacher / t).softmax(1, Kind::Float);
    let rows = student.size()[0] as f64;
    log_s.kl_div(&p_t, Reduction::Sum, false) * (t * t / rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distill_kl_is_zero_for_equal_logits_and_matches_the_formula() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0]).view([2, 3]);
        assert!(distill_kl(&a, &a, 4.0).double_value(&[]).abs() < 1e-5);
        let b = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 1.0, 1.0, 1.0]).view([2, 3]);
        // By hand: mean over rows of sum_c p_t (ln p_t - ln p_s), times T^2, at T = 2.
        let t = 2.0;
        let (ps, pt) = ((&a / t).softmax(1, Kind::Double), (&b / t).softmax(1, Kind::Double));
        let expected =
            (&pt * (pt.log() - ps.log())).sum(Kind::Double).double_value(&[]) / 2.0 * 4.0;
        let got = distill_kl(&a, &b, t).double_value(&[]);
        assert!((got - expected).abs() < 1e-5, "{got} {expected}");
    }
}
