//! SCRUB (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023): a student,
//! initialised from the original (the teacher, frozen), alternates a max-step, raising
//! `KL(teacher || student)` on the forget set, with a min-step, lowering
//! `CE + alpha * KL(teacher || student)` on the remain set. Max-steps run in the first
//! `max_epochs` epochs only; both KLs are taken at temperature `temperature` and scaled by its
//! square, as in the paper's `DistillKL`.

use model::Mlp;
use tch::{Kind, Reduction, Tensor};

use super::{Epoch, adam, for_batches};
use crate::Data;
use crate::train::EpochStats;

#[derive(Debug, Clone, PartialEq)]
pub struct Scrub {
    pub alpha: f64,
    pub temperature: f64,
    pub epochs: usize,
    pub max_epochs: usize,
    pub remain_batch_size: usize,
    pub forget_batch_size: usize,
    pub lr: f64,
}

impl Default for Scrub {
    /// The paper's alpha (0.001), temperature (4) and max-step schedule (max-steps in the first
    /// epochs), with its batch sizes scaled to MNIST and the rate from
    /// experiments/benchmark_search.toml.
    fn default() -> Self {
        Self {
            alpha: 0.001,
            temperature: 4.0,
            epochs: 3,
            max_epochs: 2,
            remain_batch_size: 64,
            forget_batch_size: 16,
            lr: 1e-5,
        }
    }
}

/// `KL(softmax(teacher / T) || softmax(student / T)) * T^2`, summed over classes and averaged
/// over rows.
pub(crate) fn distill_kl(student: &Tensor, teacher: &Tensor, t: f64) -> Tensor {
    let log_s = (student / t).log_softmax(1, Kind::Float);
    let p_t = (teacher / t).softmax(1, Kind::Float);
    let rows = student.size()[0] as f64;
    log_s.kl_div(&p_t, Reduction::Sum, false) * (t * t / rows)
}

pub(crate) fn run(
    model: &Mlp,
    teacher: &Mlp,
    data: &Data,
    cfg: &Scrub,
    rng: &mut data::rng::Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut opt = adam(model, cfg.lr);
    let teacher_logits = |x: &Tensor| tch::no_grad(|| teacher.forward(x));
    for epoch in 1..=cfg.epochs {
        let mut totals = Epoch::default();
        if epoch <= cfg.max_epochs {
            for_batches(data.forget(), cfg.forget_batch_size, data, rng, |rows| {
                let (x, _) = rows.gather();
                let kl = distill_kl(&model.forward(&x), &teacher_logits(&x), cfg.temperature);
                opt.backward_step(&(-&kl));
            });
        }
        for_batches(data.remain(), cfg.remain_batch_size, data, rng, |rows| {
            let (x, y) = rows.gather();
            let logits = model.forward(&x);
            let ce = logits.cross_entropy_for_logits(&y);
            let kl = distill_kl(&logits, &teacher_logits(&x), cfg.temperature);
            let loss = &ce + kl * cfg.alpha;
            opt.backward_step(&loss);
            totals.add(&loss, &ce);
        });
        on_epoch(epoch, model, &totals.stats());
    }
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
