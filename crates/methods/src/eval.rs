//! Accuracy on the remain, forget and test sets, and per-sample losses for the
//! membership-inference attack, without gradients and in large batches: one forward pass over
//! the training set serves both the remain and the forget set. A model
//! is evaluated by the engine that trained it: the native engine in plain Rust
//! (`native::evaluate`), the libtorch engines through libtorch.

use model::Mlp;
use tch::{Kind, Tensor};

use crate::mia::Mia;
use crate::{Data, Engine};

/// Rows per forward pass: large enough that per-call overhead vanishes, small enough to keep
/// activations to a few MB.
const CHUNK: i64 = 8192;

/// Accuracies in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub remain: f64,
    pub forget: f64,
    pub test: f64,
}

/// Per image of the training and test sets: classified correctly, and its cross-entropy.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    pub train_correct: Vec<bool>,
    pub test_correct: Vec<bool>,
    pub train_loss: Vec<f32>,
    pub test_loss: Vec<f32>,
}

impl Outputs {
    /// Accuracy on the remain, forget and test sets.
    pub fn metrics(&self, data: &Data) -> Metrics {
        let percent = |ok: &mut dyn Iterator<Item = bool>, n: usize| {
            100.0 * ok.filter(|&ok| ok).count() as f64 / n as f64
        };
        let train = |ids: &[i64]| {
            percent(&mut ids.iter().map(|&i| self.train_correct[i as usize]), ids.len())
        };
        Metrics {
            remain: train(data.remain()),
            forget: train(data.forget()),
            test: percent(&mut self.test_correct.iter().copied(), self.test_correct.len()),
        }
    }

    /// The membership-inference attack of [`crate::mia`] with its stream from `seed`.
    pub fn mia(&self, data: &Data, seed: u64) -> Mia {
        crate::mia::attack(&self.train_loss, &self.test_loss, data.remain(), data.forget(), seed)
    }
}

/// Evaluates `model` on the three sets with `engine`'s arithmetic.
pub fn evaluate(model: &Mlp, data: &Data, engine: Engine) -> Metrics {
    outputs(model, data, engine).metrics(data)
}

/// Every image's prediction and loss under `model`, with `engine`'s arithmetic.
pub fn outputs(model: &Mlp, data: &Data, engine: Engine) -> Outputs {
    match engine {
        Engine::Native => crate::native::outputs(model, data),
        Engine::Autograd | Engine::Fused => outputs_libtorch(model, data),
    }
}

fn outputs_libtorch(model: &Mlp, data: &Data) -> Outputs {
    let t = data.tensors();
    tch::no_grad(|| {
        let (train_correct, train_loss) = per_sample(model, &t.train_x, &t.train_y);
        let (test_correct, test_loss) = per_sample(model, &t.test_x, &t.test_y);
        Outputs { train_correct, test_correct, train_loss, test_loss }
    })
}

/// Whether each row's arg-max prediction equals its label, and its cross-entropy.
fn per_sample(model: &Mlp, x: &Tensor, y: &Tensor) -> (Vec<bool>, Vec<f32>) {
    let n = x.size()[0];
    let (mut correct, mut loss) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(CHUNK as usize) {
        let len = CHUNK.min(n - start);
        let logits = model.forward(&x.narrow(0, start, len));
        let y = y.narrow(0, start, len);
        let ok = logits.argmax(1, false).eq_tensor(&y);
        let nll = logits.log_softmax(1, Kind::Float).gather(1, &y.unsqueeze(1), false).neg();
        correct.extend(Vec::<bool>::try_from(&ok).expect("a bool tensor"));
        loss.extend(Vec::<f32>::try_from(&nll.flatten(0, -1)).expect("a float tensor"));
    }
    (correct, loss)
}
