//! The native engine's [`Step`]: one pass of the trunk over every row an objective names,
//! each term's gradient written into the logits' (`heads`), then the backward pass and Adam.

use model::Classifier;

use super::adam::Adam;
use super::batch::Batch;
use super::eval::EVAL_BLOCK;
use super::heads::{cross_entropy, distill, mutual_information};
use super::net::{Hook, Mask, Net};
use crate::engine::step::{
    Labels, Objective, Optimizer, SALIENCY_BATCH, Step, Teacher, Term, Totals,
};
use crate::tensors::Data;

/// The native engine's optimisation state over a copy of `model` (written back by
/// [`Step::sync`]).
pub(crate) struct Native<'a> {
    pub(super) model: &'a Classifier,
    pub(super) data: &'a Data,
    pub(super) net: Net,
    pub(super) adam: Adam,
    pub(super) acts: Vec<Vec<f32>>,
    pub(super) rows: Vec<usize>,
    pub(super) batch: Batch,
    pub(super) totals: Totals,
    /// Which parameters may change ([`Optimizer::salient`]).
    pub(super) mask: Option<Mask>,
}

impl<'a> Native<'a> {
    pub(crate) fn new(model: &'a Classifier, data: &'a Data, optimizer: Optimizer<'_>) -> Self {
        let x = &data.images().sparse().0;
        let net = Net::from_mlp(model, x.background);
        assert_eq!(x.dim, net.layers[0].fan_in, "the model's input width is the images' width");
        let mut native = Self {
            model,
            data,
            net,
            adam: Adam { lr: optimizer.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 },
            acts: Vec::new(),
            rows: Vec::new(),
            batch: Batch::default(),
            totals: Totals::default(),
            mask: None,
        };
        native.mask = optimizer.salient.map(|s| native.saliency_mask(s.pool, s.sparsity));
        native
    }

    /// 1 for the `sparsity` fraction of parameters with the largest gradient magnitude of
    /// the summed cross-entropy over `pool`, else 0 ([`Saliency`]).
    pub(super) fn saliency_mask(&mut self, pool: &[i64], sparsity: f64) -> Mask {
        let x = &self.data.images().sparse().0;
        let labels = &self.data.images().dataset().train.labels;
        let classes = self.net.classes();
        let mut sums: Mask = self
            .net
            .layers
            .iter()
            .map(|l| (vec![0.0; l.weight.value.len()], vec![0.0; l.bias.value.len()]))
            .collect();
        // The gradient of the summed cross-entropy, batch by batch (each batch's mean times
        // its size, as the autograd engine computes it).
        for chunk in pool.chunks(SALIENCY_BATCH) {
            self.rows.clear();
            self.rows.extend(chunk.iter().map(|&i| i as usize));
            self.net.forward(x, &self.rows, &mut self.acts, Some(&mut self.batch));
            let logits = self.acts.last().expect("a forward pass");
            let mut dlogits = vec![0.0f32; logits.len()];
            let ys = self.rows.iter().map(|&i| usize::from(labels[i]));
            cross_entropy(logits, ys, classes, chunk.len() as f32, &mut dlogits);
            self.net.backward(&self.batch, &self.acts, &dlogits, None, Hook::NONE);
            for (sum, layer) in sums.iter_mut().zip(&self.net.layers) {
                for (s, g) in sum.0.iter_mut().zip(&layer.weight.grad) {
                    *s += g;
                }
                for (s, g) in sum.1.iter_mut().zip(&layer.bias.grad) {
                    *s += g;
                }
            }
        }
        let mut all: Vec<f32> =
            sums.iter().flat_map(|(w, b)| w.iter().chain(b)).map(|g| g.abs()).collect();
        let keep = ((sparsity * all.len() as f64).round() as usize).clamp(1, all.len());
        // The keep-th largest magnitude is the threshold; ties at it are kept too.
        let (_, threshold, _) = all.select_nth_unstable_by(keep - 1, |a, b| b.total_cmp(a));
        let threshold = *threshold;
        let keep = |g: &mut f32| *g = if g.abs() >= threshold { 1.0 } else { 0.0 };
        for (w, b) in &mut sums {
            w.iter_mut().chain(b.iter_mut()).for_each(keep);
        }
        sums
    }

