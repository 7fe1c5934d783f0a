//! The two training loops. Both reshuffle every epoch from the run's stream, gather batches by
//! index from the job's tensors, and keep the last, partial batch (PyTorch's `DataLoader`
//! with `shuffle=True, drop_last=False`). Losses are accumulated as tensors and read once per
//! epoch, so the loop never waits on the host.

use data::rng::{Rng, permutation};
use model::Mlp;
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor, nn};

use crate::fused::Fused;
use crate::mi::{mi_batch, mutual_information};
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

/// `pool` shuffled, as a tensor of training-set indices on the data's device.
fn shuffled(pool: &[i64], rng: &mut Rng, data: &Data) -> Tensor {
    let order: Vec<i64> =
        permutation(rng, pool.len()).into_iter().map(|p| pool[p as usize]).collect();
    Tensor::from_slice(&order).to_device(data.device())
}

/// `len` rows starting at `start` of `order`, as `(images, labels)`.
fn batch(data: &Data, order: &Tensor, start: usize, len: usize) -> (Tensor, Tensor) {
    let idx = order.narrow(0, start as i64, len as i64);
    (data.train_x.index_select(0, &idx), data.train_y.index_select(0, &idx))
}

/// How each optimisation step is computed. Both engines compute the same maths (the same
/// batches, loss, MI estimator and Adam); they differ in the order of some float sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// libtorch autograd through `tch::nn` layers and tch's Adam: the reference.
    #[default]
    Autograd,
    /// A hand-written forward and backward pass over flat parameters, with Adam on one flat
    /// buffer (see `fused.rs`): several times fewer libtorch calls per step.
    Fused,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Autograd, Engine::Fused];

    /// The name used in configs and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Autograd => "autograd",
            Engine::Fused => "fused",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// One optimisation step of a training loop, whatever the engine.
pub(crate) trait Step {
    /// A cross-entropy step; returns the batch loss (detached).
    fn supervised(&mut self, x: &Tensor, y: &Tensor) -> Tensor;
    /// An MI-unlearn step; returns `(ce, mi, loss)` (detached).
    fn mi(&mut self, xr: &Tensor, yr: &Tensor, xf: &Tensor, gamma: f64)
    -> (Tensor, Tensor, Tensor);
    /// Brings the model up to date (the fused engine trains a flat copy of it).
    fn sync(&self);
}

struct AutogradStep<'a> {
    model: &'a Mlp,
    opt: nn::Optimizer,
}

impl Step for AutogradStep<'_> {
    fn supervised(&mut self, x: &Tensor, y: &Tensor) -> Tensor {
        let loss = self.model.forward(x).cross_entropy_for_logits(y);
        self.opt.backward_step(&loss);
        loss.detach()
    }

    fn mi(
        &mut self,
        xr: &Tensor,
        yr: &Tensor,
        xf: &Tensor,
        gamma: f64,
    ) -> (Tensor, Tensor, Tensor) {
        let ce = self.model.forward(xr).cross_entropy_for_logits(yr);
        let (x_mi, z) = mi_batch(xr, xf);
        let mi = mutual_information(&self.model.forward(&x_mi), &z);
        let loss = &ce + &mi * gamma;
        self.opt.backward_step(&loss);
        (ce.detach(), mi.detach(), loss.detach())
    }

    fn sync(&self) {}
}

/// A fresh optimiser (Adam, lr `lr`) over `model` for `engine`.
fn stepper<'a>(engine: Engine, model: &'a Mlp, lr: f64) -> Box<dyn Step + 'a> {
    match engine {
        Engine::Autograd => {
            // tch's defaults are torch.optim.Adam's: betas (0.9, 0.999), eps 1e-8, no decay.
            let opt = nn::Adam::default()
                .build(model.var_store(), lr)
                .expect("Adam over an MLP's variables");
            Box::new(AutogradStep { model, opt })
        }
        Engine::Fused => Box::new(Fused::new(model, lr)),
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
    let mut step = stepper(engine, model, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let order = shuffled(pool, rng, data);
        let mut total = Tensor::zeros([], (Kind::Float, data.device()));
        let mut steps = 0;
        for start in (0..pool.len()).step_by(cfg.batch_size) {
            let (x, y) = batch(data, &order, start, cfg.batch_size.min(pool.len() - start));
            total += step.supervised(&x, &y);
            steps += 1;
        }
        step.sync();
        let mean = total.double_value(&[]) / steps as f64;
        on_epoch(epoch, model, &EpochStats { loss: mean, ce: mean, mi: None, steps });
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
    let mut step = stepper(engine, model, cfg.lr);
    let (remain, forget) = (data.remain(), data.forget());
    let steps = remain
        .len()
        .div_ceil(cfg.remain_batch_size)
        .min(forget.len().div_ceil(cfg.forget_batch_size));
    let device = data.device();
    for epoch in 1..=cfg.epochs {
        // Two loaders, each reshuffled as its iteration starts: remain first, then forget.
        let remain_order = shuffled(remain, rng, data);
        let forget_order = shuffled(forget, rng, data);
        let zero = || Tensor::zeros([], (Kind::Float, device));
        let (mut ce_total, mut mi_total, mut loss_total) = (zero(), zero(), zero());
        for i in 0..steps {
            let r0 = i * cfg.remain_batch_size;
            let f0 = i * cfg.forget_batch_size;
            let nr = cfg.remain_batch_size.min(remain.len() - r0);
            let nf = cfg.forget_batch_size.min(forget.len() - f0);
            let (xr, yr) = batch(data, &remain_order, r0, nr);
            let (xf, _) = batch(data, &forget_order, f0, nf);
            let (ce, mi, loss) = step.mi(&xr, &yr, &xf, cfg.gamma);
            ce_total += ce;
            mi_total += mi;
            loss_total += loss;
        }
        step.sync();
        let mean = |t: &Tensor| t.double_value(&[]) / steps as f64;
        let stats = EpochStats {
            loss: mean(&loss_total),
            ce: mean(&ce_total),
            mi: Some(mean(&mi_total)),
            steps,
        };
        on_epoch(epoch, model, &stats);
    }
}
