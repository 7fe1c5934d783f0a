//! Helpers for the tests: small synthetic datasets to train methods on, and the engines'
//! gradient checks.

use data::split::{ForgetSpec, forget_split};
use data::{ImageDataset, Samples};
use model::{Classifier, ClassifierSpec};
use rand::Rng as _;
use tch::{Device, Tensor};

use crate::EpochStats;
use crate::catalog::supervised::Original;
use crate::engine::Engine;
use crate::method::{AnyMethod, Context, Count, Rate};
use crate::tensors::{Data, Images};

/// The autograd gradients of `loss(model)`, flattened layer by layer (weight `[out][in]`, then
/// bias), zeroed afterwards.
pub(crate) fn autograd_grads(model: &Classifier, loss: impl Fn(&Classifier) -> Tensor) -> Vec<f32> {
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

/// MNIST's first `train` training and `test` test images, or `None`, with a note on stderr,
/// when `scripts/setup` has not fetched them (files that are there but wrong still fail).
pub(crate) fn real_mnist(train: usize, test: usize) -> Option<data::ImageDataset> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/MNIST/raw");
    if !dir.join("train-images-idx3-ubyte").exists() {
        eprintln!("skipped: MNIST is not in {}; run scripts/setup to fetch it", dir.display());
        return None;
    }
    let options = data::dataset::LoadOptions {
        train_limit: Some(train),
        test_limit: Some(test),
        ..Default::default()
    };
    Some(data::dataset::load(&dir, &options).expect("MNIST as scripts/setup fetched it"))
}

/// Three well-separated Gaussian blobs in 4 dimensions, labels 0, 1, 2 in turn.
pub(crate) fn blobs(n: usize, seed: u64) -> Samples {
    let mut rng = data::rng::stream(seed, "blobs");
    let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
    let features = labels
        .iter()
        .flat_map(|&l| {
            let noise: Vec<f32> = (0..4).map(|_| rng.random_range(-0.5..0.5)).collect();
            (0..4).map(move |d| if d == l as usize { 2.0 } else { 0.0 } + noise[d])
        })
        .collect();
    Samples { features, labels, dim: 4 }
}

/// `n_train` blob samples (and 90 test samples), a `fraction` of class 1 forgotten, and a
/// small MLP for them: what a method's own tests train on.
pub(crate) fn fixture(n_train: usize, fraction: f64) -> (Data, ClassifierSpec) {
    let mnist =
        ImageDataset { train: blobs(n_train, 0), test: blobs(90, 1), fingerprint: String::new() };
    let split = forget_split(
        &mnist.train.labels,
        &ForgetSpec::class(1, fraction),
        &mut data::rng::stream(0, "split"),
    )
    .unwrap();
    let spec = ClassifierSpec { input: 4, hidden: vec![16, 8], classes: 3, ..Default::default() };
    (Data::new(&Images::new(std::sync::Arc::new(mnist)), &split, Device::Cpu), spec)
}

/// Trains `method` on `data` (seed 7, the default engine), from `original` if given; the
/// model and every epoch's statistics.
pub(crate) fn train(
    method: &AnyMethod,
    data: &Data,
    spec: &ClassifierSpec,
    original: Option<&Classifier>,
) -> (Classifier, Vec<EpochStats>) {
    let engine = Engine::default();
    let ctx = Context { original, ..Context::new(data, spec, 7, Device::Cpu, engine) };
    let mut history = Vec::new();
    let model = method.train(&ctx, &mut |_, _, s| history.push(*s)).unwrap();
    (model, history)
}

/// The original model's method, `epochs` epochs at a rate for the small fixtures.
pub(crate) fn original(epochs: usize) -> AnyMethod {
    AnyMethod::new(Original {
        epochs: Count::new(epochs),
        batch_size: Count::new(16),
        lr: Rate::new(1e-2),
        ..Default::default()
    })
}
