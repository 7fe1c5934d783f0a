//! MI-unlearn, the paper's method (the notebook's `train_unlearn_model`): fine-tune a copy of
//! the original with loss `CE(remain) + gamma * I(Y_hat; Z)`, the plug-in estimate of
//! `crate::mi` over a batch of remain and forget images (`Z = 0`) and the remain batch again
//! (`Z = 1`); `crate::loops::for_pairs` pairs the batches. The notebook shuffles the MI batch
//! before its forward pass; the estimate is a sum over rows and does not depend on their
//! order, so this loop does not.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::kit::{Group, Objective, Schedule, Term, for_pairs, train};
use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Invalid, Method, Swept, canonical_key};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiUnlearn {
    pub gamma: f64,
    pub epochs: Count,
    /// How lists of `gamma` and `epochs` combine: every pair, or element by element.
    pub grid: Grid,
    pub remain_batch_size: Count,
    pub forget_batch_size: Count,
    pub lr: Rate,
}

/// How a section's lists combine (read by `Registration::expand`; not in the cache key).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grid {
    #[default]
    Product,
    Zip,
}

impl Default for MiUnlearn {
    /// The notebook's: gamma 4, 5 epochs, remain batch 64 with forget batch 16, lr 1e-3.
    fn default() -> Self {
        Self {
            gamma: 4.0,
            epochs: Count::new(5),
            grid: Grid::Product,
            remain_batch_size: Count::new(64),
            forget_batch_size: Count::new(16),
            lr: Rate::new(1e-3),
        }
    }
}

impl Method for MiUnlearn {
    const NAME: &'static str = "mi_unlearn";
    const LABELLED: &'static [&'static str] = &["gamma"];
    const SWEPT: Option<Swept> =
        Some(Swept { parameter: "gamma", about: "weight of the MI penalty", title: "MI-unlearn" });

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.gamma < 0.0 {
            return Err(Invalid::new(
                "gamma",
                format!("contains {}; gamma must be >= 0", self.gamma),
            ));
        }
        Ok(())
    }

    fn key(&self) -> Vec<(String, String)> {
        // `grid` says how a section's lists combine: not a parameter of a run.
        let mut key = canonical_key(self);
        key.retain(|(k, _)| k != "grid");
        key.push(("mi_estimator".into(), "plugin-softmax-clamp1e-10".into()));
        key
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        // One stream for every gamma: runs of a sweep that differ only in gamma see the same
        // batches, and a longer run extends a shorter one.
        let (model, data) = (ctx.original(), ctx.data);
        let rng = &mut ctx.stream("shuffle/mi_unlearn");
        let (remain_batch, forget_batch) = (self.remain_batch_size, self.forget_batch_size);
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            for_pairs(data, remain_batch, forget_batch, rng, |remain, forget| {
                // CE(remain) + gamma * I(Y_hat; Z) over [remain; forget] (Z = 0), remain (Z = 1).
                let mi = Term::MutualInformation { weight: self.gamma, others: forget };
                let terms = [Term::ce(1.0), mi];
                step.step(&Objective::of(&[Group { rows: remain, terms: &terms }]))
            })
        });
        model
    }
}
