//! Fine-tuning: a copy of the original trained on the remain set with a fresh optimiser.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::{self, OnEpoch};
use crate::method::{Context, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Finetune {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for Finetune {
    /// The notebook's: 100 epochs, batch 64, Adam with lr 1e-3.
    fn default() -> Self {
        Self { epochs: 100, batch_size: 64, lr: 1e-3 }
    }
}

impl Method for Finetune {
    const NAME: &'static str = "finetune";
    const ANY_ENGINE: bool = true;

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let model = ctx.original();
        let schedule = (self.epochs, self.batch_size, self.lr);
        let (data, rng) = (ctx.data, &mut ctx.stream("shuffle/finetune"));
        loops::supervised(&model, data, data.remain(), schedule, ctx.engine, rng, on_epoch);
        model
    }
}
