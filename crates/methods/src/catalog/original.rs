//! The model to unlearn from: trained from a fresh initialisation on all training data (the
//! notebook's `train_model` on the full training set).

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::{self, OnEpoch};
use crate::method::{Context, Method, Start};

/// Adam on mini-batches reshuffled every epoch; the notebook's settings by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Original {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for Original {
    /// The notebook's: 100 epochs, batch 64, Adam with lr 1e-3.
    fn default() -> Self {
        Self { epochs: 100, batch_size: 64, lr: 1e-3 }
    }
}

impl Method for Original {
    const NAME: &'static str = "original";
    const START: Start = Start::Fresh { uses_split: false };
    const ANY_ENGINE: bool = true;

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let model = ctx.fresh("init/original");
        let schedule = (self.epochs, self.batch_size, self.lr);
        let (data, rng) = (ctx.data, &mut ctx.stream("shuffle/original"));
        loops::supervised(&model, data, &data.all_train(), schedule, ctx.engine, rng, on_epoch);
        model
    }
}
