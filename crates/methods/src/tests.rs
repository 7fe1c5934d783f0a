//! Tests of the methods end to end on small synthetic data (and one real-MNIST slice).

use data::split::{ForgetSpec, forget_split};
use model::{Classifier, ClassifierSpec};
use tch::Device;

use crate::catalog::grad_ascent::GradAscent;
use crate::catalog::l1_sparse::L1Sparse;
use crate::catalog::mi_unlearn::{Grid, MiUnlearn};
use crate::catalog::neggrad_plus::NegGradPlus;
use crate::catalog::random_label::RandomLabel;
use crate::catalog::salun::Salun;
use crate::catalog::scrub::Scrub;
use crate::catalog::supervised::Original;
use crate::catalog::supervised::Retrain;
use crate::engine::{self, Engine};
use crate::method::{AnyMethod, Context};
use crate::method::{Count, Rate};
use crate::tensors::{Data, Images};
use crate::testutil::{fixture, original, train};

/// MI-unlearn at gamma 4 for 2 epochs, with batches and a rate for the small fixtures.
fn small_mi_unlearn() -> AnyMethod {
    AnyMethod::new(MiUnlearn {
        gamma: 4.0,
        grid: Grid::Product,
        epochs: Count::new(2),
        remain_batch_size: Count::new(32),
        forget_batch_size: Count::new(8),
        lr: Rate::new(1e-2),
    })
}

#[test]
fn original_learns_and_counts_partial_batches() {
    let (data, spec) = fixture(300, 0.5);
    let (model, history) = train(&original(5), &data, &spec, None);
    assert_eq!(history.len(), 5);
    assert!(history.iter().all(|s| s.steps == 19), "300 / 16 -> 18 full batches + 1 partial");
    assert!(history[4].loss < history[0].loss);
    let m = engine::evaluate(&model, &data, Engine::default());
    assert!(m.remain > 95.0 && m.forget > 95.0 && m.test > 95.0, "{m:?}");
}

#[test]
fn runs_are_reproducible_per_seed() {
    let (data, spec) = fixture(120, 0.5);
    let a = train(&original(2), &data, &spec, None).0;
    let b = train(&original(2), &data, &spec, None).0;
    assert_eq!(a.flat_parameters(), b.flat_parameters());
    let r = train(
        &AnyMethod::new(Retrain {
            epochs: Count::new(2),
            batch_size: Count::new(16),
            lr: Rate::new(1e-2),
            ..Default::default()
        }),
        &data,
        &spec,
        None,
    )
    .0;
    assert_ne!(a.flat_parameters(), r.flat_parameters(), "retrain draws its own init");
}

#[test]
fn mi_unlearn_steps_follow_the_shorter_stream() {
    // 100 samples of class 1; 75 of them forgotten: remain 225, forget 75.
    let (data, spec) = fixture(300, 0.75);
    assert_eq!((data.remain().len(), data.forget().len()), (225, 75));
    let (original, _) = train(&original(3), &data, &spec, None);
    let mi = |remain_batch_size, forget_batch_size| MiUnlearn {
        gamma: 4.0,
        grid: Grid::Product,
        epochs: Count::new(2),
        remain_batch_size,
        forget_batch_size,
        lr: Rate::new(1e-3),
    };
    // Forget stream shorter: ceil(75 / 16) = 5 steps (last forget batch 11), remain cut short.
    let (_, h) = train(
        &AnyMethod::new(mi(Count::new(64 / 4), Count::new(16))),
        &data,
        &spec,
        Some(&original),
    );
    assert_eq!(h.iter().map(|s| s.steps).collect::<Vec<_>>(), vec![5, 5]);
    assert!(h.iter().all(|s| s.mi.unwrap() >= 0.0 && s.mi.unwrap() < std::f64::consts::LN_2));
    // Remain stream shorter: ceil(225 / 64) = 4 steps.
    let (_, h) =
        train(&AnyMethod::new(mi(Count::new(64), Count::new(2))), &data, &spec, Some(&original));
    assert_eq!(h[0].steps, 4);
}

