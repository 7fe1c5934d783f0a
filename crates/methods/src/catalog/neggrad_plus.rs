//! NegGrad+ (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023): descend
//! on the remain set while ascending on the forget set, `CE(remain) - alpha * CE(forget)`,
//! on remain and forget batches paired as MI-unlearn pairs them.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Invalid, Method, non_negative};

use crate::kit::{Group, Objective, Schedule, Term, for_pairs, train};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NegGradPlus {
    pub epochs: Count,
    pub lr: Rate,
    pub remain_batch_size: Count,
    pub forget_batch_size: Count,
    pub alpha: f64,
}

impl Default for NegGradPlus {
    /// MI-unlearn's batches and epochs; alpha from experiments/benchmark_search.toml (larger
    /// values wipe out the remain accuracy on this MLP).
    fn default() -> Self {
        Self { alpha: 0.01, epochs: Count::new(5), remain_batch_size: Count::new(64), forget_batch_size: Count::new(16), lr: Rate::new(1e-4) }
    }
}

impl Method for NegGradPlus {
    const NAME: &'static str = "neggrad_plus";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn check(&self) -> Result<(), Invalid> {
        non_negative("alpha", self.alpha)
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (model, data) = (ctx.original(), ctx.data);
        let rng = &mut ctx.stream("shuffle/neggrad_plus");
        let (descend, ascend) = ([Term::ce(1.0)], [Term::ce(-self.alpha)]);
        let (remain_batch, forget_batch) = (self.remain_batch_size, self.forget_batch_size);
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            for_pairs(data, remain_batch, forget_batch, rng, |remain, forget| {
                let groups =
                    [Group { rows: remain, terms: &descend }, Group { rows: forget, terms: &ascend }];
                step.step(&Objective::of(&groups))
            })
        });
        model
    }
}

