//! The training and unlearning methods, exactly as the notebook runs them, over the dataset
//! held once per process ([`Images`]) and each job's split of it ([`Data`]).
//!
//! - [`Method`]: `original`, `retrain`, `finetune` and `mi_unlearn`, with their parameters and
//!   [`run`] to train one;
//! - [`mi::mutual_information`]: the plug-in estimate of `I(Y_hat; Z)` that MI-unlearn
//!   penalises;
//! - [`eval::evaluate`]: accuracy (%) on the remain, forget and test sets; [`eval::outputs`]
//!   with [`mia::attack`]: membership-inference efficacy on the forget set;
//! - [`Engine`]: how each step is computed: `native` (the default: plain Rust on the CPU,
//!   from each image's non-background pixels), `autograd` (the libtorch reference) or `fused`
//!   (libtorch with a hand-written backward pass); they agree to float rounding.
//!
//! Every random draw comes from a stream of [`data::rng`] named after the method and the seed,
//! so a run is the same whichever thread runs it and whatever else runs beside it.

pub mod baselines;
pub mod eval;
mod fused;
pub mod mi;
pub mod mia;
mod native;
mod tensors;
#[cfg(test)]
mod testutil;
mod train;

use model::{Mlp, MlpSpec};
use tch::Device;

pub use baselines::grad_ascent::GradAscent;
pub use baselines::l1_sparse::L1Sparse;
pub use baselines::neggrad_plus::NegGradPlus;
pub use baselines::random_label::RandomLabel;
pub use baselines::salun::Salun;
pub use baselines::scrub::Scrub;
pub use eval::Metrics;
pub use native::SparseRows;
pub use tensors::{Data, Images};
pub use train::{Engine, EpochStats};

/// A method and all the parameters that determine its result.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Trains from a fresh initialisation on all training data: the model to unlearn from.
    Original(Supervised),
    /// Trains from a fresh initialisation on the remain set: the gold standard.
    Retrain(Supervised),
    /// Continues training a copy of the original on the remain set, with a fresh optimiser.
    Finetune(Supervised),
    /// Fine-tunes a copy of the original with loss `CE(remain) + gamma * I(Y_hat; Z)`.
    MiUnlearn(MiUnlearn),
    /// The field's baselines ([`baselines`]), each from a copy of the original.
    GradAscent(GradAscent),
    NegGradPlus(NegGradPlus),
    RandomLabel(RandomLabel),
    Scrub(Scrub),
    L1Sparse(L1Sparse),
    Salun(Salun),
}

/// Adam on mini-batches reshuffled every epoch (the notebook's `train_model`).
#[derive(Debug, Clone, PartialEq)]
pub struct Supervised {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
}

impl Default for Supervised {
    /// The notebook's settings: 100 epochs, batch 64, Adam with lr 1e-3.
    fn default() -> Self {
        Self { epochs: 100, batch_size: 64, lr: 1e-3 }
    }
}

/// The notebook's `train_unlearn_model`.
#[derive(Debug, Clone, PartialEq)]
pub struct MiUnlearn {
    pub gamma: f64,
    pub epochs: usize,
    pub remain_batch_size: usize,
    pub forget_batch_size: usize,
    pub lr: f64,
}

impl Default for MiUnlearn {
    /// The notebook's settings: gamma 4, 5 epochs, remain batch 64 with forget batch 16, lr 1e-3.
    fn default() -> Self {
        Self { gamma: 4.0, epochs: 5, remain_batch_size: 64, forget_batch_size: 16, lr: 1e-3 }
    }
}

