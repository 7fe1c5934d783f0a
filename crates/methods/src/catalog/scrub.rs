//! SCRUB (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023): a student,
//! initialised from the original (the teacher, frozen), alternates a max-step, raising
//! `KL(teacher || student)` on the forget set, with a min-step, lowering
//! `CE + alpha * KL(teacher || student)` on the remain set. Max-steps run in the first
//! `max_epochs` epochs only; both KLs are taken at temperature `temperature` and scaled by its
//! square, as in the paper's `DistillKL`.

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::kit::{Group, Objective, Schedule, Teacher, Term, for_batches, train};
use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Invalid, Method, non_negative};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scrub {
    pub epochs: Count,
    pub lr: Rate,
    pub remain_batch_size: Count,
    pub forget_batch_size: Count,
    pub alpha: f64,
    pub temperature: f64,
    /// Epochs that start with a max-step pass over the forget set (default: 2, at most
    /// `epochs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_epochs: Option<usize>,
}

impl Default for Scrub {
    /// The paper's alpha (0.001), temperature (4) and max-step schedule (max-steps in the first
    /// epochs), with its batch sizes scaled to MNIST and the rate from
    /// experiments/benchmark_search.toml.
    fn default() -> Self {
        Self {
            alpha: 0.001,
            temperature: 4.0,
            epochs: Count::new(3),
            max_epochs: None,
            remain_batch_size: Count::new(64),
            forget_batch_size: Count::new(16),
            lr: Rate::new(1e-5),
        }
    }
}

impl Method for Scrub {
    const NAME: &'static str = "scrub";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn complete(&mut self) {
        self.max_epochs.get_or_insert(self.epochs.get().min(2));
    }

    fn check(&self) -> Result<(), Invalid> {
        non_negative("alpha", self.alpha)?;
        if self.temperature <= 0.0 {
            return Err(Invalid::new(
                "temperature",
                format!("is {}; it must be > 0", self.temperature),
            ));
        }
        match self.max_epochs {
            Some(m) if m > self.epochs.get() => Err(Invalid::new(
                "max_epochs",
                format!("is {m}, more than the {} epochs", self.epochs),
            )),
            _ => Ok(()),
        }
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (model, data) = (ctx.original(), ctx.data);
        let (teacher, rng) = (Teacher::new(ctx.original()), &mut ctx.stream("shuffle/scrub"));
        let (temperature, teacher) = (self.temperature, &teacher);
        let max_terms = [Term::Distill { weight: -1.0, temperature, teacher }];
        let min_terms = [Term::ce(1.0), Term::Distill { weight: self.alpha, temperature, teacher }];
        let mut epoch = 0;
        train(&model, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            epoch += 1;
            if epoch <= self.max_epochs.unwrap_or(0) {
                for_batches(data.forget(), self.forget_batch_size, data, rng, |rows| {
                    let groups = [Group { rows, terms: &max_terms }];
                    step.step(&Objective { groups: &groups, l1: None, record: false })
                });
            }
            for_batches(data.remain(), self.remain_batch_size, data, rng, |rows| {
                step.step(&Objective::of(&[Group { rows, terms: &min_terms }]))
            })
        });
        model
    }
}
