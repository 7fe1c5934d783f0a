//! Random labelling (Golatkar et al., CVPR 2020; the "RL" baseline of Fan et al., ICLR 2024):
//! give every forget sample a wrong label drawn once at random, then fine-tune on the remain
//! set and the relabelled forget set together.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Method};

use crate::kit::{Group, Labels, Objective, Schedule, Term, for_batches, random_wrong_labels, train};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomLabel {
    pub epochs: Count,
    pub lr: Rate,
    pub batch_size: Count,
}

impl Default for RandomLabel {
    fn default() -> Self {
        Self { epochs: Count::new(2), batch_size: Count::new(64), lr: Rate::new(1e-4) }
    }
}

impl Method for RandomLabel {
    const NAME: &'static str = "random_label";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (model, data) = (ctx.original(), ctx.data);
        let (rng, labels_rng) =
            (&mut ctx.stream("shuffle/random_label"), &mut ctx.stream("labels/random_label"));
        let labels = random_wrong_labels(data, model.spec().classes, labels_rng);
        let terms = [Term::CrossEntropy { weight: 1.0, labels: Labels::Table(&labels) }];
        let pool = data.all_train();
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            for_batches(&pool, self.batch_size, data, rng, |rows| {
                step.step(&Objective::of(&[Group { rows, terms: &terms }]))
            })
        });
        model
    }
}

