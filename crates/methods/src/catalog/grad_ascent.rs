//! Gradient ascent on the forget set ("NegGrad": Golatkar et al., CVPR 2020; Thudi et al.,
//! EuroS&P 2022): maximise the cross-entropy of the forget samples, nothing else.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Method};

use crate::kit::{Group, Objective, Schedule, Term, for_batches, train};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradAscent {
    pub epochs: Count,
    pub lr: Rate,
    pub batch_size: Count,
}

impl Default for GradAscent {
    /// One pass over the forget set at a small rate (ascent has no floor: more drives the
    /// model to predict no digit at all); the rate from experiments/benchmark_search.toml.
    fn default() -> Self {
        Self { epochs: Count::new(1), batch_size: Count::new(64), lr: Rate::new(3e-5) }
    }
}

impl Method for GradAscent {
    const NAME: &'static str = "grad_ascent";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (model, data) = (ctx.original(), ctx.data);
        let rng = &mut ctx.stream("shuffle/grad_ascent");
        let terms = [Term::ce(-1.0)];
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            for_batches(data.forget(), self.batch_size, data, rng, |rows| {
                step.step(&Objective::of(&[Group { rows, terms: &terms }]))
            })
        });
        model
    }
}

