//! L1-sparse unlearning (Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS
//! 2023): fine-tune on the remain set with `CE + lambda_t * ||theta||_1`, the penalty decaying
//! linearly over the epochs, `lambda_t = lambda * (1 - (t - 1) / epochs)` for epoch `t`, as in
//! the paper's code.

use model::Mlp;

use super::{Epoch, adam, for_batches, l1_norm};
use crate::Data;
use crate::train::EpochStats;

#[derive(Debug, Clone, PartialEq)]
pub struct L1Sparse {
    pub lambda: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for L1Sparse {
    fn default() -> Self {
        Self { lambda: 5e-5, epochs: 5, batch_size: 64, lr: 1e-3 }
    }
}

pub(crate) fn run(
    model: &Mlp,
    data: &Data,
    cfg: &L1Sparse,
    rng: &mut data::rng::Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut opt = adam(model, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let lambda = cfg.lambda * (1.0 - (epoch - 1) as f64 / cfg.epochs as f64);
        let mut totals = Epoch::default();
        for_batches(data.remain(), cfg.batch_size, data, rng, |rows| {
            let (x, y) = rows.gather();
            let ce = model.forward(&x).cross_entropy_for_logits(&y);
            let loss = &ce + l1_norm(model) * lambda;
            opt.backward_step(&loss);
            totals.add(&loss, &ce);
        });
        on_epoch(epoch, model, &totals.stats());
    }
}