#[test]
fn mi_unlearn_with_gamma_zero_is_finetuning_on_remain_batches() {
    let (data, spec) = fixture(300, 0.75);
    let (original, _) = train(&original(3), &data, &spec, None);
    let cfg = MiUnlearn {
        gamma: 0.0,
        grid: Grid::Product,
        epochs: Count::new(1),
        remain_batch_size: Count::new(16),
        forget_batch_size: Count::new(16),
        lr: Rate::new(1e-3),
    };
    let (model, h) = train(&AnyMethod::new(cfg), &data, &spec, Some(&original));
    assert!((h[0].loss - h[0].ce).abs() < 1e-12, "gamma 0: loss is the CE alone");
    assert_ne!(model.flat_parameters(), original.flat_parameters());
    assert!(h[0].mi.unwrap() > 0.0);
}

#[test]
fn strong_mi_penalty_lowers_forget_accuracy() {
    let (data, spec) = fixture(600, 0.75);
    let (original, _) = train(&original(10), &data, &spec, None);
    let before = engine::evaluate(&original, &data, Engine::default());
    let cfg = MiUnlearn {
        gamma: 50.0,
        grid: Grid::Product,
        epochs: Count::new(30),
        remain_batch_size: Count::new(32),
        forget_batch_size: Count::new(8),
        lr: Rate::new(1e-2),
    };
    let (model, h) = train(&AnyMethod::new(cfg), &data, &spec, Some(&original));
    let after = engine::evaluate(&model, &data, Engine::default());
    assert!(h.last().unwrap().mi.unwrap() < h[0].mi.unwrap(), "{h:?}");
    assert!(after.forget < before.forget - 20.0, "{before:?} -> {after:?}");
    // The remaining quarter of class 1 goes with the forgotten three quarters (at most
    // 50 of 450 remain samples); the other classes stay.
    assert!(after.remain > 85.0, "{after:?}");
}

/// The baselines with settings strong enough to show on the fixture's 450 samples (each
/// method's direction is what `every_baseline_forgets...` tests).
fn baselines() -> Vec<AnyMethod> {
    vec![
        AnyMethod::new(GradAscent {
            epochs: Count::new(10),
            batch_size: Count::new(16),
            lr: Rate::new(1e-2),
        }),
        AnyMethod::new(NegGradPlus {
            alpha: 0.5,
            epochs: Count::new(5),
            remain_batch_size: Count::new(32),
            forget_batch_size: Count::new(8),
            lr: Rate::new(1e-2),
        }),
        AnyMethod::new(RandomLabel {
            epochs: Count::new(10),
            batch_size: Count::new(16),
            lr: Rate::new(1e-2),
        }),
        AnyMethod::new(Scrub {
            alpha: 0.001,
            temperature: 4.0,
            epochs: Count::new(10),
            max_epochs: Some(3),
            remain_batch_size: Count::new(32),
            forget_batch_size: Count::new(8),
            lr: Rate::new(1e-2),
        }),
        AnyMethod::new(Salun {
            sparsity: 0.5,
            epochs: Count::new(10),
            batch_size: Count::new(16),
            lr: Rate::new(1e-2),
        }),
    ]
}

/// [`baselines`], then L1-sparse (which keeps the class: a penalty, not a forgetting loss) and
/// Bad Teacher.
fn every_baseline() -> Vec<AnyMethod> {
    let mut methods = baselines();
    methods.push(AnyMethod::new(L1Sparse {
        lambda: 1e-2,
        epochs: Count::new(3),
        batch_size: Count::new(16),
        lr: Rate::new(1e-2),
    }));
    methods.push(AnyMethod::new(crate::catalog::bad_teacher::BadTeacher {
        epochs: Count::new(3),
        lr: Rate::new(1e-2),
        batch_size: Count::new(32),
        ..Default::default()
    }));
    methods
}

