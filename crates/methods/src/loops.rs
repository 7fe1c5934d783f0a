//! The notebook's two training loops, for every engine. Both reshuffle every epoch from the
//! run's stream, gather batches by index from the job's data, and keep the last, partial batch
//! (PyTorch's `DataLoader` with `shuffle=True, drop_last=False`). The engines keep their
//! losses until the epoch ends, so the loop never waits on the host.

use data::rng::Rng;
use model::Classifier;

use crate::engine::step::{EpochStats, Order, Rows, Step};
use crate::engine::{Engine, stepper};
use crate::tensors::Data;

/// Called after each epoch with its number (from 1), the model and the epoch's statistics.
pub type OnEpoch<'a> = dyn FnMut(usize, &Classifier, &EpochStats) + 'a;

/// The notebook's `train_model`: fresh Adam, `epochs` passes over `pool` in shuffled batches.
pub(crate) fn supervised(
    model: &Classifier,
    data: &Data,
    pool: &[i64],
    (epochs, batch_size, lr): (usize, usize, f64),
    engine: Engine,
    rng: &mut Rng,
    on_epoch: &mut OnEpoch<'_>,
) {
    let step = stepper(engine, model, data, lr);
    run_epochs(model, step, epochs, on_epoch, |step| {
        for_batches(pool, batch_size, data, rng, |rows| step.supervised(rows))
    });
}

/// A baseline's loop: a fresh Adam (lr `lr`) over `model` on `engine`, prepared by `prepare`
/// (e.g. SalUn's mask), then `epochs` epochs of `one_epoch` as [`run_epochs`] runs them.
pub(crate) fn baseline(
    model: &Classifier,
    data: &Data,
    engine: Engine,
    (epochs, lr): (usize, f64),
    on_epoch: &mut OnEpoch<'_>,
    prepare: impl FnOnce(&mut dyn Step),
    one_epoch: impl FnMut(&mut dyn Step) -> usize,
) {
    let mut step = stepper(engine, model, data, lr);
    prepare(step.as_mut());
    run_epochs(model, step, epochs, on_epoch, one_epoch);
}

/// `epochs` epochs of `one_epoch` (which steps `step` and returns how many of its steps the
/// epoch's means are over), each ended by bringing the model up to date and reporting the
/// epoch's mean losses.
fn run_epochs(
    model: &Classifier,
    mut step: Box<dyn Step + '_>,
    epochs: usize,
    on_epoch: &mut OnEpoch<'_>,
    mut one_epoch: impl FnMut(&mut dyn Step) -> usize,
) {
    for epoch in 1..=epochs {
        let steps = one_epoch(step.as_mut());
        step.sync();
        on_epoch(epoch, model, &step.take_totals().mean(steps));
    }
}

/// The notebook's loader: calls `step` on every batch of `pool`, reshuffled from `rng` (the
/// last batch partial); returns how many batches there were.
pub(crate) fn for_batches(
    pool: &[i64],
    batch_size: usize,
    data: &Data,
    rng: &mut Rng,
    mut step: impl FnMut(Rows<'_>),
) -> usize {
    let order = Order::shuffled(pool, rng, data);
    for start in (0..pool.len()).step_by(batch_size) {
        step(order.rows(start, batch_size.min(pool.len() - start)));
    }
    pool.len().div_ceil(batch_size)
}

/// MI-unlearn's two loaders: calls `step` on remain and forget batches side by side, each
/// reshuffled as its iteration starts (remain first, then forget), as many steps as the
/// shorter of the two lasts; returns that number of steps.
pub(crate) fn for_pairs(
    data: &Data,
    remain_batch: usize,
    forget_batch: usize,
    rng: &mut Rng,
    mut step: impl FnMut(Rows<'_>, Rows<'_>),
) -> usize {
    let (remain, forget) = (data.remain(), data.forget());
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

/// The notebook's `train_unlearn_model`. Each step pairs the next remain batch with the next
/// forget batch; an epoch ends when the shorter stream does (the other is cut short). The MI
/// batch is `[remain; forget]` with `Z = 0` followed by the same remain batch with `Z = 1`.
/// (The notebook shuffles the MI batch before its forward pass; the estimate is a sum over rows
/// and does not depend on their order, so this loop does not.)
pub(crate) fn mi_unlearn(
    model: &Classifier,
    data: &Data,
    gamma: f64,
    (epochs, remain_batch, forget_batch, lr): (usize, usize, usize, f64),
    engine: Engine,
    rng: &mut Rng,
    on_epoch: &mut OnEpoch<'_>,
) {
    let step = stepper(engine, model, data, lr);
    run_epochs(model, step, epochs, on_epoch, |step| {
        for_pairs(data, remain_batch, forget_batch, rng, |remain, forget| {
            step.mi(remain, forget, gamma)
        })
    });
}
