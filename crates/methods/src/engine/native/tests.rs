//! The native engine against autograd: batches, logits, each head's gradient, Adam, and the
//! floors that keep subnormal numbers out.

use model::Classifier;

use super::adam::{Adam, AdamStep};
use super::aligned::Aligned;
use super::batch::{Batch, GROUP, combine, combine_rows};
use super::heads::{cross_entropy, distill, mutual_information, softmax_rows};
use super::net::{Hook, Net, transpose};
use crate::sparse::SparseRows;
use crate::testutil::{autograd_grads, max_diff};
use model::ClassifierSpec;
use rand::Rng as _;
use tch::{Device, Kind, Tensor};

use crate::mi::mutual_information as mi_reference;

/// `n` "images" of 12 values: background -0.5 in most places, a few bright pixels.
fn images(n: usize) -> Vec<f32> {
    let mut rng = data::rng::stream(5, "images");
    (0..n * 12)
        .map(|_| {
            use rand::Rng as _;
            if rng.random_bool(0.3) { rng.random_range(-0.4..2.5) } else { -0.5 }
        })
        .collect()
}

fn model() -> Classifier {
    let spec = ClassifierSpec { input: 12, hidden: vec![16, 8], classes: 4, ..Default::default() };
    Classifier::init(&spec, &mut data::rng::stream(3, "init"), Device::Cpu)
}

/// The gradients of `net`, in the model's layout (weights `[out][in]`), flattened.
fn grads_out_in(net: &Net) -> Vec<f32> {
    let mut out = Vec::new();
    for layer in &net.layers {
        let mut w = vec![0.0; layer.weight.grad.len()];
        transpose(&layer.weight.grad, layer.fan_in, layer.fan_out, &mut w);
        out.extend(w);
        out.extend(&layer.bias.grad);
    }
    out
}

fn dense(features: &[f32], ids: &[usize]) -> Tensor {
    let rows: Vec<f32> =
        ids.iter().flat_map(|&i| features[i * 12..(i + 1) * 12].to_vec()).collect();
    Tensor::from_slice(&rows).view([ids.len() as i64, 12])
}

#[test]
fn sparse_rows_keep_what_differs_from_the_most_common_value() {
    let features = images(50);
    let x = SparseRows::new(&features, 12);
    assert_eq!((x.len(), x.background()), (50, -0.5));
    let stored = features.iter().filter(|&&v| v != -0.5).count();
    assert_eq!(x.mean_nonzero(), stored as f64 / 50.0);
    for i in 0..50 {
        let mut row = [-0.5f32; 12];
        for &(d, p) in x.row(i) {
            row[p as usize] += d;
        }
        for (r, f) in row.iter().zip(&features[i * 12..]) {
            assert!((r - f).abs() <= 1e-6 * f.abs().max(1.0), "{r} {f}");
        }
    }
}

#[test]
fn a_batch_lists_each_pixels_terms_in_row_order_across_reuses() {
    let features = images(30);
    let x = SparseRows::new(&features, 12);
    let mut batch = Batch::default();
    for ids in [(0..30).rev().collect::<Vec<usize>>(), vec![7, 3, 7, 12]] {
        batch.fill(&x, &ids);
        for p in 0..12 {
            let mut expected = Vec::new();
            for (row, &i) in ids.iter().enumerate() {
                if let Some(&(d, _)) = x.row(i).iter().find(|&&(_, q)| q as usize == p) {
                    expected.push((d, row as u32));
                }
            }
            assert_eq!(batch.pixel(p), &expected[..], "pixel {p}");
        }
    }
}

/// Terms over a matrix of `rows` rows, of very different sizes, so that any other order or
/// any fused multiply-add would round differently somewhere; each row is in with `chance`.
fn random_terms(rng: &mut impl rand::Rng, rows: usize, chance: f64) -> Vec<(f32, u32)> {
    let mut terms = Vec::new();
    for r in 0..rows as u32 {
        if rng.random_bool(chance) {
            let scale = 10f32.powi(rng.random_range(-6..6));
            terms.push((rng.random_range(-1.0f32..1.0) * scale, r));
        }
    }
    terms
}

/// Asserts `out[j]` is the scalar term-order sum of the terms' products in column `j`.
fn assert_term_order(terms: &[(f32, u32)], matrix: &[f32], out: &[f32], what: &str) {
    let width = out.len();
    for (j, &got) in out.iter().enumerate() {
        let mut want = 0.0f32;
        for &(c, r) in terms {
            want += std::hint::black_box(c * matrix[r as usize * width + j]);
        }
        assert_eq!(got.to_bits(), want.to_bits(), "{what}, column {j}");
    }
}

