//! The training loop every method runs ([`train`]) and the notebook's two loaders: batches of
//! one pool ([`for_batches`], `train_model`'s) and remain batches paired with forget batches
//! ([`for_pairs`], `train_unlearn_model`'s). Both reshuffle every epoch from the run's stream,
//! gather batches by index from the job's data, and keep the last, partial batch (PyTorch's
//! `DataLoader` with `shuffle=True, drop_last=False`). The engines keep their losses until the
//! epoch ends, so the loop never waits on the host.

use data::rng::Rng;
use model::Classifier;

use crate::engine::step::{EpochStats, Optimizer, Order, Rows, Step};
use crate::engine::{Engine, stepper};
use crate::params::{Count, Rate};
use crate::tensors::Data;

/// Called after each epoch with its number (from 1), the model and the epoch's statistics.
/// The model is `None` for an epoch of a method that hands back only its final model (an
/// external command's losses: [`crate::DynMethod::models_each_epoch`]).
pub type OnEpoch<'a> = dyn FnMut(usize, Option<&Classifier>, &EpochStats) + 'a;

/// How long and with what a method trains: `epochs` epochs, each stepping a fresh
/// `optimizer`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule<'a> {
    pub epochs: Count,
    pub optimizer: Optimizer<'a>,
}

impl Schedule<'_> {
    /// `epochs` epochs of Adam at `lr` over every parameter.
    pub(crate) fn adam(epochs: Count, lr: Rate) -> Self {
        Self { epochs, optimizer: Optimizer::adam(lr) }
    }
}

/// Every method's loop: a fresh optimiser over `model` on `engine`, then `schedule.epochs`
/// epochs of `one_epoch` (which steps it and returns how many of its steps the epoch's means
/// are over), each ended by bringing the model up to date and reporting the epoch's mean
/// losses to `on_epoch`.
pub(crate) fn train(
    model: &Classifier,
    data: &Data,
    engine: Engine,
    schedule: Schedule<'_>,
    on_epoch: &mut OnEpoch<'_>,
    mut one_epoch: impl FnMut(&mut dyn Step) -> usize,
) {
    let mut step = stepper(engine, model, data, schedule.optimizer);
    for epoch in 1..=schedule.epochs.get() {
        let steps = one_epoch(step.as_mut());
        step.sync();
        on_epoch(epoch, Some(model), &step.take_totals().mean(steps));
    }
}

/// The notebook's loader: calls `step` on every batch of `pool`, reshuffled from `rng` (the
/// last batch partial); returns how many batches there were.
pub(crate) fn for_batches(
    pool: &[i64],
    batch_size: Count,
    data: &Data,
    rng: &mut Rng,
    mut step: impl FnMut(Rows<'_>),
) -> usize {
    let batch_size = batch_size.get();
    let order = Order::shuffled(pool, rng, data);
    for start in (0..pool.len()).step_by(batch_size) {
        step(order.rows(start, batch_size.min(pool.len() - start)));
    }
    pool.len().div_ceil(batch_size)
}

/// MI-unlearn's two loaders (the notebook's `train_unlearn_model`): calls `step` on remain
/// and forget batches side by side, each reshuffled as its iteration starts (remain first,
/// then forget), as many steps as the shorter of the two lasts (the other is cut short);
/// returns that number of steps.
pub(crate) fn for_pairs(
    data: &Data,
    remain_batch: Count,
    forget_batch: Count,
    rng: &mut Rng,
    mut step: impl FnMut(Rows<'_>, Rows<'_>),
) -> usize {
    let (remain, forget) = (data.remain(), data.forget());
    let (remain_batch, forget_batch) = (remain_batch.get(), forget_batch.get());
    let steps = remain.len().div_ceil(remain_batch).min(forget.len().div_ceil(forget_batch));
    let remain_order = Order::shuffled(remain, rng, data);
    let forget_order = Order::shuffled(forget, rng, data);
    for i in 0..steps {
        let (r0, f0) = (i * remain_batch, i * forget_batch);
        step(
            remain_order.rows(r0, remain_batch.min(remain.len() - r0)),
            forget_order.rows(f0, forget_batch.min(forget.len() - f0)),
        );
    }
    steps
}
