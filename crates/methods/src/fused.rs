//! The fused engine: the same maths as the autograd engine with far fewer libtorch calls.
//!
//! The MLP's parameters live in one flat buffer (per-layer weight and bias tensors are views
//! into it), its forward and backward passes are written out by hand (`addmm`, `relu`, `mm` into
//! views of one flat gradient buffer, `threshold_backward`), and Adam updates the flat buffers
//! in a handful of calls. Only the loss head (cross-entropy and the MI estimate on the logits,
//! a few hundred numbers) goes through autograd, so its gradient is exactly the one the
//! autograd engine computes.
//!
//! What differs from the autograd engine is the order of some sums, so results agree to float
//! rounding, not bit for bit:
//! - MI-unlearn runs the trunk once over `[remain; forget; remain]` and takes the CE logits from
//!   the first rows, where the autograd engine runs the remain batch twice;
//! - Adam follows PyTorch's Python `torch.optim.Adam` (`exp_avg.lerp_`), which the notebook
//!   used, where tch's C++ Adam uses `mul_` then `add_`.

use model::Mlp;
use tch::{Kind, Tensor};

use crate::mi::{mi_batch, mutual_information};
use crate::train::{Rows, Step, TensorTotals, Totals};

/// The MLP's trunk with flat parameters, gradients and Adam state, training a flat copy of
/// `model` that [`Step::sync`] writes back.
pub(crate) struct Fused<'a> {
    model: &'a Mlp,
    params: Tensor,
    grads: Tensor,
    weights: Vec<Tensor>,
    biases: Vec<Tensor>,
    weight_grads: Vec<Tensor>,
    bias_grads: Vec<Tensor>,
    adam: FlatAdam,
    totals: TensorTotals,
}