/// Every width `combine` meets takes its own mix of register tiles (128 or 64 columns by the
/// build's vector width, then 64, 16, 8, 4, 2, 1): each must sum every column's terms in term
/// order, one multiply and one add at a time, as plain scalar code does. That is what keeps
/// a key's bits the same under every build (`scripts/cpu-paths` runs this under each).
#[test]
fn combine_sums_in_term_order_at_every_width() {
    let mut rng = data::rng::stream(9, "combine");
    for width in (1..=140).chain([256, 784]) {
        let rows = 37;
        let matrix: Vec<f32> = (0..rows * width).map(|_| rng.random_range(-1.0..1.0)).collect();
        let terms = random_terms(&mut rng, rows, 0.7);
        let mut out = vec![f32::NAN; width];
        combine(&terms, &matrix, &mut out);
        assert_term_order(&terms, &matrix, &out, &format!("width {width}"));
    }
}

/// `combine_rows` walks groups of rows in lock step, a tile of columns at a time (a tile and
/// group size per build), the rest of the columns and the rows left over alone: every row
/// must still get its own terms summed in term order, whatever the number of rows, their
/// lengths (empty ones too) and the width.
#[test]
fn combine_rows_sums_each_row_in_term_order() {
    let mut rng = data::rng::stream(9, "combine_rows");
    for width in [1, 10, 16, 31, 32, 33, 64, 65, 100, 128, 129, 200, 256] {
        let matrix_rows = 50;
        let matrix: Vec<f32> =
            (0..matrix_rows * width).map(|_| rng.random_range(-1.0..1.0)).collect();
        for rows in [0, 1, 3, 4, 5, 9, 37] {
            let terms: Vec<Vec<(f32, u32)>> = (0..rows)
                .map(|_| {
                    let chance = rng.random_range(0.0..1.0);
                    random_terms(&mut rng, matrix_rows, chance)
                })
                .collect();
            let mut out = vec![f32::NAN; rows * width];
            let mut beside = Vec::new();
            let mut order = Vec::new();
            combine_rows(
                rows,
                |i| &terms[i],
                &matrix,
                width,
                &mut out,
                &mut order,
                |g| beside.push(g),
            );
            for (i, row) in out.chunks_exact(width).enumerate() {
                assert_term_order(&terms[i], &matrix, row, &format!("width {width}, row {i}"));
            }
            // Called once per group and once for the rows left over, in order.
            let groups: Vec<usize> = (0..=rows / GROUP).collect();
            assert_eq!(beside, groups, "{rows} rows");
        }
    }
}

/// The forward pass groups the batch by pixel between its sums: the same terms in the same
/// row order as grouping the batch alone.
#[test]
fn the_forward_pass_groups_the_batch_as_fill_does() {
    let features = images(30);
    let x = SparseRows::new(&features, 12);
    let net = Net::from_mlp(&model(), x.background);
    let ids: Vec<usize> = (0..30).rev().chain([4, 9]).collect();
    let (mut grouped, mut filled, mut acts) = (Batch::default(), Batch::default(), Vec::new());
    net.forward(&x, &ids, &mut acts, Some(&mut grouped));
    filled.fill(&x, &ids);
    for p in 0..12 {
        assert!(!filled.pixel(p).is_empty() || p == 0, "pixel {p} has no terms to compare");
        assert_eq!(grouped.pixel(p), filled.pixel(p), "pixel {p}");
    }
}

#[test]
fn a_batch_gives_each_row_the_logits_it_gets_alone_and_libtorch_agrees() {
    let features = images(40);
    let x = SparseRows::new(&features, 12);
    let model = model();
    let net = Net::from_mlp(&model, x.background);
    let ids: Vec<usize> = (0..40).rev().collect();
    let mut acts = Vec::new();
    net.forward(&x, &ids, &mut acts, None);
    let together = acts.last().unwrap().clone();
    for (k, &i) in ids.iter().enumerate() {
        net.forward(&x, &[i], &mut acts, None);
        assert_eq!(acts.last().unwrap()[..], together[k * 4..(k + 1) * 4]);
    }
    let reference: Vec<f32> =
        Vec::try_from(&tch::no_grad(|| model.forward(&dense(&features, &ids))).flatten(0, -1))
            .unwrap();
    assert!(max_diff(&together, &reference) < 1e-5, "{}", max_diff(&together, &reference));
}