#[test]
fn every_baseline_forgets_keeps_the_rest_and_is_reproducible() {
    let (data, spec) = fixture(600, 0.75);
    let (original, _) = train(&original(10), &data, &spec, None);
    let before = engine::evaluate(&original, &data, Engine::default());
    assert!(before.forget > 95.0, "{before:?}");
    let cases = baselines();
    for method in &cases {
        let (model, history) = train(method, &data, &spec, Some(&original));
        let after = engine::evaluate(&model, &data, Engine::default());
        assert_eq!(history.len(), method.epochs(), "{method:?}");
        assert!(after.forget < before.forget - 30.0, "{method:?}: {before:?} -> {after:?}");
        if method.name() != "grad_ascent" {
            // Plain ascent has nothing holding the other classes in place.
            assert!(after.test > 55.0, "{method:?}: {after:?}");
        }
        let (again, _) = train(method, &data, &spec, Some(&original));
        assert_eq!(again.flat_parameters(), model.flat_parameters(), "{method:?}");
    }
    // L1-sparse is fine-tuning on the remain set: it keeps the model and shrinks weights.
    let l1 = |lambda| {
        let cfg = L1Sparse {
            lambda,
            epochs: Count::new(5),
            batch_size: Count::new(16),
            lr: Rate::new(1e-2),
        };
        train(&AnyMethod::new(cfg), &data, &spec, Some(&original)).0
    };
    let norm = |m: &Classifier| m.flat_parameters().iter().map(|p| p.abs()).sum::<f32>();
    let (plain, sparse) = (l1(0.0), l1(1e-2));
    assert!(norm(&sparse) < 0.8 * norm(&plain), "{} {}", norm(&sparse), norm(&plain));
    assert!(engine::evaluate(&sparse, &data, Engine::default()).remain > 90.0);
}

