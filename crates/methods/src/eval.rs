//! Accuracy on the remain, forget and test sets, without gradients and in large batches: one
//! forward pass over the training set serves both the remain and the forget accuracy. A model
//! is evaluated by the engine that trained it: the native engine in plain Rust
//! (`native::evaluate`), the libtorch engines through libtorch.

use model::Mlp;
use tch::{Kind, Tensor};

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

/// Evaluates `model` on the three sets with `engine`'s arithmetic.
pub fn evaluate(model: &Mlp, data: &Data, engine: Engine) -> Metrics {
    match engine {
        Engine::Native => crate::native::evaluate(model, data),
        Engine::Autograd | Engine::Fused => evaluate_libtorch(model, data),
    }
}

fn evaluate_libtorch(model: &Mlp, data: &Data) -> Metrics {
    let t = data.tensors();
    tch::no_grad(|| {
        let train_ok = correct(model, &t.train_x, &t.train_y);
        let test_ok = correct(model, &t.test_x, &t.test_y);
        let percent = |ok: &Tensor| {
            let n = ok.size()[0];
            100.0 * ok.sum(Kind::Int64).int64_value(&[]) as f64 / n as f64
        };
        Metrics {
            remain: percent(&train_ok.index_select(0, &t.remain_index)),
            forget: percent(&train_ok.index_select(0, &t.forget_index)),
            test: percent(&test_ok),
        }
    })
}

/// Whether each row's arg-max prediction equals its label.
fn correct(model: &Mlp, x: &Tensor, y: &Tensor) -> Tensor {
    let n = x.size()[0];
    let chunks: Vec<Tensor> = (0..n)
        .step_by(CHUNK as usize)
        .map(|start| {
            let len = CHUNK.min(n - start);
            model.forward(&x.narrow(0, start, len)).argmax(1, false)
        })
        .collect();
    Tensor::cat(&chunks, 0).eq_tensor(y)
}
