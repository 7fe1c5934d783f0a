//! What the methods of `crate::catalog` share: the loop and its loaders (`crate::loops`), the
//! objective's pieces (`crate::engine::step`) and relabelling forget samples with random
//! wrong classes. Every method states its loss as an [`Objective`] and trains on any engine.

use data::rng::Rng;
use rand::Rng as _;

pub(crate) use crate::engine::step::{
    Group, LabelTable, Labels, Objective, Optimizer, Saliency, Teacher, Term,
};
pub(crate) use crate::loops::{Schedule, for_batches, for_pairs, train};
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
