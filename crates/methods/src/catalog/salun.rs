//! SalUn (Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency",
//! ICLR 2024): the saliency of each weight is `|d CE(forget) / d w|` over the whole forget set;
//! the `sparsity` fraction of weights with the highest saliency (across all parameters) form a
//! mask, and random-label unlearning (remain set plus forget set with random wrong labels)
//! then updates only the masked weights (the others' gradients are zeroed before each step).

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::kit::{
    Group, Labels, Objective, Optimizer, Saliency, Schedule, Term, for_batches, random_wrong_labels,
    train,
};
use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Invalid, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Salun {
    pub epochs: Count,
    pub lr: Rate,
    pub batch_size: Count,
    /// The fraction of weights that may change.
    pub sparsity: f64,
}

impl Default for Salun {
    /// The paper's 50% mask with random-label unlearning as in [`super::random_label`].
    fn default() -> Self {
        Self { sparsity: 0.5, epochs: Count::new(2), batch_size: Count::new(64), lr: Rate::new(1e-4) }
    }
}

impl Method for Salun {
    const NAME: &'static str = "salun";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.sparsity > 0.0 && self.sparsity <= 1.0 {
            Ok(())
        } else {
            Err(Invalid::new("sparsity", format!("is {}; it must be in (0, 1]", self.sparsity)))
        }
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (model, data) = (ctx.original(), ctx.data);
        let (rng, labels_rng) = (&mut ctx.stream("shuffle/salun"), &mut ctx.stream("labels/salun"));
        let labels = random_wrong_labels(data, model.spec().classes, labels_rng);
        let terms = [Term::CrossEntropy { weight: 1.0, labels: Labels::Table(&labels) }];
        let pool = data.all_train();
        let salient = Saliency { pool: data.forget(), sparsity: self.sparsity };
        let optimizer = Optimizer { lr: self.lr.get(), salient: Some(salient) };
        let schedule = Schedule { epochs: self.epochs, optimizer };
        train(&model, data, ctx.engine, schedule, on_epoch, |step| {
            for_batches(&pool, self.batch_size, data, rng, |rows| {
                step.step(&Objective::of(&[Group { rows, terms: &terms }]))
            })
        });
        model
    }
}
