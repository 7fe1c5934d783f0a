//! The interface between the training loops and the engines: the batches a loop hands out
//! ([`Order`], [`Rows`]), the step an engine computes on them ([`Step`]), set up by an
//! [`Optimizer`] (Adam, optionally masked to the salient weights), the [`Objective`] every
//! method states its loss as (weighted cross-entropy, distillation and mutual-information
//! terms over groups of rows, an L1 penalty) and the losses it reports ([`Totals`],
//! [`EpochStats`]). Engines implement [`Step`]; loops and methods drive it. This module
//! imports neither.

use std::cell::OnceCell;

use data::rng::{Rng, permutation};
use model::Classifier;
use tch::Tensor;

use crate::params::Rate;
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

/// A shuffled order of training-set indices, for one epoch; the autograd engine gathers its
/// batches through it as a tensor, made once per epoch.
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

    /// The epoch's means over `steps` steps (the sums themselves when there were none).
    pub(crate) fn mean(self, steps: usize) -> EpochStats {
        let mean = |t: f64| t / steps.max(1) as f64;
        EpochStats { loss: mean(self.loss), ce: mean(self.ce), mi: self.mi.map(mean), steps }
    }
}

/// One optimisation step of a training loop, whatever the engine: every method states its
/// loss as an [`Objective`], and each engine computes every [`Term`].
pub(crate) trait Step {
    /// One step of the optimiser on `objective`.
    fn step(&mut self, objective: &Objective<'_>);
    /// The sums of the step losses since the last call (read once per epoch: the autograd
    /// engine keeps them as tensors, so the loop never waits on the host).
    fn take_totals(&mut self) -> Totals;
    /// Brings the model up to date (the native engine trains a copy of it).
    fn sync(&self);
}

/// How a loop's optimiser is set up: Adam (torch.optim.Adam's defaults) at `lr`, and
/// optionally a gradient mask.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Optimizer<'a> {
    pub lr: f64,
    /// When given, every step changes only the parameters this selects.
    pub salient: Option<Saliency<'a>>,
}

impl Optimizer<'_> {
    /// Adam at `lr` over every parameter.
    pub(crate) fn adam(lr: Rate) -> Self {
        Self { lr: lr.get(), salient: None }
    }
}

/// SalUn's weight saliency: the `sparsity` fraction of parameters with the largest gradient
/// magnitude of the summed cross-entropy over `pool` (at the starting parameters, in batches
/// of [`SALIENCY_BATCH`]; ties at the threshold kept) are the only ones that change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Saliency<'a> {
    pub pool: &'a [i64],
    pub sparsity: f64,
}

/// Rows per forward pass of [`Saliency`]'s gradient.
pub(crate) const SALIENCY_BATCH: usize = 1024;

/// What a step minimises: the sum of every group's terms, each over the logits of its own
/// rows (all groups go through the model in one pass where the engine can), plus an optional
/// L1 penalty on the parameters.
pub(crate) struct Objective<'a> {
    pub groups: &'a [Group<'a>],
    /// `lambda * sum |p|` over every parameter, when given.
    pub l1: Option<f64>,
    /// Whether the step's losses enter the epoch's totals (SCRUB's max-steps do not). The
    /// totals' `loss` is the objective's value, their `ce` the first term's unweighted value,
    /// their `mi` a mutual-information term's.
    pub record: bool,
}

impl<'a> Objective<'a> {
    /// `groups` without a penalty, recorded.
    pub(crate) fn of(groups: &'a [Group<'a>]) -> Self {
        Self { groups, l1: None, record: true }
    }
}

/// A batch of rows and the terms computed on its logits.
pub(crate) struct Group<'a> {
    pub rows: Rows<'a>,
    pub terms: &'a [Term<'a>],
}

/// One loss term over a group's logits, times `weight` (negative: ascent; zero: only
/// reported).
///
/// A new term is a variant here and its computation in each engine: `engine::autograd`'s
/// `term` (a tensor expression, differentiated by libtorch) and `engine::native`'s `heads`
/// (its value and its gradient with respect to the logits, written out and checked against
/// autograd's in that module's tests).
#[derive(Clone, Copy)]
pub(crate) enum Term<'a> {
    /// The mean cross-entropy against `labels`.
    CrossEntropy { weight: f64, labels: Labels<'a> },
    /// `KL(softmax(teacher / T) || softmax(student / T)) * T^2`, summed over classes and
    /// averaged over rows (the distillation loss of SCRUB's and Bad Teacher's code).
    Distill { weight: f64, temperature: f64, teacher: &'a Teacher },
    /// The plug-in estimate of `I(Y_hat; Z)` (`crate::mi`) over MI-unlearn's MI batch: the
    /// group's rows followed by `others` with `Z = 0`, then the group's rows again with
    /// `Z = 1`. Unlike the other terms it is added (and reported) at weight zero too, as the
    /// notebook's `ce + gamma * mi` is.
    MutualInformation { weight: f64, others: Rows<'a> },
}

impl Term<'_> {
    /// A cross-entropy term against the true labels, times `weight`.
    pub(crate) fn ce(weight: f64) -> Term<'static> {
        Term::CrossEntropy { weight, labels: Labels::True }
    }

    pub(crate) fn weight(&self) -> f64 {
        match *self {
            Term::CrossEntropy { weight, .. }
            | Term::Distill { weight, .. }
            | Term::MutualInformation { weight, .. } => weight,
        }
    }

    /// The rows it reads besides its group's (an engine runs them through the model in the
    /// same pass, right after the group's).
    pub(crate) fn others(&self) -> Option<&Rows<'_>> {
        match self {
            Term::MutualInformation { others, .. } => Some(others),
            _ => None,
        }
    }
}

/// The labels a cross-entropy term compares against.
#[derive(Clone, Copy)]
pub(crate) enum Labels<'a> {
    /// The training set's own.
    True,
    /// One per training image.
    Table(&'a LabelTable),
}

/// A label for every training image (e.g. the forget set relabelled at random), with its
/// tensor made once for the libtorch engine.
pub(crate) struct LabelTable {
    pub labels: Vec<i64>,
    tensor: OnceCell<Tensor>,
}

impl LabelTable {
    pub(crate) fn new(labels: Vec<i64>) -> Self {
        Self { labels, tensor: OnceCell::new() }
    }

    /// The labels as a tensor on `data`'s device.
    pub(crate) fn tensor(&self, data: &Data) -> &Tensor {
        self.tensor.get_or_init(|| Tensor::from_slice(&self.labels).to_device(data.device()))
    }
}

/// A frozen model that a distillation term copies: `main`, or `other` for the training
/// images marked in `marked`. Each engine keeps what it needs of it (the native engine: the
/// logits of every training image, computed once).
pub(crate) struct Teacher {
    pub main: Classifier,
    pub other: Option<(Classifier, Vec<bool>)>,
    pub(crate) marked_tensor: OnceCell<Tensor>,
    pub(crate) native_logits: OnceCell<Vec<f32>>,
}

impl Teacher {
    /// `main` for every image.
    pub(crate) fn new(main: Classifier) -> Self {
        Self { main, other: None, marked_tensor: OnceCell::new(), native_logits: OnceCell::new() }
    }

    /// `main`, but `other` for the training images in `marked`.
    pub(crate) fn with_other(main: Classifier, other: Classifier, marked: Vec<bool>) -> Self {
        Self { other: Some((other, marked)), ..Self::new(main) }
    }
}

/// Per-step losses kept as tensors, for the autograd engine.
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
