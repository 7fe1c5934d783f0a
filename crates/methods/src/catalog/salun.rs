//! SalUn (Fan et al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency",
//! ICLR 2024): the saliency of each weight is `|d CE(forget) / d w|` over the whole forget set;
//! the `sparsity` fraction of weights with the highest saliency (across all parameters) form a
//! mask, and random-label unlearning (remain set plus forget set with random wrong labels)
//! then updates only the masked weights (the others' gradients are zeroed before each step).

use model::Classifier;
use serde::{Deserialize, Serialize};

use crate::loops::OnEpoch;
use crate::method::{Context, Invalid, Method};
use tch::{Kind, Tensor};

use crate::engine::step::Order;
use crate::kit::{Epoch, adam, ce_with, for_batches, random_wrong_labels};
use crate::tensors::Data;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Salun {
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    /// The fraction of weights that may change.
    pub sparsity: f64,
}

impl Default for Salun {
    /// The paper's 50% mask with random-label unlearning as in [`super::random_label`].
    fn default() -> Self {
        Self { sparsity: 0.5, epochs: 2, batch_size: 64, lr: 1e-4 }
    }
}

impl Method for Salun {
    const NAME: &'static str = "salun";

    fn epochs(&self) -> usize {
        self.epochs
    }

    fn check(&self) -> Result<(), Invalid> {
        if self.sparsity > 0.0 && self.sparsity <= 1.0 {
            Ok(())
        } else {
            Err(Invalid::new("sparsity", format!("is {}; it must be in (0, 1]", self.sparsity)))
        }
    }

    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier {
        let (student, data) = (ctx.original(), ctx.data);
        let model = &student;
        let (rng, labels_rng) = (&mut ctx.stream("shuffle/salun"), &mut ctx.stream("labels/salun"));
        let mask = saliency_mask(model, data, self.sparsity);
        let labels = random_wrong_labels(data, model.spec().classes, labels_rng);
        let pool = data.all_train();
        let vars = model.var_store().trainable_variables();
        let mut opt = adam(model, self.lr);
        for epoch in 1..=self.epochs {
            let mut totals = Epoch::default();
            for_batches(&pool, self.batch_size, data, rng, |rows| {
                let ce = ce_with(model, &rows, &labels);
                opt.zero_grad();
                ce.backward();
                for (v, m) in vars.iter().zip(&mask) {
                    let _ = v.grad().g_mul_(m);
                }
                opt.step();
                totals.add(&ce, &ce);
            });
            on_epoch(epoch, model, &totals.stats());
        }
        student
    }
}

/// Per trainable variable (in `trainable_variables` order), 1 where the weight is among the
/// `sparsity` most salient, else 0.
pub(crate) fn saliency_mask(model: &Classifier, data: &Data, sparsity: f64) -> Vec<Tensor> {
    let vars = model.var_store().trainable_variables();
    for v in &vars {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    // The gradient of the summed CE over the whole forget set (in batches of 1024).
    let forget = data.forget();
    let order = Order::in_order(forget, data);
    for start in (0..forget.len()).step_by(1024) {
        let (x, y) = order.rows(start, 1024.min(forget.len() - start)).gather();
        let loss = model.forward(&x).cross_entropy_for_logits(&y) * (x.size()[0] as f64);
        loss.backward();
    }
    let grads: Vec<Tensor> = vars.iter().map(|v| v.grad().abs()).collect();
    let flat = Tensor::cat(&grads.iter().map(|g| g.flatten(0, -1)).collect::<Vec<_>>(), 0);
    let keep = ((sparsity * flat.size()[0] as f64).round() as i64).clamp(1, flat.size()[0]);
    // The keep-th largest saliency is the threshold; ties at it are kept too.
    let (top, _) = flat.topk(keep, 0, true, true);
    let threshold = top.double_value(&[keep - 1]);
    let mask = grads.iter().map(|g| g.ge(threshold).to_kind(Kind::Float)).collect();
    for v in &vars {
        let _ = v.grad().zero_();
    }
    mask
}