/// Adam over one flat buffer, PyTorch's single-tensor formula.
struct FlatAdam {
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: i32,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl FlatAdam {
    fn new(n: i64, lr: f64, like: &Tensor) -> Self {
        let zeros = || Tensor::zeros([n], (Kind::Float, like.device()));
        Self {
            exp_avg: zeros(),
            exp_avg_sq: zeros(),
            step: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    fn step(&mut self, params: &mut Tensor, grads: &Tensor) {
        self.step += 1;
        let bias_correction1 = 1.0 - self.beta1.powi(self.step);
        let bias_correction2 = 1.0 - self.beta2.powi(self.step);
        let step_size = self.lr / bias_correction1;
        let _ = self.exp_avg.lerp_(grads, 1.0 - self.beta1);
        // addcmul_(g, g, value = 1 - beta2) computes value * g * g left to right: the same as
        // passing (value * g) with value 1.
        let _ = self.exp_avg_sq.g_mul_scalar_(self.beta2);
        let _ = self.exp_avg_sq.addcmul_(&(grads * (1.0 - self.beta2)), grads);
        let denom = (self.exp_avg_sq.sqrt() / bias_correction2.sqrt()) + self.eps;
        let _ = params.addcdiv_(&(&self.exp_avg * -step_size), &denom);
    }
}

impl<'a> Fused<'a> {
    /// Copies `model`'s parameters into flat buffers, with a fresh Adam of rate `lr`.
    pub(crate) fn new(model: &'a Mlp, lr: f64) -> Self {
        let layers = model.layer_parameters();
        let flat: Vec<Tensor> =
            layers.iter().flat_map(|(w, b)| [w.detach().flatten(0, -1), b.detach()]).collect();
        let params = Tensor::cat(&flat, 0);
        let grads = params.zeros_like();
        let (mut weights, mut biases, mut weight_grads, mut bias_grads) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut offset = 0;
        for (w, _) in &layers {
            let (rows, cols) = (w.size()[0], w.size()[1]);
            let view = |t: &Tensor, start: i64, len: i64| t.narrow(0, start, len);
            weights.push(view(&params, offset, rows * cols).view([rows, cols]));
            weight_grads.push(view(&grads, offset, rows * cols).view([rows, cols]));
            offset += rows * cols;
            biases.push(view(&params, offset, rows));
            bias_grads.push(view(&grads, offset, rows));
            offset += rows;
        }
        let adam = FlatAdam::new(offset, lr, &params);
        Self {
            model,
            params,
            grads,
            weights,
            biases,
            weight_grads,
            bias_grads,
            adam,
            totals: TensorTotals::default(),
        }
    }

    /// Logits, and the input of every layer (for the backward pass).
    fn forward(&self, x: &Tensor) -> (Tensor, Vec<Tensor>) {
        let last = self.weights.len() - 1;
        let mut inputs = Vec::with_capacity(last + 1);
        let mut h = x.shallow_clone();
        for (i, (w, b)) in self.weights.iter().zip(&self.biases).enumerate() {
            let z = b.addmm(&h, &w.tr());
            inputs.push(h);
            h = if i < last { z.relu() } else { z };
        }
        (h, inputs)
    }

    /// Writes the gradient of the loss with respect to every parameter into the flat gradient
    /// buffer, given its gradient with respect to the logits.
    fn backward(&self, inputs: &[Tensor], dlogits: &Tensor) {
        let mut g = dlogits.shallow_clone();
        for i in (0..self.weights.len()).rev() {
            let a = &inputs[i];
            let _ = g.tr().mm_out(&self.weight_grads[i], a);
            let _ = g.sum_intlist_out(&self.bias_grads[i], [0i64].as_slice(), false, Kind::Float);
            if i > 0 {
                // a = relu(z) of the layer below: the ReLU passes gradient where a > 0.
                g = a.threshold_backward(&g.mm(&self.weights[i]), 0.0);
            }
        }
    }

    /// The loss's value and its gradient with respect to `logits`, through autograd.
    fn head(logits: &Tensor, loss: impl FnOnce(&Tensor) -> Tensor) -> (Tensor, Tensor) {
        let leaf = logits.detach().set_requires_grad(true);
        let value = loss(&leaf);
        value.backward();
        (value.detach(), leaf.grad())
    }
}

impl Fused<'_> {
    /// One step of cross-entropy training; returns the batch's loss.
    ///
    /// The gradient of the mean cross-entropy with respect to the logits is written out,
    /// `(softmax(logits) - one_hot(y)) / n`, which saves a trip through autograd on the
    /// step that runs most often.
    fn supervised_step(&mut self, x: &Tensor, y: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let (logits, inputs) = self.forward(x);
            let log_probs = logits.log_softmax(1, Kind::Float);
            let loss = log_probs.nll_loss(y);
            let (n, classes) = (logits.size()[0], logits.size()[1]);
            let dlogits = (log_probs.exp() - y.one_hot(classes).to_kind(Kind::Float)) / n as f64;
            self.backward(&inputs, &dlogits);
            self.adam.step(&mut self.params, &self.grads);
            loss
        })
    }

    /// One MI-unlearn step on remain batch `(xr, yr)` and forget batch `xf`; returns
    /// `(ce, mi, loss)`.
    fn mi_step(&mut self, xr: &Tensor, yr: &Tensor, xf: &Tensor, gamma: f64) -> [Tensor; 3] {
        let nr = xr.size()[0];
        let (x, z) = mi_batch(xr, xf);
        let (logits, inputs) = tch::no_grad(|| self.forward(&x));
        let mut parts = None;
        let (loss, dlogits) = Self::head(&logits, |l| {
            let ce = l.narrow(0, 0, nr).cross_entropy_for_logits(yr);
            let mi = mutual_information(l, &z);
            let loss = &ce + &mi * gamma;
            parts = Some((ce.detach(), mi.detach()));
            loss
        });
        tch::no_grad(|| {
            self.backward(&inputs, &dlogits);
            self.adam.step(&mut self.params, &self.grads);
        });
        let (ce, mi) = parts.expect("the head ran");
        [ce, mi, loss]
    }
}

