//! Every method, one file each (the notebook's `train_model` is one file for its three uses),
//! and the catalog that registers them: [`ALL`], in the order results list them. Adding a
//! method is a file here and a line in `catalog!` below (ARCHITECTURE.md, "Adding a method").
//!
//! Every method runs on any engine: the notebook's four (`original`, `retrain`, `finetune`,
//! `mi_unlearn`) through the loops' own steps, the field's baselines through the
//! `Objective`s they state (`crate::engine::step`). The papers behind the benchmark's six
//! baselines used SGD on CIFAR-scale CNNs; here each runs with Adam (the notebook's optimiser),
//! and each default is the value `experiments/benchmark_search.toml` ranked best for this MLP on MNIST and
//! Fashion-MNIST (seed 100, by the remain and forget gaps to retrain, no test sample
//! involved): grad_ascent's lr 3e-5, neggrad_plus's alpha 0.01, scrub's lr 1e-5; random_label,
//! l1_sparse and salun kept their starting values, which ranked first among their grids.

use crate::section::Registration;

/// Declares each file's module and registers its methods in [`ALL`], in the order given.
macro_rules! catalog {
    ($($module:ident: [$($method:ident),*],)*) => {
        $(pub mod $module;)*

        /// Every method, in the order results list them.
        pub static ALL: &[Registration] = &[$($(Registration::of::<$module::$method>(),)*)*];
    };
}

catalog! {
    supervised: [Original, Retrain, Finetune],
    mi_unlearn: [MiUnlearn],
    grad_ascent: [GradAscent],
    neggrad_plus: [NegGradPlus],
    random_label: [RandomLabel],
    scrub: [Scrub],
    l1_sparse: [L1Sparse],
    salun: [Salun],
    bad_teacher: [BadTeacher],
}

/// The registration of the method called `name`.
pub fn find(name: &str) -> Option<&'static Registration> {
    ALL.iter().find(|r| r.name == name)
}
