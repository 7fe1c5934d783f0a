//! Bad Teacher (Chundawat et al., "Can Bad Teaching Induce Forgetting? Unlearning in Deep
//! Networks using an Incompetent Teacher", AAAI 2023): a student, initialised from the
//! original, is distilled on the forget set plus a random part of the remain set, from the
//! original (the competent teacher) on remain samples and from a freshly initialised model
//! (the incompetent teacher) on forget samples: `KL(teacher || student)` at temperature
//! `temperature`, each row from its own teacher.

use model::Classifier;
use serde::{Deserialize, Serialize};
use crate::kit::{Group, Objective, Schedule, Teacher, Term, for_batches, train};
use crate::loops::OnEpoch;
use crate::method::{Count, Rate, Context, Invalid, Method};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BadTeacher {
    pub epochs: Count,
    pub lr: Rate,
    pub batch_size: Count,
    /// The part of the remain set distilled from the competent teacher (drawn once per run).
    pub remain_fraction: f64,
    pub temperature: f64,
}

impl Default for BadTeacher {
    /// The paper's code: one epoch at lr 1e-4 (Adam), batches of 256, 30% of the remain set,
    /// temperature 1.
    fn default() -> Self {
        Self { epochs: Count::new(1), lr: Rate::new(1e-4), batch_size: Count::new(256), remain_fraction: 0.3, temperature: 1.0 }
    }
}

impl Method for BadTeacher {
    const NAME: &'static str = "bad_teacher";

    fn epochs(&self) -> usize {
        self.epochs.get()
    }

    fn check(&self) -> Result<(), Invalid> {
        if !(0.0..=1.0).contains(&self.remain_fraction) {
            let problem = format!("is {}; it must be in [0, 1]", self.remain_fraction);
            return Err(Invalid::new("remain_fraction", problem));
        }
        if self.temperature <= 0.0 {
            let problem = format!("is {}; it must be > 0", self.temperature);
            return Err(Invalid::new("temperature", problem));
        }
        Ok(())
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (student, data) = (ctx.original(), ctx.data);
        let remain = data.remain();
        let drawn = data::rng::permutation(&mut ctx.stream("subset/bad_teacher"), remain.len());
        let kept = (self.remain_fraction * remain.len() as f64).round() as usize;
        let mut pool: Vec<i64> = drawn[..kept].iter().map(|&i| remain[i as usize]).collect();
        pool.extend(data.forget());
        // Per training image: whether the incompetent teacher teaches it.
        let mut forgotten = vec![false; data.images().dataset().train.len()];
        for &i in data.forget() {
            forgotten[i as usize] = true;
        }
        let teacher = Teacher::with_other(ctx.original(), ctx.fresh("init/bad_teacher"), forgotten);
        let (temperature, teacher) = (self.temperature, &teacher);
        // The cross-entropy against the true labels is reported, not trained on.
        let terms = [Term::ce(0.0), Term::Distill { weight: 1.0, temperature, teacher }];
        let rng = &mut ctx.stream("shuffle/bad_teacher");
        train(&student, data, ctx.engine, Schedule::adam(self.epochs, self.lr), on_epoch, |step| {
            for_batches(&pool, self.batch_size, data, rng, |rows| {
                step.step(&Objective::of(&[Group { rows, terms: &terms }]))
            })
        });
        student
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::{Count, Rate};
    use crate::engine::{Engine, evaluate};
    use crate::method::AnyMethod;
    use crate::testutil::{fixture, original, train};

    #[test]
    fn the_bad_teacher_makes_the_student_forget_and_the_good_one_keeps_the_rest() {
        let (data, spec) = fixture(600, 0.75);
        let (first, _) = train(&original(10), &data, &spec, None);
        let before = evaluate(&first, &data, Engine::default());
        let method = BadTeacher { epochs: Count::new(5), lr: Rate::new(1e-2), batch_size: Count::new(32), ..Default::default() };
        let method = AnyMethod::new(method);
        let (model, history) = train(&method, &data, &spec, Some(&first));
        let after = evaluate(&model, &data, Engine::default());
        assert_eq!(history.len(), 5);
        assert!(after.forget < before.forget - 30.0, "{before:?} -> {after:?}");
        assert!(after.test > 55.0, "{after:?}");
        let (again, _) = train(&method, &data, &spec, Some(&first));
        assert_eq!(again.flat_parameters(), model.flat_parameters(), "reproducible");
        let key: Vec<String> = method.key().into_iter().map(|(k, _)| k).collect();
        let expected =
            ["remain_fraction", "temperature", "epochs", "batch_size", "lr", "optimizer"];
        assert_eq!(key, expected);
        assert_eq!(method.label(), "epochs=5 batch_size=32 lr=0.01");
    }
}
