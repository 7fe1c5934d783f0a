//! The interface between the training loops and the engines: the batches a loop hands out
//! ([`Order`], [`Rows`]), the step an engine computes on them ([`Step`]) and the losses it
//! reports ([`Totals`], [`EpochStats`]). Engines implement [`Step`]; loops drive it. This
//! module imports neither.

use std::cell::OnceCell;

use data::rng::{Rng, permutation};
use tch::Tensor;

use crate::tensors::Data;

/// One epoch's means over its steps (the notebook prints the same).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EpochStats {
    /// Mean training loss (for MI-unlearn: `ce + gamma * mi`).
    pub loss: f64,
    /// Mean cross-entropy on the training batches.
    pub ce: f64,
    /// Mean MI estimate (MI-unlearn only).
    pub mi: Option<f64>,
    /// Optimiser steps taken.
    pub steps: usize,
}

/// A shuffled order of training-set indices, for one epoch; the libtorch engines gather
/// their batches through it as a tensor, made once per epoch.
pub(crate) struct Order<'a> {
    ids: Vec<i64>,
    data: &'a Data,
    tensor: OnceCell<Tensor>,
}

impl<'a> Order<'a> {
    /// `pool` shuffled by `rng`.
    pub(crate) fn shuffled(pool: &[i64], rng: &mut Rng, data: &'a Data) -> Self {
        let ids = permutation(rng, pool.len()).into_iter().map(|p| pool[p as usize]).collect();
        Self { ids, data, tensor: OnceCell::new() }
    }

    /// `pool` in its own order.
    pub(crate) fn in_order(pool: &[i64], data: &'a Data) -> Self {
        Self { ids: pool.to_vec(), data, tensor: OnceCell::new() }
    }

    pub(crate) fn rows(&self, start: usize, len: usize) -> Rows<'_> {
        Rows { order: self, start, len }
    }
}

/// A batch: `len` consecutive entries of an [`Order`].
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    order: &'a Order<'a>,
    start: usize,
    len: usize,
}

impl Rows<'_> {
    /// The batch's training-set indices.
    pub(crate) fn ids(&self) -> &[i64] {
        &self.order.ids[self.start..self.start + self.len]
    }

    /// The batch as `(images, labels)` tensors on the data's device.
    pub(crate) fn gather(&self) -> (Tensor, Tensor) {
        let idx = self.index();
        let t = self.order.data.tensors();
        (t.train_x.index_select(0, &idx), t.train_y.index_select(0, &idx))
    }

    /// The rows' training-set indices as a tensor on the data's device.
    pub(crate) fn index(&self) -> Tensor {
        let data = self.order.data;
        let order = self
            .order
            .tensor
            .get_or_init(|| Tensor::from_slice(&self.order.ids).to_device(data.device()));
        order.narrow(0, self.start as i64, self.len as i64)
    }
}

/// Sums of the per-step losses of an epoch.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Totals {
    pub loss: f64,
    pub ce: f64,
    pub mi: Option<f64>,
}

impl Totals {
    pub(crate) fn add(&mut self, loss: f64, ce: f64, mi: Option<f64>) {
        self.loss += loss;
        self.ce += ce;
        if let Some(mi) = mi {
            *self.mi.get_or_insert(0.0) += mi;
        }
    }

    /// The epoch's means over `steps` steps.
    pub(crate) fn mean(self, steps: usize) -> EpochStats {
        let mean = |t: f64| t / steps as f64;
        EpochStats { loss: mean(self.loss), ce: mean(self.ce), mi: self.mi.map(mean), steps }
    }
}

/// One optimisation step of a training loop, whatever the engine.
pub(crate) trait Step {
    /// A cross-entropy step on a batch.
    fn supervised(&mut self, rows: Rows<'_>);
    /// An MI-unlearn step on a remain batch and a forget batch.
    fn mi(&mut self, remain: Rows<'_>, forget: Rows<'_>, gamma: f64);
    /// The sums of the step losses since the last call (read once per epoch: the libtorch
    /// engines keep them as tensors, so the loop never waits on the host).
    fn take_totals(&mut self) -> Totals;
    /// Brings the model up to date (the native engine trains a copy of it).
    fn sync(&self);
}

/// Per-step losses kept as tensors, for the libtorch engines.
#[derive(Default)]
pub(crate) struct TensorTotals {
    loss: Option<Tensor>,
    ce: Option<Tensor>,
    mi: Option<Tensor>,
}

impl TensorTotals {
    pub(crate) fn add(&mut self, loss: Tensor, ce: Tensor, mi: Option<Tensor>) {
        let add = |slot: &mut Option<Tensor>, t: Tensor| {
            *slot = Some(match slot.take() {
                Some(total) => total + t,
                None => t,
            });
        };
        add(&mut self.loss, loss);
        add(&mut self.ce, ce);
        if let Some(mi) = mi {
            add(&mut self.mi, mi);
        }
    }

    pub(crate) fn take(&mut self) -> Totals {
        let value = |t: Option<Tensor>| t.map(|t| t.double_value(&[]));
        let taken = std::mem::take(self);
        Totals {
            loss: value(taken.loss).unwrap_or(0.0),
            ce: value(taken.ce).unwrap_or(0.0),
            mi: value(taken.mi),
        }
    }
}
