//! NegGrad+ (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023): descend
//! on the remain set while ascending on the forget set, `CE(remain) - alpha * CE(forget)`,
//! on remain and forget batches paired as MI-unlearn pairs them.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::OnEpoch;
use crate::method::{Context, Invalid, Method, non_negative};

use crate::kit::{Epoch, adam, for_pairs};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NegGradPlus {
    pub epochs: usize,
    pub lr: f64,
    pub remain_batch_size: usize,
    pub forget_batch_size: usize,
    pub alpha: f64,
}

impl Default for NegGradPlus {
    /// MI-unlearn's batches and epochs; alpha from experiments/benchmark_search.toml (larger
    /// values wipe out the remain accuracy on this MLP).
    fn default() -> Self {
        Self { alpha: 0.01, epochs: 5, remain_batch_size: 64, forget_batch_size: 16, lr: 1e-4 }
    }
}

impl Method for NegGradPlus {
    const NAME: &'static str = "neggrad_plus";

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn check(&self) -> Result<(), Invalid> {
        non_negative("alpha", self.alpha)
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (student, data) = (ctx.original(), ctx.data);
        let model = &student;
        let rng = &mut ctx.stream("shuffle/neggrad_plus");
        let mut opt = adam(model, self.lr);
        for epoch in 1..=self.epochs {
            let mut totals = Epoch::default();
            for_pairs(data, self.remain_batch_size, self.forget_batch_size, rng, |remain, forget| {
                let ((xr, yr), (xf, yf)) = (remain.gather(), forget.gather());
                let ce = model.forward(&xr).cross_entropy_for_logits(&yr);
                let forget_ce = model.forward(&xf).cross_entropy_for_logits(&yf);
                let loss = &ce - forget_ce * self.alpha;
                opt.backward_step(&loss);
                totals.add(&loss, &ce);
            });
            on_epoch(epoch, model, &totals.stats());
        }
        student
    }
}

