//! Random labelling (Golatkar et al., CVPR 2020; the "RL" baseline of Fan et al., ICLR 2024):
//! give every forget sample a wrong label drawn once at random, then fine-tune on the remain
//! set and the relabelled forget set together.

use model::Mlp;

use super::{Epoch, adam, ce_with, for_batches, random_wrong_labels};
use crate::Data;
use crate::train::EpochStats;

#[derive(Debug, Clone, PartialEq)]
pub struct RandomLabel {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for RandomLabel {
    fn default() -> Self {
        Self { epochs: 2, batch_size: 64, lr: 1e-4 }
    }
}

pub(crate) fn run(
    model: &Mlp,
    data: &Data,
    cfg: &RandomLabel,
    rng: &mut data::rng::Rng,
    labels_rng: &mut data::rng::Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let labels = random_wrong_labels(data, model.spec().classes, labels_rng);
    let pool = data.all_train();
    let mut opt = adam(model, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let mut totals = Epoch::default();
        for_batches(&pool, cfg.batch_size, data, rng, |rows| {
            let ce = ce_with(model, &rows, &labels);
            opt.backward_step(&ce);
            totals.add(&ce, &ce);
        });
        on_epoch(epoch, model, &totals.stats());
    }
}