#[test]
fn cross_entropy_and_mi_gradients_match_autograd() {
    let mut features = images(30);
    // Forget rows that look unlike the remain rows, so that the MI term matters.
    for v in &mut features[20 * 12..] {
        *v = if *v == -0.5 { -0.5 } else { 2.5 };
    }
    features[20 * 12..].chunks_exact_mut(12).for_each(|row| row[..5].fill(3.0));
    let x = SparseRows::new(&features, 12);
    let model = model();
    let labels: Vec<i64> = (0..30).map(|i| i % 4).collect();
    let (remain, forget): (Vec<usize>, Vec<usize>) = ((0..20).collect(), (20..30).collect());
    let (xr, xf) = (dense(&features, &remain), dense(&features, &forget));
    let yr = Tensor::from_slice(&labels[..20]);
    let gamma = 4.0;
    let z = Tensor::cat(
        &[
            Tensor::zeros([30], (Kind::Float, Device::Cpu)),
            Tensor::ones([20], (Kind::Float, Device::Cpu)),
        ],
        0,
    );
    let check = |with_mi: bool| {
        let expected = autograd_grads(&model, |m| {
            let ce = m.forward(&xr).cross_entropy_for_logits(&yr);
            if with_mi {
                ce + mi_reference(&m.forward(&Tensor::cat(&[&xr, &xf, &xr], 0)), &z) * gamma
            } else {
                ce
            }
        });
        let mut net = Net::from_mlp(&model, x.background);
        let ids: Vec<usize> = if with_mi { (0..30).collect() } else { remain.clone() };
        let (mut batch, mut acts) = (Batch::default(), Vec::new());
        batch.fill(&x, &ids);
        net.forward(&x, &ids, &mut acts, None);
        let logits = acts.last().unwrap();
        let mut dlogits = vec![0.0; logits.len()];
        let ys = (0..20).map(|i| labels[i] as usize);
        let ce = cross_entropy(&logits[..80], ys, 4, 1.0, &mut dlogits[..80]);
        let reference_ce =
            tch::no_grad(|| model.forward(&xr).cross_entropy_for_logits(&yr)).double_value(&[]);
        assert!((ce - reference_ce).abs() < 1e-6, "{ce} {reference_ce}");
        if with_mi {
            let mi = mutual_information(logits, 4, 20, gamma, &mut dlogits);
            let reference = tch::no_grad(|| {
                mi_reference(&model.forward(&Tensor::cat(&[&xr, &xf, &xr], 0)), &z)
            })
            .double_value(&[]);
            assert!(mi > 5e-5 && (mi - reference).abs() < 1e-6, "{mi} {reference}");
        }
        net.backward(&batch, &acts, &dlogits, None, Hook::NONE);
        let got = grads_out_in(&net);
        assert!(expected.iter().any(|g| g.abs() > 1e-3));
        assert!(max_diff(&got, &expected) < 2e-6, "mi {with_mi}: {}", max_diff(&got, &expected));
    };
    check(false);
    check(true);
}

#[test]
fn distillation_and_weighted_cross_entropy_gradients_match_autograd() {
    let features = images(24);
    let x = SparseRows::new(&features, 12);
    let (model, teacher) = (model(), {
        let spec =
            ClassifierSpec { input: 12, hidden: vec![16, 8], classes: 4, ..Default::default() };
        Classifier::init(&spec, &mut data::rng::stream(9, "teacher"), Device::Cpu)
    });
    let ids: Vec<usize> = (0..24).collect();
    let labels: Vec<i64> = (0..24).map(|i| (i * 7 % 4) as i64).collect();
    let (xs, ys) = (dense(&features, &ids), Tensor::from_slice(&labels));
    let teacher_logits = tch::no_grad(|| teacher.forward(&xs));
    let (t, alpha, weight) = (4.0, 0.3, -0.7);
    let expected = autograd_grads(&model, |m| {
        let logits = m.forward(&xs);
        logits.cross_entropy_for_logits(&ys) * weight
            + super::super::autograd::distill_kl(&logits, &teacher_logits, t) * alpha
    });
    let mut net = Net::from_mlp(&model, x.background);
    let (mut batch, mut acts) = (Batch::default(), Vec::new());
    batch.fill(&x, &ids);
    net.forward(&x, &ids, &mut acts, None);
    let logits = acts.last().unwrap();
    let mut d = vec![0.0; logits.len()];
    let ce = cross_entropy(logits, labels.iter().map(|&y| y as usize), 4, weight as f32, &mut d);
    let target = Vec::<f32>::try_from(&teacher_logits.flatten(0, -1)).unwrap();
    let kl = distill(logits, &target, 4, t as f32, alpha as f32, &mut d);
    let reference = tch::no_grad(|| {
        let logits = model.forward(&xs);
        super::super::autograd::distill_kl(&logits, &teacher_logits, t).double_value(&[])
    });
    assert!(kl > 1e-3 && (kl - reference).abs() < 1e-5 * kl, "{kl} {reference}");
    assert!(ce > 0.5, "{ce}");
    net.backward(&batch, &acts, &d, None, Hook::NONE);
    let got = grads_out_in(&net);
    assert!(expected.iter().any(|g| g.abs() > 1e-3));
    assert!(max_diff(&got, &expected) < 2e-6, "{}", max_diff(&got, &expected));
}