impl Step for Fused<'_> {
    fn supervised(&mut self, rows: Rows<'_>) {
        let (x, y) = rows.gather();
        let loss = self.supervised_step(&x, &y);
        self.totals.add(loss.shallow_clone(), loss, None);
    }

    fn mi(&mut self, remain: Rows<'_>, forget: Rows<'_>, gamma: f64) {
        let ((xr, yr), (xf, _)) = (remain.gather(), forget.gather());
        let [ce, mi, loss] = self.mi_step(&xr, &yr, &xf, gamma);
        self.totals.add(loss, ce, Some(mi));
    }

    fn take_totals(&mut self) -> Totals {
        self.totals.take()
    }

    /// Writes the flat parameters back into the model.
    fn sync(&self) {
        tch::no_grad(|| {
            for ((w, b), (fw, fb)) in
                self.model.layer_parameters().into_iter().zip(self.weights.iter().zip(&self.biases))
            {
                w.shallow_clone().copy_(fw);
                b.shallow_clone().copy_(fb);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{autograd_grads, max_diff};
    use model::MlpSpec;
    use tch::Device;

    fn setup() -> (Mlp, Tensor, Tensor, Tensor) {
        let spec = MlpSpec { input: 12, hidden: vec![16, 8], classes: 4, ..Default::default() };
        let model = Mlp::init(&spec, &mut data::rng::stream(3, "init"), Device::Cpu);
        tch::manual_seed(0);
        let x = Tensor::randn([10, 12], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
        let xf = Tensor::randn([4, 12], (Kind::Float, Device::Cpu)) + 1.0;
        (model, x, y, xf)
    }

    #[test]
    fn cross_entropy_gradients_match_autograd() {
        let (model, x, y, _) = setup();
        let expected = autograd_grads(&model, |m| m.forward(&x).cross_entropy_for_logits(&y));
        let fused = Fused::new(&model, 1e-3);
        let (logits, inputs) = tch::no_grad(|| fused.forward(&x));
        assert_eq!(Vec::<f32>::try_from(&logits.flatten(0, -1)).unwrap(), {
            let l = tch::no_grad(|| model.forward(&x));
            Vec::<f32>::try_from(&l.flatten(0, -1)).unwrap()
        });
        let mut fused = fused;
        let _ = fused.supervised_step(&x, &y); // writes the gradients (and takes an Adam step)
        let _ = (logits, inputs);
        let got = Vec::<f32>::try_from(&fused.grads).unwrap();
        assert!(expected.iter().any(|g| g.abs() > 1e-3));
        assert!(max_diff(&got, &expected) < 1e-6, "{}", max_diff(&got, &expected));
    }

    #[test]
    fn mi_unlearn_gradients_match_autograd() {
        let (model, xr, yr, xf) = setup();
        let gamma = 4.0;
        let z = Tensor::cat(
            &[
                Tensor::zeros([14], (Kind::Float, Device::Cpu)),
                Tensor::ones([10], (Kind::Float, Device::Cpu)),
            ],
            0,
        );
        let expected = autograd_grads(&model, |m| {
            let ce = m.forward(&xr).cross_entropy_for_logits(&yr);
            let mi = mutual_information(&m.forward(&Tensor::cat(&[&xr, &xf, &xr], 0)), &z);
            ce + mi * gamma
        });
        let fused = Fused::new(&model, 1e-3);
        let x = Tensor::cat(&[&xr, &xf, &xr], 0);
        let (logits, inputs) = tch::no_grad(|| fused.forward(&x));
        let (_, dlogits) = Fused::head(&logits, |l| {
            l.narrow(0, 0, 10).cross_entropy_for_logits(&yr) + mutual_information(l, &z) * gamma
        });
        tch::no_grad(|| fused.backward(&inputs, &dlogits));
        let got = Vec::<f32>::try_from(&fused.grads).unwrap();
        assert!(max_diff(&got, &expected) < 1e-6, "{}", max_diff(&got, &expected));
    }

    #[test]
    fn adam_matches_tch_adam_to_rounding_and_sync_writes_back() {
        let (model, x, y, _) = setup();
        let reference = model.duplicate();
        let mut opt =
            tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), reference.var_store(), 1e-2)
                .unwrap();
        let mut fused = Fused::new(&model, 1e-2);
        for _ in 0..5 {
            opt.backward_step(&reference.forward(&x).cross_entropy_for_logits(&y));
            let _ = fused.supervised_step(&x, &y);
        }
        fused.sync();
        let (a, b) = (model.flat_parameters(), reference.flat_parameters());
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
        assert!(
            max_diff(
                &a,
                &Mlp::init(model.spec(), &mut data::rng::stream(3, "init"), Device::Cpu)
                    .flat_parameters()
            ) > 1e-3
        );
    }
}
