//! The reference engine: `tch::nn` layers, libtorch's autograd and tch's Adam (PyTorch's
//! `torch.optim.Adam`). It trains every architecture on every device, and it is how every
//! method outside the notebook's four computes.

use model::Classifier;
use tch::nn::OptimizerConfig;
use tch::{Tensor, nn};

use super::step::{Rows, Step, TensorTotals, Totals};
use crate::eval::{Outputs, confidence, sample_loss};
use crate::mi::{mi_batch, mutual_information};
use crate::tensors::Data;

/// Rows per forward pass: large enough that per-call overhead vanishes, small enough to keep
/// activations to a few MB.
const CHUNK: i64 = 8192;

/// One step of autograd through the model's layers, then tch's Adam.
pub(crate) struct AutogradStep<'a> {
    model: &'a Classifier,
    opt: nn::Optimizer,
    totals: TensorTotals,
}

impl<'a> AutogradStep<'a> {
    pub(crate) fn new(model: &'a Classifier, lr: f64) -> Self {
        Self { model, opt: adam(model, lr), totals: TensorTotals::default() }
    }
}

/// Adam over every parameter of `model`: tch's defaults are `torch.optim.Adam`'s (betas
/// (0.9, 0.999), eps 1e-8, no decay), the learning rate `lr`.
pub(crate) fn adam(model: &Classifier, lr: f64) -> nn::Optimizer {
    nn::Adam::default().build(model.var_store(), lr).expect("Adam over a model's variables")
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