#[test]
fn adam_matches_tch_adam_to_rounding_and_writes_back() {
    let features = images(16);
    let x = SparseRows::new(&features, 12);
    let model = model();
    let reference = model.duplicate();
    let ids: Vec<usize> = (0..16).collect();
    let labels: Vec<i64> = (0..16).map(|i| i % 4).collect();
    let (xs, ys) = (dense(&features, &ids), Tensor::from_slice(&labels));
    let mut opt =
        tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), reference.var_store(), 1e-2)
            .unwrap();
    let mut net = Net::from_mlp(&model, x.background);
    let mut other = net.clone();
    let new_adam = || Adam { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
    let (mut adam, mut other_adam) = (new_adam(), new_adam());
    let (mut batch, mut acts) = (Batch::default(), Vec::new());
    batch.fill(&x, &ids);
    let dlogits = |net: &Net, acts: &mut Vec<Vec<f32>>| {
        net.forward(&x, &ids, acts, None);
        let logits = acts.last().unwrap();
        let mut d = vec![0.0; logits.len()];
        cross_entropy(logits, labels.iter().map(|&y| y as usize), 4, 1.0, &mut d);
        d
    };
    for _ in 0..5 {
        opt.backward_step(&reference.forward(&xs).cross_entropy_for_logits(&ys));
        let d = dlogits(&net, &mut acts);
        net.backward(&batch, &acts, &d, None, Hook::NONE);
        net.adam_step(&mut adam);
        // The training loop's path: the first layer updated inside the backward pass.
        let d = dlogits(&other, &mut acts);
        let step = other_adam.next();
        other.backward(&batch, &acts, &d, Some(step), Hook::NONE);
        other.update(step, true, Hook::NONE);
    }
    for (a, b) in net.layers.iter().zip(&other.layers) {
        assert_eq!(a.weight.value, b.weight.value, "the same bits either way");
        assert_eq!(a.bias.value, b.bias.value);
    }
    net.write_to(&model);
    let (a, b) = (model.flat_parameters(), reference.flat_parameters());
    assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
    assert!(max_diff(&a, &self::model().flat_parameters()) > 1e-3, "the model moved");
}

/// PyTorch's Adam formula in plain IEEE arithmetic, subnormals and all.
fn ieee_adam(k: AdamStep, v: &mut f32, g: f32, m: &mut f32, s: &mut f32) {
    *m += k.weight * (g - *m);
    *s = *s * k.beta2 + k.one_minus_beta2 * g * g;
    *v += -k.step_size * (*m / (s.sqrt() / k.bias_correction2_sqrt + k.eps));
}

#[test]
fn adam_moments_of_a_dead_weight_never_go_subnormal_and_the_weights_do_not_notice() {
    let mut adam = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
    // A weight whose gradient stops (a dead unit), one whose gradient shrinks through the
    // subnormal range, and one whose gradient goes on.
    let (mut value, mut m, mut s) = ([0.03f32, 0.5, -0.02], [0.0f32; 3], [0.0f32; 3]);
    let (mut plain_v, mut plain_m, mut plain_s) = (value, m, s);
    let mut seen_subnormal = false;
    for t in 0..90_000 {
        let grad = [if t < 10 { 1e-3 } else { 0.0 }, 1e-3 * 0.5f32.powi(t / 100), 2e-3];
        let k = adam.next();
        k.apply(&mut value, &grad, &mut m, &mut s);
        for i in 0..3 {
            ieee_adam(k, &mut plain_v[i], grad[i], &mut plain_m[i], &mut plain_s[i]);
        }
        seen_subnormal |= plain_m.iter().chain(&plain_s).any(|x| x.is_subnormal());
        assert!(
            !m.iter().chain(&s).chain(&value).any(|x| x.is_subnormal()),
            "step {t}: {m:?} {s:?}"
        );
    }
    assert!(seen_subnormal, "IEEE arithmetic does go subnormal here");
    // The last 73,000 steps took the loop without the bias correction's division.
    assert_eq!(adam.next().bias_correction2_sqrt, 1.0);
    assert_ne!(Adam { step: 16_000, ..adam }.next().bias_correction2_sqrt, 1.0);
    assert_eq!((m[0], s[0], m[1], s[1]), (0.0, 0.0, 0.0, 0.0), "flushed");
    assert_eq!(value, plain_v, "the same weights, bit for bit");
    assert_eq!((m[2], s[2]), (plain_m[2], plain_s[2]));
}

