//! What the baselines of `crate::catalog` share: the loops (`crate::loops`' batches and the
//! baseline loop), the objective's pieces (`crate::engine::step`) and relabelling forget
//! samples with random wrong classes. The baselines start from a copy of the original model
//! and train on any engine through [`Objective`]s.

use data::rng::Rng;
use rand::Rng as _;

pub(crate) use crate::engine::step::{Group, LabelTable, Labels, Objective, Teacher, Term};
pub(crate) use crate::loops::{baseline, for_batches, for_pairs};
use crate::tensors::Data;

/// The training labels with every forget sample's label replaced by a wrong class drawn
/// uniformly from the other `classes - 1` (in forget-set order, from `rng`).
pub(crate) fn random_wrong_labels(data: &Data, classes: usize, rng: &mut Rng) -> LabelTable {
    let classes = classes as i64;
    let mut labels: Vec<i64> =
        data.images().dataset().train.labels.iter().map(|&y| i64::from(y)).collect();
    for &i in data.forget() {
        let shift = rng.random_range(1..classes);
        labels[i as usize] = (labels[i as usize] + shift) % classes;
    }
    LabelTable::new(labels)
}

/// A cross-entropy term against the true labels, times `weight`.
pub(crate) fn ce(weight: f64) -> Term<'static> {
    Term::CrossEntropy { weight, labels: Labels::True }
}