    /// `term`'s value on a group's `logits` (its rows `ids`, then the rows its term brings),
    /// adding its weighted gradient into `dlogits` (the same rows).
    pub(super) fn term(
        &self,
        term: &Term<'_>,
        ids: &[usize],
        logits: &[f32],
        dlogits: &mut [f32],
    ) -> f64 {
        let labels = &self.data.images().dataset().train.labels;
        let classes = self.net.classes();
        let own = ids.len() * classes;
        match *term {
            Term::CrossEntropy { weight, labels: target } => {
                let ys = ids.iter().map(|&i| match target {
                    Labels::True => usize::from(labels[i]),
                    Labels::Table(t) => t.labels[i] as usize,
                });
                cross_entropy(&logits[..own], ys, classes, weight as f32, &mut dlogits[..own])
            }
            Term::Distill { weight, temperature, teacher } => {
                let all = teacher_logits(teacher, self.data);
                let target: Vec<f32> = ids
                    .iter()
                    .flat_map(|&i| all[i * classes..(i + 1) * classes].iter().copied())
                    .collect();
                let (t, w) = (temperature as f32, weight as f32);
                distill(&logits[..own], &target, classes, t, w, &mut dlogits[..own])
            }
            // The group's rows come first, so they are the prefix counted twice.
            Term::MutualInformation { weight, .. } => {
                mutual_information(logits, classes, ids.len(), weight, dlogits)
            }
        }
    }
}

/// The logits of every training image under `teacher`, computed once per teacher.
pub(super) fn teacher_logits<'t>(teacher: &'t Teacher, data: &Data) -> &'t [f32] {
    teacher.native_logits.get_or_init(|| {
        let x = &data.images().sparse().0;
        let all = |model: &Classifier| {
            let net = Net::from_mlp(model, x.background);
            let (mut acts, mut logits) = (Vec::new(), Vec::with_capacity(x.len() * net.classes()));
            let rows: Vec<usize> = (0..x.len()).collect();
            for block in rows.chunks(EVAL_BLOCK) {
                net.forward(x, block, &mut acts, None);
                logits.extend_from_slice(acts.last().expect("a forward pass"));
            }
            logits
        };
        let mut logits = all(&teacher.main);
        if let Some((other, marked)) = &teacher.other {
            let classes = logits.len() / x.len().max(1);
            let theirs = all(other);
            for (i, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
                let r = i * classes..(i + 1) * classes;
                logits[r.clone()].copy_from_slice(&theirs[r]);
            }
        }
        logits
    })
}

impl Step for Native<'_> {
    fn step(&mut self, objective: &Objective<'_>) {
        // Each group's rows, then the rows its terms bring: one pass through the trunk.
        let x = &self.data.images().sparse().0;
        self.rows.clear();
        for group in objective.groups {
            self.rows.extend(group.rows.ids().iter().map(|&i| i as usize));
            for others in group.terms.iter().filter_map(Term::others) {
                self.rows.extend(others.ids().iter().map(|&i| i as usize));
            }
        }
        self.net.forward(x, &self.rows, &mut self.acts, Some(&mut self.batch));
        let classes = self.net.classes();
        let logits = self.acts.last().expect("a forward pass");
        let mut dlogits = vec![0.0f32; logits.len()];
        let (mut loss, mut ce, mut mi) = (0.0, None, None);
        let mut start = 0;
        for group in objective.groups {
            let own = group.rows.ids().len();
            let brought: usize =
                group.terms.iter().filter_map(Term::others).map(|o| o.ids().len()).sum();
            let ids = &self.rows[start..start + own];
            let r = start * classes..(start + own + brought) * classes;
            for term in group.terms {
                let value = self.term(term, ids, &logits[r.clone()], &mut dlogits[r.clone()]);
                if let Term::MutualInformation { .. } = term {
                    mi = Some(value);
                }
                ce.get_or_insert(value);
                loss += term.weight() * value;
            }
            start += own + brought;
        }
        if let Some(lambda) = objective.l1 {
            loss += lambda * self.net.l1_norm();
        }
        let step = self.adam.next();
        let hook = Hook { l1: objective.l1.map(|l| l as f32), mask: self.mask.as_ref() };
        self.net.backward(&self.batch, &self.acts, &dlogits, Some(step), hook);
        self.net.update(step, true, hook);
        if objective.record {
            self.totals.add(loss, ce.unwrap_or(loss), mi);
        }
    }

    fn take_totals(&mut self) -> Totals {
        std::mem::take(&mut self.totals)
    }

    fn sync(&self) {
        self.net.write_to(self.model);
    }
}
