//! Helpers for the engines' tests.

use model::Mlp;
use tch::Tensor;

/// The autograd gradients of `loss(model)`, flattened layer by layer (weight `[out][in]`, then
/// bias), zeroed afterwards.
pub(crate) fn autograd_grads(model: &Mlp, loss: impl Fn(&Mlp) -> Tensor) -> Vec<f32> {
    let mut grads = Vec::new();
    loss(model).backward();
    for (w, b) in model.layer_parameters() {
        for t in [w, b] {
            grads.extend(Vec::<f32>::try_from(&t.grad().flatten(0, -1)).unwrap());
            let _ = t.grad().zero_();
        }
    }
    grads
}

/// The largest element-wise difference.
pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
