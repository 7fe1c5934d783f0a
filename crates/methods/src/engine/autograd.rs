//! The reference engine: `tch::nn` layers, libtorch's autograd and tch's Adam (PyTorch's
//! `torch.optim.Adam`). It trains every architecture on every device. Each objective term is
//! the tensor expression the baselines' own code used before they ran on any engine, in the
//! same order, so their models keep their bits (`tests::golden_baselines_...`).

use model::Classifier;
use tch::nn::OptimizerConfig;
use tch::{Kind, Reduction, Tensor, nn};

use super::step::{
    Labels, Objective, Optimizer, Rows, SALIENCY_BATCH, Step, Teacher, TensorTotals, Term, Totals,
};
use crate::eval::{Outputs, confidence, sample_loss};
use crate::mi::{mi_batch, mutual_information};
use crate::tensors::Data;

/// Rows per forward pass: large enough that per-call overhead vanishes, small enough to keep
/// activations to a few MB.
const CHUNK: i64 = 8192;

/// One step of autograd through the model's layers, then tch's Adam.
pub(crate) struct AutogradStep<'a> {
    model: &'a Classifier,
    data: &'a Data,
    opt: nn::Optimizer,
    totals: TensorTotals,
    /// Per trainable variable, 1 where it may change ([`Optimizer::salient`]).
    mask: Option<Vec<Tensor>>,
}

impl<'a> AutogradStep<'a> {
    pub(crate) fn new(model: &'a Classifier, data: &'a Data, optimizer: Optimizer<'_>) -> Self {
        let opt = adam(model, optimizer.lr);
        let mask = optimizer.salient.map(|s| saliency_mask(model, data, s.pool, s.sparsity));
        Self { model, data, opt, totals: TensorTotals::default(), mask }
    }

    /// `term`'s unweighted value over a group's rows (`x`, true labels `y`, `logits`).
    fn term(
        &self,
        term: &Term<'_>,
        rows: &Rows<'_>,
        x: &Tensor,
        y: &Tensor,
        logits: &Tensor,
    ) -> Tensor {
        match *term {
            Term::CrossEntropy { weight, labels } => {
                let target = match labels {
                    Labels::True => y.shallow_clone(),
                    Labels::Table(t) => t.tensor(self.data).index_select(0, &rows.index()),
                };
                let input = if weight == 0.0 { logits.detach() } else { logits.shallow_clone() };
                input.cross_entropy_for_logits(&target)
            }
            Term::Distill { temperature, teacher, .. } => {
                distill_kl(logits, &teacher_logits(teacher, x, rows, self.data), temperature)
            }
            Term::MutualInformation { others, .. } => {
                // The notebook's MI batch goes through the model on its own.
                let (x_mi, z) = mi_batch(x, &others.gather().0);
                mutual_information(&self.model.forward(&x_mi), &z)
            }
        }
    }
}

/// Adam over every parameter of `model`: tch's defaults are `torch.optim.Adam`'s (betas
/// (0.9, 0.999), eps 1e-8, no decay), the learning rate `lr`.
fn adam(model: &Classifier, lr: f64) -> nn::Optimizer {
    nn::Adam::default().build(model.var_store(), lr).expect("Adam over a model's variables")
}

impl Step for AutogradStep<'_> {
    fn step(&mut self, objective: &Objective<'_>) {
        let (mut loss, mut ce, mut mi): (Option<Tensor>, Option<Tensor>, Option<Tensor>) =
            (None, None, None);
        for group in objective.groups {
            let (x, y) = group.rows.gather();
            let logits = self.model.forward(&x);
            for term in group.terms {
                let value = self.term(term, &group.rows, &x, &y, &logits);
                if ce.is_none() {
                    ce = Some(value.detach());
                }
                let weight = term.weight();
                // Weights of 1 and -1 as the methods' own code wrote them (the same bits); the
                // MI term as the notebook's `ce + gamma * mi`, whatever gamma.
                let weighted = if let Term::MutualInformation { .. } = term {
                    mi = Some(value.detach());
                    value * weight
                } else if weight == 0.0 {
                    continue;
                } else if weight == 1.0 {
                    value
                } else if weight == -1.0 {
                    -value
                } else {
                    value * weight
                };
                loss = Some(match loss {
                    Some(total) => total + weighted,
                    None => weighted,
                });
            }
        }
        let loss = loss.expect("an objective with a weighted term");
        let loss = match objective.l1 {
            Some(lambda) => loss + l1_norm(self.model) * lambda,
            None => loss,
        };
        match &self.mask {
            None => self.opt.backward_step(&loss),
            Some(mask) => {
                self.opt.zero_grad();
                loss.backward();
                for (v, m) in self.model.var_store().trainable_variables().iter().zip(mask) {
                    let _ = v.grad().g_mul_(m);
                }
                self.opt.step();
            }
        }
        if objective.record {
            let loss = loss.detach();
            let ce = ce.unwrap_or_else(|| loss.shallow_clone());
            self.totals.add(loss, ce, mi);
        }
    }

    fn take_totals(&mut self) -> Totals {
        self.totals.take()
    }

    fn sync(&self) {}
}

