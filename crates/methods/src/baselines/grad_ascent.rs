//! Gradient ascent on the forget set ("NegGrad": Golatkar et al., CVPR 2020; Thudi et al.,
//! EuroS&P 2022): maximise the cross-entropy of the forget samples, nothing else.

use model::Mlp;

use super::{Epoch, adam, for_batches};
use crate::Data;
use crate::train::EpochStats;

#[derive(Debug, Clone, PartialEq)]
pub struct GradAscent {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for GradAscent {
    /// One pass over the forget set at a small rate (ascent has no floor: more drives the
    /// model to predict no digit at all); the rate from experiments/benchmark_search.toml.
    fn default() -> Self {
        Self { epochs: 1, batch_size: 64, lr: 3e-5 }
    }
}

pub(crate) fn run(
    model: &Mlp,
    data: &Data,
    cfg: &GradAscent,
    rng: &mut data::rng::Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut opt = adam(model, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let mut totals = Epoch::default();
        for_batches(data.forget(), cfg.batch_size, data, rng, |rows| {
            let (x, y) = rows.gather();
            let ce = model.forward(&x).cross_entropy_for_logits(&y);
            let loss = -&ce;
            opt.backward_step(&loss);
            totals.add(&loss, &ce);
        });
        on_epoch(epoch, model, &totals.stats());
    }
}