impl Method {
    /// The name used in configs and CSV files.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Original(_) => "original",
            Method::Retrain(_) => "retrain",
            Method::Finetune(_) => "finetune",
            Method::MiUnlearn(_) => "mi_unlearn",
            Method::GradAscent(_) => "grad_ascent",
            Method::NegGradPlus(_) => "neggrad_plus",
            Method::RandomLabel(_) => "random_label",
            Method::Scrub(_) => "scrub",
            Method::L1Sparse(_) => "l1_sparse",
            Method::Salun(_) => "salun",
        }
    }

    /// Every method name, in the order results list them.
    pub const NAMES: [&'static str; 10] = [
        "original",
        "retrain",
        "finetune",
        "mi_unlearn",
        "grad_ascent",
        "neggrad_plus",
        "random_label",
        "scrub",
        "l1_sparse",
        "salun",
    ];

    /// The engine that trains (and evaluates) this method on a `spec` model when `engine` is
    /// asked for: the fused and native engines compute the notebook's methods on the plain
    /// MLP; everything else runs on libtorch's autograd.
    pub fn engine(&self, spec: &MlpSpec, engine: Engine) -> Engine {
        let notebook = matches!(
            self,
            Method::Original(_) | Method::Retrain(_) | Method::Finetune(_) | Method::MiUnlearn(_)
        );
        if notebook && spec.is_mlp() { engine } else { Engine::Autograd }
    }

    /// Whether the method starts from the original model of the same seed.
    pub fn needs_original(&self) -> bool {
        !matches!(self, Method::Original(_) | Method::Retrain(_))
    }

    /// Whether the trained model depends on the forget / remain split.
    pub fn uses_split(&self) -> bool {
        !matches!(self, Method::Original(_))
    }

    pub fn epochs(&self) -> usize {
        match self {
            Method::Original(s) | Method::Retrain(s) | Method::Finetune(s) => s.epochs,
            Method::MiUnlearn(m) => m.epochs,
            Method::GradAscent(m) => m.epochs,
            Method::NegGradPlus(m) => m.epochs,
            Method::RandomLabel(m) => m.epochs,
            Method::Scrub(m) => m.epochs,
            Method::L1Sparse(m) => m.epochs,
            Method::Salun(m) => m.epochs,
        }
    }

    pub fn gamma(&self) -> Option<f64> {
        match self {
            Method::MiUnlearn(m) => Some(m.gamma),
            _ => None,
        }
    }

    /// A short label of the parameters for tables and logs: `gamma=4 epochs=5` for
    /// MI-unlearn, `epochs=100` for the supervised methods, and for the baselines their
    /// epochs and every parameter that differs from its default (`epochs=2 lr=0.0003`).
    pub fn label(&self) -> String {
        let gamma = self.gamma().map(|g| format!("gamma={g} ")).unwrap_or_default();
        let mut label = format!("{gamma}epochs={}", self.epochs());
        let default = match self {
            Method::GradAscent(_) => Method::GradAscent(GradAscent::default()),
            Method::NegGradPlus(_) => Method::NegGradPlus(NegGradPlus::default()),
            Method::RandomLabel(_) => Method::RandomLabel(RandomLabel::default()),
            Method::Scrub(_) => Method::Scrub(Scrub::default()),
            Method::L1Sparse(_) => Method::L1Sparse(L1Sparse::default()),
            Method::Salun(_) => Method::Salun(Salun::default()),
            _ => return label,
        };
        for ((name, value), (_, base)) in self.params().into_iter().zip(default.params()) {
            if name != "epochs" && value != base {
                // Shortest round-trip form, as in the key, without a trailing ".0".
                let value = value.strip_suffix(".0").unwrap_or(&value).to_owned();
                label += &format!(" {name}={value}");
            }
        }
        label
    }

    /// Every parameter as `(name, value)`, in a fixed order, floats in Rust's shortest
    /// round-trip form: the canonical encoding for cache keys.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let float = |v: f64| format!("{v:?}");
        let one = |n: usize| [("batch_size", n)];
        let paired = |r: usize, f: usize| [("remain_batch_size", r), ("forget_batch_size", f)];
        let with = |first: Vec<(&'static str, String)>, rest: Vec<(&'static str, String)>| {
            first.into_iter().chain(rest).collect::<Vec<_>>()
        };
        match self {
            Method::Original(s) | Method::Retrain(s) | Method::Finetune(s) => {
                schedule(s.epochs, &one(s.batch_size), s.lr)
            }
            Method::MiUnlearn(m) => {
                let mut p = with(
                    vec![("gamma", float(m.gamma))],
                    schedule(m.epochs, &paired(m.remain_batch_size, m.forget_batch_size), m.lr),
                );
                p.push(("mi_estimator", "plugin-softmax-clamp1e-10".into()));
                p
            }
            Method::GradAscent(m) => schedule(m.epochs, &one(m.batch_size), m.lr),
            Method::NegGradPlus(m) => with(
                vec![("alpha", float(m.alpha))],
                schedule(m.epochs, &paired(m.remain_batch_size, m.forget_batch_size), m.lr),
            ),
            Method::RandomLabel(m) => schedule(m.epochs, &one(m.batch_size), m.lr),
            Method::Scrub(m) => {
                let mut rest =
                    schedule(m.epochs, &paired(m.remain_batch_size, m.forget_batch_size), m.lr);
                rest.insert(1, ("max_epochs", m.max_epochs.to_string()));
                with(vec![("alpha", float(m.alpha)), ("temperature", float(m.temperature))], rest)
            }
            Method::L1Sparse(m) => with(
                vec![("lambda", float(m.lambda)), ("schedule", "linear-decay".into())],
                schedule(m.epochs, &one(m.batch_size), m.lr),
            ),
            Method::Salun(m) => with(
                vec![("sparsity", float(m.sparsity))],
                schedule(m.epochs, &one(m.batch_size), m.lr),
            ),
        }
    }
}

