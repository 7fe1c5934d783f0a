//! The engines that compute a training step, under one roof: [`step`] is the interface (what
//! the loops hand an engine and what it reports), [`autograd`] the libtorch reference and
//! [`native`] the default, plain Rust on the CPU. The loops (`crate::loops`) choose one through
//! [`Engine`] and never see which.

pub(crate) mod autograd;
pub(crate) mod native;
pub mod step;

use model::Classifier;

use crate::eval::{Metrics, Outputs};
use crate::tensors::Data;
use step::{Optimizer, Step};

/// How each optimisation step is computed. All engines compute the same maths (the same
/// batches, loss, MI estimator and Adam); they differ in the order of some float sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// libtorch autograd through `tch::nn` layers and tch's Adam: the reference.
    Autograd,
    /// Plain Rust on the CPU, computing the first layer from each image's non-background
    /// pixels (see `engine/native.rs`): no libtorch call per step. The default.
    #[default]
    Native,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Autograd, Engine::Native];

    /// The name used in configs and cache keys.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Autograd => "autograd",
            Engine::Native => "native",
        }
    }
}

/// What decides the autograd engine's bits on a CPU: libtorch's kernels (MKL) take other code
/// paths, with other float sums, on another vendor's CPUs and with or without AVX-512 or
/// AVX2; `x86_64 AuthenticAMD avx512`, `x86_64 GenuineIntel avx2`, `aarch64 unknown`. The
/// native engine's bits are the same on every CPU (fixed summation orders, no fused
/// multiply-adds, no library kernels), so only autograd's keys carry it.
pub fn cpu_class() -> String {
    let vendor = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("vendor_id")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into());
    #[cfg(target_arch = "x86_64")]
    let isa = if std::arch::is_x86_feature_detected!("avx512f") {
        " avx512"
    } else if std::arch::is_x86_feature_detected!("avx2") {
        " avx2"
    } else {
        ""
    };
    #[cfg(not(target_arch = "x86_64"))]
    let isa = "";
    format!("{} {vendor}{isa}", std::env::consts::ARCH)
}

/// A fresh `optimizer` over `model` for `engine`.
pub(crate) fn stepper<'a>(
    engine: Engine,
    model: &'a Classifier,
    data: &'a Data,
    optimizer: Optimizer<'_>,
) -> Box<dyn Step + 'a> {
    match engine {
        Engine::Autograd => Box::new(autograd::AutogradStep::new(model, data, optimizer)),
        Engine::Native => Box::new(native::Native::new(model, data, optimizer)),
    }
}

/// Evaluates `model` on the three sets with `engine`'s arithmetic.
pub fn evaluate(model: &Classifier, data: &Data, engine: Engine) -> Metrics {
    outputs(model, data, engine, false).metrics(data)
}

/// Every image's prediction and loss under `model`, with `engine`'s arithmetic, and with
/// `confidences` every training image's logit-scaled confidence (else none: the per-epoch
/// evaluations need only the accuracies).
pub fn outputs(model: &Classifier, data: &Data, engine: Engine, confidences: bool) -> Outputs {
    match engine {
        Engine::Native => native::outputs(model, data, confidences),
        Engine::Autograd => autograd::outputs(model, data, confidences),
    }
}
