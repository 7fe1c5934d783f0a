//! The two training loops. Both reshuffle every epoch from the run's stream, gather batches by
//! index from the job's tensors, and keep the last, partial batch (PyTorch's `DataLoader`
//! with `shuffle=True, drop_last=False`). Losses are accumulated as tensors and read once per
//! epoch, so the loop never waits on the host.

use data::rng::{Rng, permutation};
use model::Mlp;
use tch::nn::OptimizerConfig;
use tch::{Kind, Tensor, nn};

use crate::mi::mutual_information;
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

fn adam(model: &Mlp, lr: f64) -> nn::Optimizer {
    // tch's defaults are torch.optim.Adam's: betas (0.9, 0.999), eps 1e-8, no weight decay.
    nn::Adam::default().build(model.var_store(), lr).expect("Adam over an MLP's variables")
}

/// The notebook's `train_model`: fresh Adam, `epochs` passes over `pool` in shuffled batches.
pub(crate) fn supervised(
    model: &Mlp,
    data: &Data,
    pool: &[i64],
    cfg: &Supervised,
    rng: &mut Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut opt = adam(model, cfg.lr);
    for epoch in 1..=cfg.epochs {
        let order = shuffled(pool, rng, data);
        let mut total = Tensor::zeros([], (Kind::Float, data.device()));
        let mut steps = 0;
        for start in (0..pool.len()).step_by(cfg.batch_size) {
            let (x, y) = batch(data, &order, start, cfg.batch_size.min(pool.len() - start));
            let loss = model.forward(&x).cross_entropy_for_logits(&y);
            opt.backward_step(&loss);
            total += loss.detach();
            steps += 1;
        }
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
    rng: &mut Rng,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) {
    let mut opt = adam(model, cfg.lr);
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
        let mut ce_total = Tensor::zeros([], (Kind::Float, device));
        let mut mi_total = Tensor::zeros([], (Kind::Float, device));
        let mut loss_total = Tensor::zeros([], (Kind::Float, device));
        for step in 0..steps {
            let r0 = step * cfg.remain_batch_size;
            let f0 = step * cfg.forget_batch_size;
            let nr = cfg.remain_batch_size.min(remain.len() - r0);
            let nf = cfg.forget_batch_size.min(forget.len() - f0);
            let (xr, yr) = batch(data, &remain_order, r0, nr);
            let (xf, _) = batch(data, &forget_order, f0, nf);

            let ce = model.forward(&xr).cross_entropy_for_logits(&yr);
            let x_mi = Tensor::cat(&[&xr, &xf, &xr], 0);
            let z = Tensor::cat(
                &[
                    Tensor::zeros([(nr + nf) as i64], (Kind::Float, device)),
                    Tensor::ones([nr as i64], (Kind::Float, device)),
                ],
                0,
            );
            let mi = mutual_information(&model.forward(&x_mi), &z);
            let loss = &ce + &mi * cfg.gamma;
            opt.backward_step(&loss);
            ce_total += ce.detach();
            mi_total += mi.detach();
            loss_total += loss.detach();
        }
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