/// `epochs`, the batch sizes, `lr` and the optimiser: the part of [`Method::params`] every
/// method has, in that order.
fn schedule(
    epochs: usize,
    batches: &[(&'static str, usize)],
    lr: f64,
) -> Vec<(&'static str, String)> {
    let mut p = vec![("epochs", epochs.to_string())];
    p.extend(batches.iter().map(|&(name, n)| (name, n.to_string())));
    p.push(("lr", format!("{lr:?}")));
    p.push(("optimizer", "adam".into()));
    p
}

/// What a run needs besides its method.
#[derive(Debug)]
pub struct Context<'a> {
    pub data: &'a Data,
    pub spec: &'a MlpSpec,
    pub seed: u64,
    pub device: Device,
    pub engine: Engine,
}

/// Trains `method`, starting from `original` where the method needs it, calling `on_epoch`
/// after each epoch with the epoch number (from 1), the model and that epoch's statistics.
///
/// # Panics
/// If the method needs the original model and `original` is `None` (a planning bug).
pub fn run(
    method: &Method,
    ctx: &Context<'_>,
    original: Option<&Mlp>,
    on_epoch: &mut dyn FnMut(usize, &Mlp, &EpochStats),
) -> Mlp {
    let start = || {
        original.unwrap_or_else(|| panic!("{} needs the original model", method.name())).duplicate()
    };
    let stream = |purpose: &str| data::rng::stream(ctx.seed, purpose);
    let data = ctx.data;
    match method {
        Method::Original(s) => {
            let model = Mlp::init(ctx.spec, &mut stream("init/original"), ctx.device);
            train::supervised(
                &model,
                data,
                &data.all_train(),
                s,
                ctx.engine,
                &mut stream("shuffle/original"),
                on_epoch,
            );
            model
        }
        Method::Retrain(s) => {
            let model = Mlp::init(ctx.spec, &mut stream("init/retrain"), ctx.device);
            train::supervised(
                &model,
                data,
                data.remain(),
                s,
                ctx.engine,
                &mut stream("shuffle/retrain"),
                on_epoch,
            );
            model
        }
        Method::Finetune(s) => {
            let model = start();
            train::supervised(
                &model,
                data,
                data.remain(),
                s,
                ctx.engine,
                &mut stream("shuffle/finetune"),
                on_epoch,
            );
            model
        }
        Method::MiUnlearn(m) => {
            // One stream for every gamma: runs of a sweep that differ only in gamma see the
            // same batches, and a longer run extends a shorter one.
            let model = start();
            train::mi_unlearn(
                &model,
                data,
                m,
                ctx.engine,
                &mut stream("shuffle/mi_unlearn"),
                on_epoch,
            );
            model
        }
        Method::GradAscent(m) => {
            let model = start();
            baselines::grad_ascent::run(
                &model,
                data,
                m,
                &mut stream("shuffle/grad_ascent"),
                on_epoch,
            );
            model
        }
        Method::NegGradPlus(m) => {
            let model = start();
            let rng = &mut stream("shuffle/neggrad_plus");
            baselines::neggrad_plus::run(&model, data, m, rng, on_epoch);
            model
        }
        Method::RandomLabel(m) => {
            let model = start();
            let (rng, labels) =
                (&mut stream("shuffle/random_label"), &mut stream("labels/random_label"));
            baselines::random_label::run(&model, data, m, rng, labels, on_epoch);
            model
        }
        Method::Scrub(m) => {
            let model = start();
            let teacher = start();
            baselines::scrub::run(
                &model,
                &teacher,
                data,
                m,
                &mut stream("shuffle/scrub"),
                on_epoch,
            );
            model
        }
        Method::L1Sparse(m) => {
            let model = start();
            baselines::l1_sparse::run(&model, data, m, &mut stream("shuffle/l1_sparse"), on_epoch);
            model
        }
        Method::Salun(m) => {
            let model = start();
            let (rng, labels) = (&mut stream("shuffle/salun"), &mut stream("labels/salun"));
            baselines::salun::run(&model, data, m, rng, labels, on_epoch);
            model
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data::split::{ForgetSpec, forget_split};
    use data::{Dataset, Mnist};
    use rand::Rng as _;

    /// Three well-separated Gaussian blobs in 4 dimensions, labels 0, 1, 2 in turn.
    fn blobs(n: usize, seed: u64) -> Dataset {
        let mut rng = data::rng::stream(seed, "blobs");
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let features = labels
            .iter()
            .flat_map(|&l| {
                let noise: Vec<f32> = (0..4).map(|_| rng.random_range(-0.5..0.5)).collect();
                (0..4).map(move |d| if d == l as usize { 2.0 } else { 0.0 } + noise[d])
            })
            .collect();
        Dataset { features, labels, dim: 4 }
    }

    fn fixture(n_train: usize, fraction: f64) -> (Data, MlpSpec) {
        let mnist =
            Mnist { train: blobs(n_train, 0), test: blobs(90, 1), fingerprint: String::new() };
        let split = forget_split(
            &mnist.train.labels,
            &ForgetSpec::class(1, fraction),
            &mut data::rng::stream(0, "split"),
        )
        .unwrap();
        let spec = MlpSpec { input: 4, hidden: vec![16, 8], classes: 3, ..Default::default() };
        (Data::new(&Images::new(std::sync::Arc::new(mnist)), &split, Device::Cpu), spec)
    }

    fn train(
        method: &Method,
        data: &Data,
        spec: &MlpSpec,
        original: Option<&Mlp>,
    ) -> (Mlp, Vec<EpochStats>) {
        let ctx = Context { data, spec, seed: 7, device: Device::Cpu, engine: Engine::default() };
        let mut history = Vec::new();
        let model = run(method, &ctx, original, &mut |_, _, s| history.push(*s));
        (model, history)
    }

    /// MI-unlearn at gamma 4 for 2 epochs, with batches and a rate for the small fixtures.
    fn small_mi_unlearn() -> Method {
        Method::MiUnlearn(MiUnlearn {
            gamma: 4.0,
            epochs: 2,
            remain_batch_size: 32,
            forget_batch_size: 8,
            lr: 1e-2,
        })
    }

    fn supervised(epochs: usize) -> Supervised {
        Supervised { epochs, batch_size: 16, lr: 1e-2 }
    }

    #[test]
    fn original_learns_and_counts_partial_batches() {
        let (data, spec) = fixture(300, 0.5);
        let (model, history) = train(&Method::Original(supervised(5)), &data, &spec, None);
        assert_eq!(history.len(), 5);
        assert!(history.iter().all(|s| s.steps == 19), "300 / 16 -> 18 full batches + 1 partial");
        assert!(history[4].loss < history[0].loss);
        let m = eval::evaluate(&model, &data, Engine::default());
        assert!(m.remain > 95.0 && m.forget > 95.0 && m.test > 95.0, "{m:?}");
    }

    #[test]
    fn runs_are_reproducible_per_seed() {
        let (data, spec) = fixture(120, 0.5);
        let a = train(&Method::Original(supervised(2)), &data, &spec, None).0;
        let b = train(&Method::Original(supervised(2)), &data, &spec, None).0;
        assert_eq!(a.flat_parameters(), b.flat_parameters());
        let r = train(&Method::Retrain(supervised(2)), &data, &spec, None).0;
        assert_ne!(a.flat_parameters(), r.flat_parameters(), "retrain draws its own init");
    }

    #[test]
    fn mi_unlearn_steps_follow_the_shorter_stream() {
        // 100 samples of class 1; 75 of them forgotten: remain 225, forget 75.
        let (data, spec) = fixture(300, 0.75);
        assert_eq!((data.remain().len(), data.forget().len()), (225, 75));
        let (original, _) = train(&Method::Original(supervised(3)), &data, &spec, None);
        let mi = |remain_batch_size, forget_batch_size| MiUnlearn {
            gamma: 4.0,
            epochs: 2,
            remain_batch_size,
            forget_batch_size,
            lr: 1e-3,
        };
        // Forget stream shorter: ceil(75 / 16) = 5 steps (last forget batch 11), remain cut short.
        let (_, h) = train(&Method::MiUnlearn(mi(64 / 4, 16)), &data, &spec, Some(&original));
        assert_eq!(h.iter().map(|s| s.steps).collect::<Vec<_>>(), vec![5, 5]);
        assert!(h.iter().all(|s| s.mi.unwrap() >= 0.0 && s.mi.unwrap() < std::f64::consts::LN_2));
        // Remain stream shorter: ceil(225 / 64) = 4 steps.
        let (_, h) = train(&Method::MiUnlearn(mi(64, 2)), &data, &spec, Some(&original));
        assert_eq!(h[0].steps, 4);
    }

    #[test]
    fn mi_unlearn_with_gamma_zero_is_finetuning_on_remain_batches() {
        let (data, spec) = fixture(300, 0.75);
        let (original, _) = train(&Method::Original(supervised(3)), &data, &spec, None);
        let cfg = MiUnlearn {
            gamma: 0.0,
            epochs: 1,
            remain_batch_size: 16,
            forget_batch_size: 16,
            lr: 1e-3,
        };
        let (model, h) = train(&Method::MiUnlearn(cfg), &data, &spec, Some(&original));
        assert!((h[0].loss - h[0].ce).abs() < 1e-12, "gamma 0: loss is the CE alone");
        assert_ne!(model.flat_parameters(), original.flat_parameters());
        assert!(h[0].mi.unwrap() > 0.0);
    }

    #[test]
    fn strong_mi_penalty_lowers_forget_accuracy() {
        let (data, spec) = fixture(600, 0.75);
        let (original, _) = train(&Method::Original(supervised(10)), &data, &spec, None);
        let before = eval::evaluate(&original, &data, Engine::default());
        let cfg = MiUnlearn {
            gamma: 50.0,
            epochs: 30,
            remain_batch_size: 32,
            forget_batch_size: 8,
            lr: 1e-2,
        };
        let (model, h) = train(&Method::MiUnlearn(cfg), &data, &spec, Some(&original));
        let after = eval::evaluate(&model, &data, Engine::default());
        assert!(h.last().unwrap().mi.unwrap() < h[0].mi.unwrap(), "{h:?}");
        assert!(after.forget < before.forget - 20.0, "{before:?} -> {after:?}");
        // The remaining quarter of class 1 goes with the forgotten three quarters (at most
        // 50 of 450 remain samples); the other classes stay.
        assert!(after.remain > 85.0, "{after:?}");
    }

    #[test]
    fn every_baseline_forgets_keeps_the_rest_and_is_reproducible() {
        let (data, spec) = fixture(600, 0.75);
        let (original, _) = train(&Method::Original(supervised(10)), &data, &spec, None);
        let before = eval::evaluate(&original, &data, Engine::default());
        assert!(before.forget > 95.0, "{before:?}");
        // Settings strong enough to show on 450 samples; each method's direction is the test.
        let cases = [
            Method::GradAscent(GradAscent { epochs: 10, batch_size: 16, lr: 1e-2 }),
            Method::NegGradPlus(NegGradPlus {
                alpha: 0.5,
                epochs: 5,
                remain_batch_size: 32,
                forget_batch_size: 8,
                lr: 1e-2,
            }),
            Method::RandomLabel(RandomLabel { epochs: 10, batch_size: 16, lr: 1e-2 }),
            Method::Scrub(Scrub {
                alpha: 0.001,
                temperature: 4.0,
                epochs: 10,
                max_epochs: 3,
                remain_batch_size: 32,
                forget_batch_size: 8,
                lr: 1e-2,
            }),
            Method::Salun(Salun { sparsity: 0.5, epochs: 10, batch_size: 16, lr: 1e-2 }),
        ];
        for method in &cases {
            let (model, history) = train(method, &data, &spec, Some(&original));
            let after = eval::evaluate(&model, &data, Engine::default());
            assert_eq!(history.len(), method.epochs(), "{method:?}");
            assert!(after.forget < before.forget - 30.0, "{method:?}: {before:?} -> {after:?}");
            if !matches!(method, Method::GradAscent(_)) {
                // Plain ascent has nothing holding the other classes in place.
                assert!(after.test > 55.0, "{method:?}: {after:?}");
            }
            let (again, _) = train(method, &data, &spec, Some(&original));
            assert_eq!(again.flat_parameters(), model.flat_parameters(), "{method:?}");
        }
        // L1-sparse is fine-tuning on the remain set: it keeps the model and shrinks weights.
        let l1 = |lambda| {
            let cfg = L1Sparse { lambda, epochs: 5, batch_size: 16, lr: 1e-2 };
            train(&Method::L1Sparse(cfg), &data, &spec, Some(&original)).0
        };
        let norm = |m: &Mlp| m.flat_parameters().iter().map(|p| p.abs()).sum::<f32>();
        let (plain, sparse) = (l1(0.0), l1(1e-2));
        assert!(norm(&sparse) < 0.8 * norm(&plain), "{} {}", norm(&sparse), norm(&plain));
        assert!(eval::evaluate(&sparse, &data, Engine::default()).remain > 90.0);
    }

    #[test]
    fn salun_changes_only_the_salient_weights() {
        let (data, spec) = fixture(300, 0.75);
        let (original, _) = train(&Method::Original(supervised(5)), &data, &spec, None);
        let cfg = Salun { sparsity: 0.2, epochs: 2, batch_size: 16, lr: 1e-2 };
        let (model, _) = train(&Method::Salun(cfg), &data, &spec, Some(&original));
        let (a, b) = (original.flat_parameters(), model.flat_parameters());
        let changed = a.iter().zip(&b).filter(|(p, q)| p != q).count();
        assert!(
            changed > 0 && changed <= (0.2 * a.len() as f64).ceil() as usize + 2,
            "{changed}/{}",
            a.len()
        );
    }

    #[test]
    fn engines_agree_to_float_rounding() {
        let (data, spec) = fixture(600, 0.75);
        let run_with = |engine, method: &Method, original: Option<&Mlp>| {
            let ctx = Context { data: &data, spec: &spec, seed: 7, device: Device::Cpu, engine };
            let mut history = Vec::new();
            let model = run(method, &ctx, original, &mut |_, _, s| history.push(*s));
            (model, history)
        };
        let diff = |x: &Mlp, y: &Mlp| {
            x.flat_parameters()
                .iter()
                .zip(y.flat_parameters())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max)
        };
        let original = Method::Original(supervised(3));
        let mi = Method::MiUnlearn(MiUnlearn {
            gamma: 4.0,
            epochs: 2,
            remain_batch_size: 32,
            forget_batch_size: 8,
            lr: 1e-3,
        });
        let (a, ha) = run_with(Engine::Autograd, &original, None);
        let (am, hm) = run_with(Engine::Autograd, &mi, Some(&a));
        let ea = eval::evaluate(&am, &data, Engine::Autograd);
        for engine in [Engine::Fused, Engine::Native] {
            let (f, hf) = run_with(engine, &original, None);
            assert!(diff(&a, &f) < 1e-3, "{engine:?}: {}", diff(&a, &f));
            for (x, y) in ha.iter().zip(&hf) {
                assert!((x.loss - y.loss).abs() < 1e-4 * x.loss.max(1e-3), "{x:?} {y:?}");
            }
            // From the same original, so that only this run's arithmetic differs.
            let (fm, hfm) = run_with(engine, &mi, Some(&a));
            assert!(diff(&am, &fm) < 1e-3, "{engine:?}: {}", diff(&am, &fm));
            for (x, y) in hm.iter().zip(&hfm) {
                assert!((x.mi.unwrap() - y.mi.unwrap()).abs() < 1e-5, "{engine:?}: {x:?} {y:?}");
                assert!((x.ce - y.ce).abs() < 1e-4 * x.ce.max(1e-3), "{engine:?}: {x:?} {y:?}");
            }
            let ef = eval::evaluate(&fm, &data, engine);
            assert!(
                (ea.forget - ef.forget).abs() < 2.0 && (ea.remain - ef.remain).abs() < 1.0,
                "{engine:?}: {ea:?} {ef:?}"
            );
            // Each engine's evaluation of the same model agrees with libtorch's.
            assert_eq!(eval::evaluate(&am, &data, engine), ea, "{engine:?}");
        }
    }

    /// On real images (needs `scripts/setup`): the native evaluation of a trained model gives
    /// exactly libtorch's accuracies.
    #[test]
    fn native_evaluation_equals_libtorch_on_real_mnist() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/MNIST/raw");
        let options = data::mnist::LoadOptions {
            train_limit: Some(6000),
            test_limit: Some(2000),
            ..Default::default()
        };
        let mnist = data::mnist::load(&dir, &options).expect("MNIST: run scripts/setup");
        let split = forget_split(
            &mnist.train.labels,
            &ForgetSpec::class(3, 0.75),
            &mut data::rng::stream(0, "split"),
        )
        .unwrap();
        let data = Data::new(&Images::new(std::sync::Arc::new(mnist)), &split, Device::Cpu);
        let spec = MlpSpec::default();
        let (model, _) = train(&Method::Original(supervised(1)), &data, &spec, None);
        let native = eval::evaluate(&model, &data, Engine::Native);
        assert_eq!(native, eval::evaluate(&model, &data, Engine::Autograd));
        assert!(native.test > 75.0 && native.forget > 60.0, "{native:?}");
        // Per-sample losses agree to float rounding of the logits; none rounds to zero.
        let (a, b) = (
            eval::outputs(&model, &data, Engine::Native),
            eval::outputs(&model, &data, Engine::Autograd),
        );
        for (x, y) in
            a.train_loss.iter().chain(&a.test_loss).zip(b.train_loss.iter().chain(&b.test_loss))
        {
            assert!((x - y).abs() <= 1e-4 * x.abs().max(1e-3), "{x} {y}");
            assert!(*x > 0.0);
        }
        assert_eq!(a.mia(&data, 0), b.mia(&data, 0), "the same attack outcome");
    }

    #[test]
    fn the_last_epoch_callback_sees_the_final_model() {
        let (data, spec) = fixture(300, 0.75);
        let (original, _) = train(&Method::Original(supervised(2)), &data, &spec, None);
        for engine in Engine::ALL {
            let ctx = Context { data: &data, spec: &spec, seed: 7, device: Device::Cpu, engine };
            let mi = small_mi_unlearn();
            let mut seen = Vec::new();
            let model = run(&mi, &ctx, Some(&original), &mut |_, m, _| {
                seen.push((eval::evaluate(m, &data, engine), m.flat_parameters()))
            });
            let last = seen.last().unwrap();
            assert_eq!(last.0, eval::evaluate(&model, &data, engine), "{engine:?}");
            assert_eq!(last.1, model.flat_parameters(), "{engine:?}");
            assert_ne!(seen[0].1, seen[1].1, "{engine:?}: the model changes between epochs");
        }
    }

    #[test]
    fn keys_name_every_parameter() {
        let m = Method::MiUnlearn(MiUnlearn::default());
        let names: Vec<_> = m.params().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            [
                "gamma",
                "epochs",
                "remain_batch_size",
                "forget_batch_size",
                "lr",
                "optimizer",
                "mi_estimator"
            ]
        );
        assert_eq!(m.params()[0].1, "4.0");
        assert!(m.needs_original() && m.uses_split());
        let o = Method::Original(Supervised::default());
        assert!(!o.needs_original() && !o.uses_split());
        assert_eq!((o.name(), o.epochs(), o.gamma()), ("original", 100, None));
    }

    /// The drift guard: what each engine trains from a fixed seed, pinned by the SHA-256 of
    /// the checkpoint file the cache would store. A change that alters these bits alters every
    /// cached model of that engine, so it must also bump `harness::plan::SCHEMA` (which
    /// retires the old entries); then update these hashes in the same commit.
    ///
    /// The native engine is plain Rust and computes the same bits on every x86-64 Linux
    /// machine seen so far (AMD and Intel, with and without AVX-512), so its hashes are
    /// checked everywhere. The libtorch engines' bits depend on which code path MKL picks for
    /// the CPU (on one machine, `MKL_CBWR=AVX2` changed them), so their hashes are pinned per
    /// CPU class (vendor, AVX-512); on a class with none pinned they are printed, not checked.
    #[test]
    fn golden_checkpoints_pin_what_each_engine_trains() {
        use sha2::Digest as _;
        let (data, spec) = fixture(300, 0.75);
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = |model: &Mlp, name: &str| {
            let path = dir.path().join(format!("{name}.safetensors"));
            model.save(&path).unwrap();
            let digest = sha2::Sha256::digest(std::fs::read(&path).unwrap());
            digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let class = cpu_class();
        for engine in Engine::ALL {
            let ctx = Context { data: &data, spec: &spec, seed: 11, device: Device::Cpu, engine };
            let original = run(&Method::Original(supervised(4)), &ctx, None, &mut |_, _, _| {});
            let mi = small_mi_unlearn();
            let unlearned = run(&mi, &ctx, Some(&original), &mut |_, _, _| {});
            let got = [checkpoint(&original, "o"), checkpoint(&unlearned, "u")];
            let pinned = GOLDEN
                .iter()
                .find(|(e, c, _)| *e == engine.name() && (engine == Engine::Native || *c == class));
            match pinned {
                Some((_, _, hashes)) => assert_eq!(
                    got.each_ref().map(String::as_str),
                    *hashes,
                    "{engine:?} ({class}): training output changed: bump harness::plan::SCHEMA \
                     and update GOLDEN together"
                ),
                None => eprintln!(
                    "golden: no {} hashes pinned for CPU class {class}; this one trains {got:?}",
                    engine.name()
                ),
            }
        }
    }

    /// What decides the libtorch engines' bits: the CPU's vendor and whether it has AVX-512.
    fn cpu_class() -> String {
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
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        format!("{} {vendor}{}", std::env::consts::ARCH, if avx512 { " avx512" } else { "" })
    }

    /// (engine, CPU class (ignored for native), [original, MI-unlearn] checkpoint SHA-256).
    const GOLDEN: [(&str, &str, [&str; 2]); 3] = [
        (
            "native",
            "any",
            [
                "a52493c7d5c679423e468e370358607c6f38c0a3886d0a50d7981f6e37a804d0",
                "f2ff951f92cfb4b285e9e1e2b3d9a3a870e44bfed907d144a06caf8baa9ca8e2",
            ],
        ),
        (
            "autograd",
            "x86_64 AuthenticAMD avx512",
            [
                "c85db545d231eb2fc4c20a8366bc2eb9d2f8485be171e65df206b20014379ec1",
                "377d5c066531c23a78e2e651c18317de3f3fe1a97378a33301be0c522bbdd11b",
            ],
        ),
        (
            "fused",
            "x86_64 AuthenticAMD avx512",
            [
                "bd473cf20a304b795fb2ac712ab5a48c826a7892e5d9f7fdd59714b5252fa638",
                "de82bc1ff4762cfc3359b0a5c2a33cdd0a2cd663e1c29cedaf2c88489ab26081",
            ],
        ),
    ];
}