#[test]
fn salun_changes_only_the_salient_weights() {
    let (data, spec) = fixture(300, 0.75);
    let (original, _) = train(&original(5), &data, &spec, None);
    let cfg = Salun {
        sparsity: 0.2,
        epochs: Count::new(2),
        batch_size: Count::new(16),
        lr: Rate::new(1e-2),
    };
    let (model, _) = train(&AnyMethod::new(cfg), &data, &spec, Some(&original));
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
    let run_with = |engine, method: &AnyMethod, original: Option<&Classifier>| {
        let (data, spec, seed, device) = (&data, &spec, 7, Device::Cpu);
        let ctx = Context { original, ..Context::new(data, spec, seed, device, engine) };
        let mut history = Vec::new();
        let model = method.train(&ctx, &mut |_, _, s| history.push(*s)).unwrap();
        (model, history)
    };
    let diff = |x: &Classifier, y: &Classifier| {
        x.flat_parameters()
            .iter()
            .zip(y.flat_parameters())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    let original_3 = original(3);
    let mi = AnyMethod::new(MiUnlearn {
        gamma: 4.0,
        grid: Grid::Product,
        epochs: Count::new(2),
        remain_batch_size: Count::new(32),
        forget_batch_size: Count::new(8),
        lr: Rate::new(1e-3),
    });
    let (a, ha) = run_with(Engine::Autograd, &original_3, None);
    let (am, hm) = run_with(Engine::Autograd, &mi, Some(&a));
    let ea = engine::evaluate(&am, &data, Engine::Autograd);
    for engine in [Engine::Native] {
        let (f, hf) = run_with(engine, &original_3, None);
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
        let ef = engine::evaluate(&fm, &data, engine);
        assert!(
            (ea.forget - ef.forget).abs() < 2.0 && (ea.remain - ef.remain).abs() < 1.0,
            "{engine:?}: {ea:?} {ef:?}"
        );
        // Each engine's evaluation of the same model agrees with libtorch's.
        assert_eq!(engine::evaluate(&am, &data, engine), ea, "{engine:?}");
    }
}

/// Every baseline trained on each engine from the same original: the same model to float
/// rounding (the engines differ only in the order of float sums), step by step.
///
/// SCRUB runs without its max-steps here: its first max-step starts where the student is the
/// teacher, at the KL's minimum, so its gradient is rounding noise (different in each engine)
/// that Adam scales up to a full step. The distillation gradient itself is checked against
/// autograd in `engine::native`'s tests.
#[test]
fn baselines_agree_across_engines() {
    let (data, spec) = fixture(300, 0.75);
    let mut methods = every_baseline();
    methods[3] = AnyMethod::new(Scrub {
        alpha: 0.001,
        temperature: 4.0,
        epochs: Count::new(5),
        max_epochs: Some(0),
        remain_batch_size: Count::new(32),
        forget_batch_size: Count::new(8),
        lr: Rate::new(1e-2),
    });
    let (data, spec, device) = (&data, &spec, Device::Cpu);
    let engine = Engine::Autograd;
    let ctx = Context::new(data, spec, 5, device, engine);
    let first = original(4).train(&ctx, &mut |_, _, _| {}).unwrap();
    for method in &methods {
        let run = |engine| {
            let ctx = Context { engine, original: Some(&first), ..ctx };
            let mut history = Vec::new();
            let model = method.train(&ctx, &mut |_, _, s| history.push(*s)).unwrap();
            (model.flat_parameters(), history)
        };
        let ((a, ha), (n, hn)) = (run(Engine::Autograd), run(Engine::Native));
        let moved = crate::testutil::max_diff(&a, &first.flat_parameters());
        let diff = crate::testutil::max_diff(&a, &n);
        eprintln!("{method:?}: moved {moved:.3e}, engines differ by {diff:.3e}");
        assert!(moved > 1e-3 && diff < 1e-3 * moved.max(1.0), "{method:?}: {diff} of {moved}");
        assert_eq!(ha.len(), hn.len());
        for (x, y) in ha.iter().zip(&hn) {
            assert_eq!(x.steps, y.steps, "{method:?}");
            assert!(
                (x.loss - y.loss).abs() < 1e-3 * x.loss.abs().max(1.0),
                "{method:?}: {x:?} {y:?}"
            );
            assert!((x.ce - y.ce).abs() < 1e-3 * x.ce.abs().max(1.0), "{method:?}: {x:?} {y:?}");
        }
    }
}

/// On real images (needs `scripts/setup`): the native evaluation of a trained model gives
/// exactly libtorch's accuracies.
#[test]
fn native_evaluation_equals_libtorch_on_real_mnist() {
    let Some(mnist) = crate::testutil::real_mnist(6000, 2000) else { return };
    let split = forget_split(
        &mnist.train.labels,
        &ForgetSpec::class(3, 0.75),
        &mut data::rng::stream(0, "split"),
    )
    .unwrap();
    let data = Data::new(&Images::new(std::sync::Arc::new(mnist)), &split, Device::Cpu);
    let spec = ClassifierSpec::default();
    let (model, _) = train(&original(1), &data, &spec, None);
    let native = engine::evaluate(&model, &data, Engine::Native);
    assert_eq!(native, engine::evaluate(&model, &data, Engine::Autograd));
    assert!(native.test > 75.0 && native.forget > 60.0, "{native:?}");
    // Per-sample losses agree to float rounding of the logits; none rounds to zero.
    let (a, b) = (
        engine::outputs(&model, &data, Engine::Native, false),
        engine::outputs(&model, &data, Engine::Autograd, false),
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
    let (first, _) = train(&original(2), &data, &spec, None);
    for engine in Engine::ALL {
        let (data, spec, original) = (&data, &spec, Some(&first));
        let ctx = Context { original, ..Context::new(data, spec, 7, Device::Cpu, engine) };
        let mi = small_mi_unlearn();
        let mut seen = Vec::new();
        let model = mi
            .train(&ctx, &mut |_, m, _| {
                let m = m.expect("a built-in method shows its model after every epoch");
                seen.push((engine::evaluate(m, data, engine), m.flat_parameters()))
            })
            .unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.0, engine::evaluate(&model, data, engine), "{engine:?}");
        assert_eq!(last.1, model.flat_parameters(), "{engine:?}");
        assert_ne!(seen[0].1, seen[1].1, "{engine:?}: the model changes between epochs");
    }
}

#[test]
fn keys_name_every_parameter() {
    let m = AnyMethod::new(MiUnlearn::default());
    let names: Vec<_> = m.key().into_iter().map(|(k, _)| k).collect();
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
    assert_eq!(m.key()[0].1, "4.0");
    assert_eq!(m.label(), "gamma=4 epochs=5");
    let (swept, value) = m.swept().unwrap();
    assert_eq!((swept.parameter, value, m.role()), ("gamma", 4.0, crate::Role::Unlearner));
    assert!(m.needs_original() && m.uses_split());
    let o = AnyMethod::new(Original::default());
    assert!(!o.needs_original() && !o.uses_split());
    assert_eq!(
        (o.name(), o.epochs(), o.swept(), o.role()),
        ("original", 100, None, crate::Role::Original)
    );
}

/// The drift guard: what each engine trains from a fixed seed, pinned by the SHA-256 of
/// the checkpoint file the cache would store. A change that alters these bits alters every
/// cached model of that engine, so it must also bump `harness::execution::plan::SCHEMA` (which
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
    let checkpoint = |model: &Classifier, name: &str| {
        let path = dir.path().join(format!("{name}.safetensors"));
        model.save(&path).unwrap();
        let digest = sha2::Sha256::digest(std::fs::read(&path).unwrap());
        digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let class = crate::engine::cpu_class();
    for engine in Engine::ALL {
        let got = from_golden_original(&data, &spec, engine, |first, ctx| {
            let unlearned = small_mi_unlearn().train(ctx, &mut |_, _, _| {}).unwrap();
            [checkpoint(first, "o"), checkpoint(&unlearned, "u")]
        });
        let pinned = GOLDEN
            .iter()
            .find(|(e, c, _)| *e == engine.name() && (engine == Engine::Native || *c == class));
        match pinned {
            Some((_, _, hashes)) => assert_eq!(
                got.each_ref().map(String::as_str),
                *hashes,
                "{engine:?} ({class}): training output changed: bump harness::execution::plan::SCHEMA \
                 and update GOLDEN together"
            ),
            None => eprintln!(
                "golden: no {} hashes pinned for CPU class {class}; this one trains {got:?}",
                engine.name()
            ),
        }
    }
}

/// Every baseline (plus L1-sparse and Bad Teacher) trained on each engine from the same
/// 4-epoch original: the SHA-256 of its parameters' bits, pinned as [`GOLDEN`] pins the
/// notebook's methods (autograd per CPU class, native everywhere). The autograd hashes were
/// taken before the baselines ran on any engine, so they also say that the engine-neutral
/// objective (`engine::step::Objective`) computes exactly what each method's own libtorch code
/// did.
#[test]
fn golden_baselines_pin_what_each_engine_trains() {
    use sha2::Digest as _;
    let (data, spec) = fixture(300, 0.75);
    let methods = every_baseline();
    let class = crate::engine::cpu_class();
    let hash = |m: &Classifier| {
        let bits: Vec<u8> = m.flat_parameters().iter().flat_map(|p| p.to_le_bytes()).collect();
        let digest = sha2::Sha256::digest(bits);
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>()
    };
    for engine in Engine::ALL {
        let got: Vec<String> = from_golden_original(&data, &spec, engine, |_, ctx| {
            methods.iter().map(|m| hash(&m.train(ctx, &mut |_, _, _| {}).unwrap())).collect()
        });
        let pinned = GOLDEN_BASELINES
            .iter()
            .find(|(e, c, _)| *e == engine.name() && (engine == Engine::Native || *c == class));
        match pinned {
            Some((_, _, hashes)) => assert_eq!(
                got,
                hashes.to_vec(),
                "{engine:?} ({class}): a baseline trains differently: bump harness::execution::plan::SCHEMA \
                 and update GOLDEN_BASELINES together"
            ),
            None => eprintln!(
                "golden: no {} baseline hashes pinned for CPU class {class}; this one trains \
                 {got:?}",
                engine.name()
            ),
        }
    }
}

/// (engine, CPU class (ignored for native), the first 8 bytes of the SHA-256 of each of
/// [`golden_baselines_pin_what_each_engine_trains`]'s models: grad_ascent, neggrad_plus,
/// random_label, scrub, salun, l1_sparse, bad_teacher).
const GOLDEN_BASELINES: [(&str, &str, [&str; 7]); 2] = [
    (
        "native",
        "any",
        [
            "f3f57b8f7e1c7af5",
            "7e2161dbbdb05d07",
            "ac09f562807fcad0",
            "7fe89b8a9aef42a8",
            "754f3245f70d5bd1",
            "9638741187a9b864",
            "e501fa9c54e1277a",
        ],
    ),
    (
        "autograd",
        "x86_64 AuthenticAMD avx512",
        [
            "c5934130512fd43f",
            "67052545a7965fe9",
            "959b18460f809990",
            "4b6b29823c3b021d",
            "ce0a34e7256612c1",
            "380958fee043981e",
            "6fca12c43003e08c",
        ],
    ),
];

/// `then` on the golden tests' original (4 epochs, seed 11, on `engine`) and a context that
/// starts from it.
fn from_golden_original<R>(
    data: &Data,
    spec: &ClassifierSpec,
    engine: Engine,
    then: impl FnOnce(&Classifier, &Context<'_>) -> R,
) -> R {
    let device = Device::Cpu;
    let mut ctx = Context::new(data, spec, 11, device, engine);
    let first = original(4).train(&ctx, &mut |_, _, _| {}).unwrap();
    ctx.original = Some(&first);
    then(&first, &ctx)
}

/// (engine, CPU class (ignored for native), [original, MI-unlearn] checkpoint SHA-256).
const GOLDEN: [(&str, &str, [&str; 2]); 2] = [
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
];

/// Replicate 0 draws the seed's own streams (today's runs); every other replicate its own,
/// and so does every U-LiRA shadow, so retrain's replicates and shadows differ in
/// initialisation and batch order.
#[test]
fn replicates_and_shadows_draw_their_own_streams() {
    let (data, spec) = fixture(300, 0.75);
    use rand::Rng as _;
    let retrain = AnyMethod::new(Retrain {
        epochs: Count::new(1),
        batch_size: Count::new(16),
        lr: Rate::new(1e-2),
        ..Default::default()
    });
    let run_of = |replicate, shadow: Option<usize>| {
        let (data, spec) = (&data, &spec);
        let engine = Engine::default();
        let device = Device::Cpu;
        let ctx = Context { replicate, shadow, ..Context::new(data, spec, 7, device, engine) };
        let purpose = match (replicate, shadow) {
            (0, None) => "x".to_owned(),
            (r, None) => format!("x/r{r}"),
            (0, Some(s)) => format!("x/s{s}"),
            (r, Some(s)) => format!("x/r{r}/s{s}"),
        };
        assert_eq!(ctx.stream("x").random::<u64>(), data::rng::stream(7, &purpose).random::<u64>());
        retrain.train(&ctx, &mut |_, _, _| {}).unwrap().flat_parameters()
    };
    let run = |replicate| run_of(replicate, None);
    let (r0, r1, r2) = (run(0), run(1), run(2));
    assert_eq!(r0, crate::testutil::train(&retrain, &data, &spec, None).0.flat_parameters());
    assert_ne!(r0, r1);
    assert_ne!(r1, r2);
    let (s0, s1) = (run_of(0, Some(0)), run_of(0, Some(1)));
    assert_ne!(s0, r0, "shadow 0 is not the seed's own run");
    assert_ne!(s0, s1);
    assert_eq!(s1, run_of(0, Some(1)), "a shadow is reproducible");
    assert_eq!(r1, run(1), "a replicate is reproducible");
}