/// Adam's share of a training epoch on this machine: 938 steps over the first layer's
/// 100,352 weights, as the backward pass applies them (docs/performance.md, "How far Zen 1
/// is from its floor"): `cargo test --release -p methods adams_time -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, a few seconds"]
fn adams_time_per_epoch_over_the_first_layer() {
    let n = 784 * 128;
    let mut rng = data::rng::stream(11, "adam");
    let grad: Vec<f32> = (0..n).map(|_| rng.random_range(-1e-3..1e-3)).collect();
    let mut times = Vec::new();
    for _ in 0..3 {
        // Cache-line-aligned, as the engine's parameters and moments are.
        let values: Vec<f32> = (0..n).map(|_| rng.random_range(-0.05..0.05)).collect();
        let mut value = Aligned::from_slice(&values);
        let (mut m, mut s) = (Aligned::zeros(n), Aligned::zeros(n));
        let mut adam = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
        let start = std::time::Instant::now();
        for _ in 0..938 {
            // Row by row, as `Net::backward` takes them.
            let k = adam.next();
            for (((v, g), m), s) in value
                .chunks_exact_mut(128)
                .zip(grad.chunks_exact(128))
                .zip(m.chunks_exact_mut(128))
                .zip(s.chunks_exact_mut(128))
            {
                k.apply(v, g, m, s);
            }
        }
        times.push(start.elapsed().as_secs_f64());
        assert!(value.iter().all(|v| v.is_finite()) && m.iter().any(|&m| m != 0.0));
    }
    times.sort_by(f64::total_cmp);
    let per_update = times[1] / (938.0 * n as f64) * 1e9;
    println!(
        "Adam over the first layer: {:.3} s per epoch, {per_update:.2} ns per update (median of 3: {times:.3?})",
        times[1]
    );
}

#[test]
fn loss_gradients_of_confident_rows_never_go_subnormal() {
    // Logits whose gaps make some exp() subnormal (gap > 87) or tiny (gap > 42).
    let logits = [0.0f32, -50.0, -95.0, -120.0, 3.0, -44.0, 2.0, -100.0];
    let mut d = vec![0.0f32; 8];
    let ce = cross_entropy(&logits, [0usize, 2].into_iter(), 4, 1.0, &mut d);
    assert!(d.iter().all(|x| !x.is_subnormal()), "{d:?}");
    // exp(-50) / 2 is kept (1e-22, above 2^-80); exp(-95), exp(-120), exp(-100) are not.
    assert_eq!((d[2], d[3], d[7]), (0.0, 0.0, 0.0), "{d:?}");
    assert_eq!(d[1], (-50.0f32).exp() / 2.0);
    assert!(d[0] == 0.0 && d[4] > 0.1 && d[5] > 0.0 && d[6] < 0.0, "{d:?}");
    // Row 0's loss is about exp(-50); row 1's is ln(1 + e^-1 + e^-47) + 1.
    let row1 = (1.0f64 + (-1.0f64).exp() + (-47.0f64).exp()).ln() + 1.0;
    assert!((ce - row1 / 2.0).abs() < 1e-6, "{ce} {row1}");
    let probs = softmax_rows(&logits, 4);
    assert!(probs.iter().all(|x| !x.is_subnormal()), "{probs:?}");
    assert_eq!((probs[2], probs[3], probs[7]), (0.0, 0.0, 0.0));
    assert_eq!(probs[1], (-50.0f32).exp());
    let mut d = vec![0.0f32; 8];
    mutual_information(&logits, 4, 1, 8.0, &mut d);
    assert!(d.iter().all(|x| !x.is_subnormal()), "{d:?}");
    assert!(d.iter().any(|&x| x != 0.0), "{d:?}");
}
