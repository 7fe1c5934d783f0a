//! The notebook's `train_model` (Adam on mini-batches reshuffled every epoch) in its three uses:
//! `original`, the model to unlearn from (a fresh initialisation, all training data);
//! `retrain`, the gold standard (a fresh initialisation, the remain set only); and `finetune`
//! (a copy of the original, the remain set, a fresh optimiser).

use std::marker::PhantomData;

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::kit::{Group, Objective, Schedule, Term, for_batches, train};
use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Method, Role, Start};

/// One use of `train_model`, [`Use`] saying which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, bound = "")]
pub struct Supervised<U: Use> {
    pub epochs: Count,
    pub batch_size: Count,
    pub lr: Rate,
    #[serde(skip)]
    pub of: PhantomData<U>,
}

pub type Original = Supervised<OriginalUse>;
pub type Retrain = Supervised<RetrainUse>;
pub type Finetune = Supervised<FinetuneUse>;

/// A use of `train_model`: its method's name, role and where its model starts.
pub trait Use: std::fmt::Debug + Clone + PartialEq + Send + Sync + 'static {
    const NAME: &'static str;
    const ROLE: Role;
    const START: Start;
}

macro_rules! uses {
    ($($marker:ident $name:literal $role:expr, $start:expr;)*) => {$(
        #[derive(Debug, Clone, PartialEq)]
        pub struct $marker;
        impl Use for $marker {
            const NAME: &'static str = $name;
            const ROLE: Role = $role;
            const START: Start = $start;
        }
    )*};
}

uses! {
    OriginalUse "original" Role::Original, Start::Fresh { uses_split: false };
    RetrainUse "retrain" Role::Reference, Start::Fresh { uses_split: true };
    FinetuneUse "finetune" Role::Control, Start::Original;
}

impl<U: Use> Default for Supervised<U> {
    /// The notebook's: 100 epochs, batch 64, Adam with lr 1e-3.
    fn default() -> Self {
        Self { epochs: Count::new(100), batch_size: Count::new(64), lr: Rate::new(1e-3), of: PhantomData }
    }
}

impl<U: Use> Method for Supervised<U> {
    const NAME: &'static str = U::NAME;
    const ROLE: Role = U::ROLE;
    const START: Start = U::START;

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let name = Self::NAME;
        let model = match Self::START {
            Start::Original => ctx.original(),
            Start::Fresh { .. } => ctx.fresh(&format!("init/{name}")),
        };
        let data = ctx.data;
        let pool = if U::START.uses_split() { data.remain().to_vec() } else { data.all_train() };
        let rng = &mut ctx.stream(&format!("shuffle/{name}"));
        // The mean cross-entropy of each batch.
        let terms = [Term::ce(1.0)];
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            for_batches(&pool, self.batch_size, data, rng, |rows| {
                step.step(&Objective::of(&[Group { rows, terms: &terms }]))
            })
        });
        model
    }
}
