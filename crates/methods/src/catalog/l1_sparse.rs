//! L1-sparse unlearning (Jia et al., "Model Sparsity Can Simplify Machine Unlearning", NeurIPS
//! 2023): fine-tune on the remain set with `CE + lambda_t * ||theta||_1`, the penalty decaying
//! linearly over the epochs, `lambda_t = lambda * (1 - (t - 1) / epochs)` for epoch `t`, as in
//! the paper's code.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Invalid, Method, canonical_key, non_negative};

use crate::kit::{Group, Objective, Schedule, Term, for_batches, train};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Sparse {
    pub epochs: Count,
    pub lr: Rate,
    pub batch_size: Count,
    pub lambda: f64,
}

impl Default for L1Sparse {
    fn default() -> Self {
        Self { lambda: 5e-5, epochs: Count::new(5), batch_size: Count::new(64), lr: Rate::new(1e-3) }
    }
}

impl Method for L1Sparse {
    const NAME: &'static str = "l1_sparse";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn check(&self) -> Result<(), Invalid> {
        non_negative("lambda", self.lambda)
    }

    fn key(&self) -> Vec<(String, String)> {
        let mut key = canonical_key(self);
        // The penalty's schedule, after lambda.
        key.insert(1, ("schedule".into(), "linear-decay".into()));
        key
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (model, data) = (ctx.original(), ctx.data);
        let rng = &mut ctx.stream("shuffle/l1_sparse");
        let terms = [Term::ce(1.0)];
        let mut epoch = 0;
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            epoch += 1;
            let lambda = self.lambda * (1.0 - (epoch - 1) as f64 / self.epochs.get() as f64);
            for_batches(data.remain(), self.batch_size, data, rng, |rows| {
                let groups = [Group { rows, terms: &terms }];
                step.step(&Objective { groups: &groups, l1: Some(lambda), record: true })
            })
        });
        model
    }
}