/// `teacher`'s logits for the rows `x` (no gradient).
fn teacher_logits(teacher: &Teacher, x: &Tensor, rows: &Rows<'_>, data: &Data) -> Tensor {
    tch::no_grad(|| match &teacher.other {
        None => teacher.main.forward(x),
        Some((other, marked)) => {
            let marked = teacher
                .marked_tensor
                .get_or_init(|| Tensor::from_slice(marked).to_device(data.device()));
            let by_other = marked.index_select(0, &rows.index()).unsqueeze(1);
            other.forward(x).where_self(&by_other, &teacher.main.forward(x))
        }
    })
}

/// `KL(softmax(teacher / T) || softmax(student / T)) * T^2`, summed over classes and averaged
/// over rows.
pub(crate) fn distill_kl(student: &Tensor, teacher: &Tensor, t: f64) -> Tensor {
    let log_s = (student / t).log_softmax(1, Kind::Float);
    let p_t = (teacher / t).softmax(1, Kind::Float);
    let rows = student.size()[0] as f64;
    log_s.kl_div(&p_t, Reduction::Sum, false) * (t * t / rows)
}

/// The sum of `|p|` over every parameter of `model`.
fn l1_norm(model: &Classifier) -> Tensor {
    let vars = model.var_store().trainable_variables();
    let norms: Vec<Tensor> = vars.iter().map(|v| v.abs().sum(Kind::Float)).collect();
    Tensor::stack(&norms, 0).sum(Kind::Float)
}

/// Per trainable variable (in `trainable_variables` order), 1 where the magnitude of the
/// summed cross-entropy's gradient over `pool` is among the `sparsity` largest, else 0.
fn saliency_mask(model: &Classifier, data: &Data, pool: &[i64], sparsity: f64) -> Vec<Tensor> {
    let vars = model.var_store().trainable_variables();
    for v in &vars {
        let mut g = v.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    let order = super::step::Order::in_order(pool, data);
    for start in (0..pool.len()).step_by(SALIENCY_BATCH) {
        let (x, y) = order.rows(start, SALIENCY_BATCH.min(pool.len() - start)).gather();
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

/// Every image's prediction and loss under `model`, through libtorch.
pub(crate) fn outputs(model: &Classifier, data: &Data, confidences: bool) -> Outputs {
    let t = data.tensors();
    tch::no_grad(|| {
        let mut train_confidence = Vec::new();
        let wanted = confidences.then_some(&mut train_confidence);
        let (train_correct, train_loss) = per_sample(model, &t.train_x, &t.train_y, wanted);
        let (test_correct, test_loss) = per_sample(model, &t.test_x, &t.test_y, None);
        Outputs { train_correct, test_correct, train_loss, test_loss, train_confidence }
    })
}

/// Whether each row's arg-max prediction equals its label, and its cross-entropy; its
/// confidence pushed onto `confidences` if given.
fn per_sample(
    model: &Classifier,
    x: &Tensor,
    y: &Tensor,
    mut confidences: Option<&mut Vec<f64>>,
) -> (Vec<bool>, Vec<f64>) {
    let n = x.size()[0];
    let (mut correct, mut loss) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(CHUNK as usize) {
        let len = CHUNK.min(n - start);
        let logits = model.forward(&x.narrow(0, start, len));
        let y = y.narrow(0, start, len);
        let ok = logits.argmax(1, false).eq_tensor(&y);
        correct.extend(Vec::<bool>::try_from(&ok).expect("a bool tensor"));
        let rows = Vec::<f32>::try_from(&logits.to_device(tch::Device::Cpu).flatten(0, -1))
            .expect("float logits");
        let labels = Vec::<i64>::try_from(&y.to_device(tch::Device::Cpu)).expect("int64 labels");
        let classes = rows.len() / labels.len().max(1);
        for (row, &label) in rows.chunks_exact(classes).zip(&labels) {
            loss.push(sample_loss(row, label as usize));
            if let Some(c) = confidences.as_deref_mut() {
                c.push(confidence(row, label as usize));
            }
        }
    }
    (correct, loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn distill_kl_is_zero_for_equal_logits_and_matches_the_formula() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0]).view([2, 3]);
        assert!(distill_kl(&a, &a, 4.0).double_value(&[]).abs() < 1e-5);
        let b = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 1.0, 1.0, 1.0]).view([2, 3]);
        // By hand: mean over rows of sum_c p_t (ln p_t - ln p_s), times T^2, at T = 2.
        let t = 2.0;
        let (ps, pt) = ((&a / t).softmax(1, Kind::Double), (&b / t).softmax(1, Kind::Double));
        let expected =
            (&pt * (pt.log() - ps.log())).sum(Kind::Double).double_value(&[]) / 2.0 * 4.0;
        let got = distill_kl(&a, &b, t).double_value(&[]);
        assert!((got - expected).abs() < 1e-5, "{got} {expected}");
    }
}
