//! The two training loops. Both reshuffle every epoch from the run's stream, gather batches by
//! index from the job's tensors, and keep the last, partial batch (PyTorch's `DataLoader`
//! with `shuffle=True, drop_last=False`). Losses are accumulated as tensors and read once per
//! epoch, so the loop never waits on the host.

use std::cell::OnceCell;

use data::rng::{Rng, permutation};
use model::Mlp;
use tch::nn::OptimizerConfig;
use tch::{Tensor, nn};

use crate::fused::Fused;
use crate::mi::{mi_batch, mutual_information};
use crate::native::Native;
use crate::{Data, MiUnlearn, Supervised};

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
}

/// How each optimisation step is computed. All engines compute the same maths (the same
/// batches, loss, MI estimator and Adam); they differ in the order of some float sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// libtorch autograd through `tch::nn` layers and tch's Adam: the reference.
    Autograd,
    /// A hand-written forward and backward pass over flat libtorch parameters, with Adam on
    /// one flat buffer (see `fused.rs`): several times fewer libtorch calls per step.
    Fused,
    /// Plain Rust on the CPU, computing the first layer from each image's non-background
    /// pixels (see `native.rs`): no libtorch call per step. The default.
    #[default]
    Native,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Autograd, Engine::Fused, Engine::Native];

    /// The name used in configs and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Autograd => "autograd",
            Engine::Fused => "fused",
            Engine::Native => "native",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
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
    /// Brings the model up to date (the fused and native engines train a copy of it).
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

struct AutogradStep<'a> {
    model: &'a Mlp,
    opt: nn::Optimizer,
    totals: TensorTotals,
}

impl Step for AutogradStep<'_> {
    fn supervised(&mut self, rows: Rows<'_>) {
        let (x, y) = rows.gather();
        let loss = self.model.forward(&x).cross_entropy_for_logits(&y);
        self.opt.backward_step(&loss);
        let loss = loss.detach();
        self.totals.add(loss.shallow_clone(), loss, None);
    }

    fn mi(&mut self, remain: Rows<'_>, forget: Rows<'_>, gamma: f64) {
        let ((xr, yr), (xf, _)) = (remain.gather(), forget.gather());
        let ce = self.model.forward(&xr).cross_entropy_for_logits(&yr);
        let (x_mi, z) = mi_batch(&xr, &xf);
        let mi = mutual_information(&self.model.forward(&x_mi), &z);
        let loss = &ce + &mi * gamma;
        self.opt.backward_step(&loss);
        self.totals.add(loss.detach(), ce.detach(), Some(mi.detach()));
    }

    fn take_totals(&mut self) -> Totals {
        self.totals.take()
    }

    fn sync(&self) {}
}

/// A fresh optimiser (Adam, lr `lr`) over `model` for `engine`.
fn stepper<'a>(engine: Engine, model: &'a Mlp, data: &'a Data, lr: f64) -> Box<dyn Step + 'a> {
    match engine {
        Engine::Autograd => {
            // tch's defaults are torch.optim.Adam's: betas (0.9, 0.999), eps 1e-8, no decay.
            let opt = nn::Adam::default()
                .build(model.var_store(), lr)
                .expect("Adam over an MLP's variables");
            Box::new(AutogradStep { model, opt, totals: TensorTotals::default() })
        }
        Engine::Fused => Box::new(Fused::new(model, lr)),
        Engine::Native => Box::new(Native::new(model, data, lr)),
    }
}

/// The notebook's `train_model`: fresh Adam, `epochs` passes over `pool` in shuffled batches.
pub(crate) fn supervised(
    model: &Mlp,
    data: &Data,
    pool: &[i64],
    cfg: &Supervised,
    engine: Engine,
    rng: &mut Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut step = stepper(engine, model, data, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let mut steps = 0;
        for_batches(pool, cfg.batch_size, data, rng, |rows| {
            step.supervised(rows);
            steps += 1;
        });
        step.sync();
        let mean = step.take_totals().loss / steps as f64;
        on_epoch(epoch, model, &EpochStats { loss: mean, ce: mean, mi: None, steps });
    }
}

/// The notebook's loader: calls `step` on every batch of `pool`, reshuffled from `rng` (the
/// last batch partial).
pub(crate) fn for_batches(
    pool: &[i64],
    batch_size: usize,
    data: &Data,
    rng: &mut Rng,
    mut step: impl FnMut(Rows<'_>),
) {
    let order = Order::shuffled(pool, rng, data);
    for start in (0..pool.len()).step_by(batch_size) {
        step(order.rows(start, batch_size.min(pool.len() - start)));
    }
}

/// MI-unlearn's two loaders: calls `step` on remain and forget batches side by side, each
/// reshuffled as its iteration starts (remain first, then forget), as many steps as the
/// shorter of the two lasts.
pub(crate) fn for_pairs(
    data: &Data,
    remain_batch: usize,
    forget_batch: usize,
    rng: &mut Rng,
    mut step: impl FnMut(Rows<'_>, Rows<'_>),
) {
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
}

/// The notebook's `train_unlearn_model`. Each step pairs the next remain batch with the next
/// forget batch; an epoch ends when the shorter stream does (the other is cut short). The MI
/// batch is `[remain; forget]` with `Z = 0` followed by the same remain batch with `Z = 1`.
/// (The notebook shuffles the MI batch before its forward pass; the estimate is a sum over rows
/// and does not depend on their order, so this loop does not.)
pub(crate) fn mi_unlearn(
    model: &Mlp,
    data: &Data,
    cfg: &MiUnlearn,
    engine: Engine,
    rng: &mut Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut step = stepper(engine, model, data, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let mut steps = 0;
        for_pairs(data, cfg.remain_batch_size, cfg.forget_batch_size, rng, |remain, forget| {
            step.mi(remain, forget, cfg.gamma);
            steps += 1;
        });
        step.sync();
        let totals = step.take_totals();
        let mean = |t: f64| t / steps as f64;
        let stats = EpochStats {
            loss: mean(totals.loss),
            ce: mean(totals.ce),
            mi: totals.mi.map(mean),
            steps,
        };
        on_epoch(epoch, model, &stats);
    }
}
