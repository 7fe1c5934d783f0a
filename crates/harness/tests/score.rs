//! `harness score` (issue #25): populations trained anywhere, scored from .npy and .npz
//! arrays. On the committed audit arrays it gives the audit's F and epsilons; bad input exits
//! 2 naming the file and the problem, with nothing written.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use harness::cli::score::{Accuracies, Request, Source, compute};
use harness::report::quality::Noise;
use results::npy;

fn arrays() -> PathBuf {
    workspace().join("results/audit/arrays")
}

fn request(unlearned: &Path, retrained: &Path) -> Request {
    Request {
        unlearned: Source::parse(&unlearned.display().to_string(), "unlearned"),
        retrained: Source::parse(&retrained.display().to_string(), "retrained"),
        reference: None,
        versus: None,
        labels: None,
        out: None,
        noise: Noise { resamples: 200, splits: 2, seed: 0 },
        accuracies: None,
        sizes: Vec::new(),
        draws: 4,
    }
}

/// The audit's per-method bucket counts: (method, params) -> [(bucket, examples)].
fn audit_buckets() -> std::collections::BTreeMap<(String, String), Vec<(f64, usize)>> {
    let mut out = std::collections::BTreeMap::<_, Vec<_>>::new();
    for r in read_csv(&workspace().join("results/audit/audit_epsilons.csv")) {
        let key = (r["method"].clone(), r["params"].clone());
        out.entry(key).or_default().push((num(&r, "bucket"), num(&r, "examples") as usize));
    }
    out
}

#[test]
fn the_committed_audit_arrays_score_to_the_audits_f_and_epsilons() {
    let buckets = audit_buckets();
    let retrain = arrays().join("retrain_epochs20_seed0.npy");
    let tmp = tempfile::tempdir().unwrap();
    let mut scored = 0;
    for row in read_csv(&workspace().join("results/audit/audit.csv")) {
        let (method, params) = (&row["method"], &row["params"]);
        if method == "retrain" {
            continue;
        }
        let file = format!("{method}_{}_seed0.npy", harness::report::audit::slug(params));
        let (shape, values) =
            npy::from_bytes::<f32>(&std::fs::read(arrays().join(&file)).unwrap()).unwrap();
        // The identity is one model, which each of its replicates would equal: the audit
        // scores N copies of it.
        let unlearned = if shape[0] == 1 {
            let copies = num(&row, "models") as usize;
            let path = tmp.path().join(&file);
            std::fs::write(&path, npy::to_bytes(&[copies, shape[1]], &values.repeat(copies)))
                .unwrap();
            path
        } else {
            arrays().join(&file)
        };
        let scores = compute(&request(&unlearned, &retrain)).unwrap();
        let q = &scores.unlearned;
        assert_eq!(q.f, num(&row, "forget_quality"), "{file}");
        let mut sorted = q.epsilons.clone();
        sorted.sort_by(f64::total_cmp);
        let quantile = harness::report::quality::quantile;
        assert_eq!(quantile(&sorted, 0.5), num(&row, "eps_median"), "{file}");
        assert_eq!(quantile(&sorted, 0.9), num(&row, "eps_p90"), "{file}");
        // Every example in the audit's epsilon bucket (0.5 wide).
        let mut counts = std::collections::BTreeMap::<u64, usize>::new();
        for e in &q.epsilons {
            *counts.entry(((e / 0.5).floor() * 0.5 * 1000.0) as u64).or_default() += 1;
        }
        let expected: std::collections::BTreeMap<u64, usize> = buckets
            [&(method.clone(), params.clone())]
            .iter()
            .map(|&(b, n)| ((b * 1000.0) as u64, n))
            .collect();
        assert_eq!(counts, expected, "{file}");
        assert!(q.interval.0 <= q.f && q.f <= q.interval.1, "{file}: {:?}", q.interval);
        scored += 1;
    }
    assert!(scored >= 10, "{scored} methods scored");
}

/// `arrays` written as a .npz (stored, uncompressed, as numpy's `savez` writes it).
fn npz(path: &Path, arrays: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        std::io::Write::write_all(&mut zip, bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// `models` x `examples` confidences, example e's mean `e % 5` plus `shift`, with noise.
fn confidences(models: usize, examples: usize, shift: f64, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..models * examples)
        .map(|k| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (k % examples % 5) as f64 + shift + (state >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn npz_arrays_logits_with_labels_and_accuracies_score_as_the_competition_does() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |s: &str| tmp.path().join(s);
    let (m, e) = (8, 40);
    let (u, r) = (confidences(m, e, 0.3, 1), confidences(m, e, 0.0, 2));
    std::fs::write(path("u.npy"), npy::to_bytes(&[m, e], &u)).unwrap();
    std::fs::write(path("r.npy"), npy::to_bytes(&[m, e], &r)).unwrap();
    let by_npy = compute(&request(&path("u.npy"), &path("r.npy"))).unwrap();
    // The same arrays in one .npz: by the options' names, or named.
    let (ub, rb) = (npy::to_bytes(&[m, e], &u), npy::to_bytes(&[m, e], &r));
    npz(&path("both.npz"), &[("unlearned", &ub), ("retrained", &rb), ("other", &rb)]);
    let by_npz = compute(&request(&path("both.npz"), &path("both.npz"))).unwrap();
    assert_eq!(by_npz.unlearned.epsilons, by_npy.unlearned.epsilons);
    assert_eq!(by_npz.unlearned.f, by_npy.unlearned.f);
    let mut named = request(&path("both.npz"), &path("both.npz"));
    named.retrained = Source::parse(&format!("{}:other", path("both.npz").display()), "retrained");
    assert_eq!(compute(&named).unwrap().unlearned.f, by_npy.unlearned.f);

    // Logits [models, examples, classes] with labels: the confidence of each example's
    // label, as the audit computes it (log p_y - log(1 - p_y)).
    let classes = 3;
    let labels: Vec<i64> = (0..e as i64).map(|i| i % 3).collect();
    let logits = |c: &[f64]| -> Vec<f32> {
        (0..m * e)
            .flat_map(|k| {
                let y = labels[k % e] as usize;
                (0..classes).map(move |j| if j == y { c[k] as f32 } else { (j as f32) * 0.1 })
            })
            .collect()
    };
    let (ul, rl) = (logits(&u), logits(&r));
    std::fs::write(path("ul.npy"), npy::to_bytes(&[m, e, classes], &ul)).unwrap();
    std::fs::write(path("rl.npy"), npy::to_bytes(&[m, e, classes], &rl)).unwrap();
    std::fs::write(path("labels.npy"), npy::to_bytes(&[e], &labels)).unwrap();
    let mut with_labels = request(&path("ul.npy"), &path("rl.npy"));
    with_labels.labels = Some(Source::parse(&path("labels.npy").display().to_string(), "labels"));
    with_labels.accuracies = Some(Accuracies::parse("0.9,1.0", "0.5,0.8").unwrap());
    let scored = compute(&with_labels).unwrap();
    let expected = |c: &[f64]| -> Vec<f64> {
        (0..m * e)
            .map(|k| {
                methods::eval::confidence(
                    &ul_row(c, k, &labels, e, classes),
                    labels[k % e] as usize,
                )
            })
            .collect()
    };
    let confidence_scores = compute(&{
        let (cu, cr) = (expected(&u), expected(&r));
        std::fs::write(path("cu.npy"), npy::to_bytes(&[m, e], &cu)).unwrap();
        std::fs::write(path("cr.npy"), npy::to_bytes(&[m, e], &cr)).unwrap();
        request(&path("cu.npy"), &path("cr.npy"))
    })
    .unwrap();
    assert_eq!(scored.unlearned.epsilons, confidence_scores.unlearned.epsilons);
    let f = scored.unlearned.f;
    assert_eq!(scored.final_score, Some(f * (0.9 / 1.0) * (0.5 / 0.8)));
}

/// Row `k`'s logits as `f32`, as the .npy above holds them.
fn ul_row(c: &[f64], k: usize, labels: &[i64], e: usize, classes: usize) -> Vec<f32> {
    let y = labels[k % e] as usize;
    (0..classes).map(|j| if j == y { c[k] as f32 } else { (j as f32) * 0.1 }).collect()
}

#[test]
fn the_command_writes_its_table_and_epsilons_and_bad_input_exits_2_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |s: &str| tmp.path().join(s);
    let text = |s: &str| path(s).display().to_string();
    let (m, e) = (8, 30);
    let write = |name: &str, shape: &[usize], values: &[f64]| {
        std::fs::write(path(name), npy::to_bytes(shape, values)).unwrap();
    };
    write("u.npy", &[m, e], &confidences(m, e, 0.2, 1));
    write("r.npy", &[m, e], &confidences(m, e, 0.0, 2));
    write("ref.npy", &[m, e], &confidences(m, e, 0.0, 3));
    let (code, stdout, stderr) = harness_code(&[
        "score",
        "--unlearned",
        &text("u.npy"),
        "--retrained",
        &text("r.npy"),
        "--reference",
        &text("ref.npy"),
        "--out",
        &text("out"),
        "--sizes",
        "2,4",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // F against N: each size over 4 draws, and the whole at its own size, for both.
    let curve = read_csv(&path("out/curve.csv"));
    let shown: Vec<(&str, &str, &str)> = curve
        .iter()
        .map(|r| (r["population"].as_str(), r["models"].as_str(), r["draws"].as_str()))
        .collect();
    assert_eq!(
        shown,
        [
            ("unlearned", "2", "4"),
            ("unlearned", "4", "4"),
            ("unlearned", "8", "1"),
            ("reference", "2", "4"),
            ("reference", "4", "4"),
            ("reference", "8", "1")
        ]
    );
    assert!(stdout.contains("at N =    4: F "), "{stdout}");
    assert!(stdout.contains("F / F_ref"), "{stdout}");
    let rows = read_csv(&path("out/score.csv"));
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["population"].as_str(), rows[1]["population"].as_str()),
        ("unlearned", "reference")
    );
    let (f, f_ref) = (num(&rows[0], "forget_quality"), num(&rows[1], "forget_quality"));
    assert_eq!(num(&curve[2], "forget_quality_mean"), f);
    assert_eq!(num(&curve[5], "forget_quality_mean"), f_ref);
    assert!((num(&rows[0], "relative_to_reference") - f / f_ref).abs() < 1e-12);
    assert!(num(&rows[0], "lo") <= f && f <= num(&rows[0], "hi"));
    let (shape, eps) =
        npy::from_bytes::<f64>(&std::fs::read(path("out/epsilons.npy")).unwrap()).unwrap();
    assert_eq!(shape, vec![e]);
    assert_eq!(results::forget_score::forget_score(&eps, m), f);
    assert!(path("out/reference_epsilons.npy").exists());

    // --versus: a second unlearned population, and the paired difference.
    write("v.npy", &[m, e], &confidences(m, e, 1.5, 9));
    let (code, stdout, stderr) = harness_code(&[
        "score",
        "--unlearned",
        &text("u.npy"),
        "--versus",
        &text("v.npy"),
        "--retrained",
        &text("r.npy"),
        "--out",
        &text("versus"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("F(unlearned) - F(versus)"), "{stdout}");
    let rows = read_csv(&path("versus/score.csv"));
    let d = &read_csv(&path("versus/difference.csv"))[0];
    let difference = num(d, "forget_quality_difference");
    assert_eq!(difference, num(&rows[0], "forget_quality") - num(&rows[1], "forget_quality"));
    assert!(num(d, "lo") <= difference && difference <= num(d, "hi"));
    let tied = num(d, "lo") <= 0.0 && 0.0 <= num(d, "hi");
    assert_eq!(d["tied"], tied.to_string());

    // Bad input: each exits 2, names the file (or flag) and the problem, writes nothing.
    write("nan.npy", &[m, e], &{
        let mut v = confidences(m, e, 0.0, 4);
        v[e + 3] = f64::NAN;
        v
    });
    write("inf.npy", &[m, e], &{
        let mut v = confidences(m, e, 0.0, 4);
        v[0] = f64::INFINITY;
        v
    });
    write("one_model.npy", &[1, e], &confidences(1, e, 0.0, 5));
    write("fewer.npy", &[m, e - 1], &confidences(m, e - 1, 0.0, 6));
    write("rank1.npy", &[e], &confidences(1, e, 0.0, 7));
    write("few.npy", &[4, e], &confidences(4, e, 0.0, 10));
    std::fs::write(path("ints.npy"), npy::to_bytes(&[m, e], &vec![1i32; m * e])).unwrap();
    std::fs::write(path("garbage.npy"), b"not numpy at all").unwrap();
    std::fs::write(path("short.npy"), &npy::to_bytes(&[m, e], &confidences(m, e, 0.0, 8))[..200])
        .unwrap();
    write("logits.npy", &[m, e, 3], &vec![0.5; m * e * 3]);
    std::fs::write(path("labels.npy"), npy::to_bytes(&[e], &vec![7i64; e])).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--unlearned", "nan.npy"], &["nan.npy", "model 1, example 3", "NaN"]),
        (&["--unlearned", "inf.npy"], &["inf.npy", "model 0, example 0", "inf"]),
        (&["--unlearned", "one_model.npy"], &["one_model.npy", "1 model", "at least 2"]),
        (&["--unlearned", "fewer.npy"], &["r.npy", "30 examples", "fewer.npy", "29"]),
        (&["--unlearned", "rank1.npy"], &["rank1.npy", "shape [30]", "[models, examples]"]),
        (&["--unlearned", "ints.npy"], &["ints.npy", "'<i4'", "float"]),
        (&["--unlearned", "garbage.npy"], &["garbage.npy", "not a .npy"]),
        (&["--unlearned", "short.npy"], &["short.npy", "bytes of data where shape [8, 30]"]),
        (&["--unlearned", "missing.npy"], &["cannot read", "missing.npy"]),
        (&["--unlearned", "u.npy.npz"], &["cannot read", "u.npy.npz"]),
        (&["--unlearned", "u.npy", "--reference", "logits.npy"], &["logits.npy", "--labels"]),
        (
            &["--unlearned", "logits.npy", "--labels", "labels.npy"],
            &["labels", "label 7", "3 classes"],
        ),
        (&["--unlearned", "u.npy", "--sizes", "4,8"], &["--sizes 8", "below", "8 models"]),
        (&["--unlearned", "u.npy", "--versus", "one_model.npy"], &["one_model.npy", "1 model"]),
        (&["--unlearned", "ref.npy", "--versus", "few.npy"], &["few.npy", "4 models", "same size"]),
        (
            &["--unlearned", "u.npy", "--remain-accuracy", "0.9", "--test-accuracy", "1,1"],
            &["--remain-accuracy", "two numbers"],
        ),
        (
            &["--unlearned", "u.npy", "--remain-accuracy", "0.9,0", "--test-accuracy", "1,1"],
            &["--remain-accuracy", "above 0"],
        ),
    ];
    for (args, words) in cases {
        let out = path("bad_out");
        let mut all: Vec<String> =
            args.iter()
                .map(|a| {
                    if a.ends_with(".npy") || a.ends_with(".npz") { text(a) } else { a.to_string() }
                })
                .collect();
        if !all.iter().any(|a| a == "--retrained") {
            all.extend(["--retrained".into(), text("r.npy")]);
        }
        all.extend(["--out".into(), out.display().to_string()]);
        let mut line = vec!["score"];
        line.extend(all.iter().map(String::as_str));
        let (code, _, stderr) = harness_code(&line);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        for w in *words {
            assert!(stderr.contains(w), "{args:?}: '{w}' not in: {stderr}");
        }
        assert!(!out.join("score.csv").exists(), "{args:?} wrote a table");
        assert!(!out.join("epsilons.npy").exists(), "{args:?} wrote epsilons");
        assert!(!out.join("curve.csv").exists(), "{args:?} wrote a curve");
    }
    // A .npz without the array asked for lists those it has.
    npz(&path("some.npz"), &[("retrained", &npy::to_bytes(&[m, e], &confidences(m, e, 0.0, 2)))]);
    let (code, _, stderr) =
        harness_code(&["score", "--unlearned", &text("some.npz"), "--retrained", &text("r.npy")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no array 'unlearned'") && stderr.contains("retrained"), "{stderr}");
}

/// The competition's size: 512 unlearned, 512 retrained and 512 reference models x 10,000
/// examples, each example's confidences drawn around the committed audit's (finetune's and
/// retrain's means and spreads, the examples taken round). Run with `cargo test --release -p
/// harness --test score competitions_size -- --ignored --nocapture`; prints the command's
/// time and peak memory.
#[test]
#[ignore = "a measurement, about a minute with writing the arrays"]
fn scoring_at_the_competitions_size() {
    let (models, examples) = (512, 10_000);
    let read =
        |name: &str| npy::from_bytes::<f32>(&std::fs::read(arrays().join(name)).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut normal = move || {
        let mut u = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    };
    let mut population = |name: &str, out: &str| {
        let (shape, v) = read(name);
        let (n, e) = (shape[0], shape[1]);
        let stats: Vec<(f64, f64)> = (0..e)
            .map(|j| {
                let column: Vec<f64> = (0..n).map(|m| f64::from(v[m * e + j])).collect();
                let mean = column.iter().sum::<f64>() / n as f64;
                let var = column.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
                (mean, var.sqrt())
            })
            .collect();
        let values: Vec<f32> = (0..models * examples)
            .map(|k| {
                let (mean, sd) = stats[k % examples % e];
                (mean + sd * normal()) as f32
            })
            .collect();
        let path = tmp.path().join(out);
        std::fs::write(&path, npy::to_bytes(&[models, examples], &values)).unwrap();
        path.display().to_string()
    };
    let u = population("finetune_epochs5_seed0.npy", "u.npy");
    let r = population("retrain_epochs20_seed0.npy", "r.npy");
    let reference = population("retrain_epochs20_seed0.npy", "ref.npy");
    for with_reference in [false, true] {
        let mut line = vec![env!("CARGO_BIN_EXE_harness"), "score", "--unlearned", &u];
        line.extend(["--retrained", &r]);
        if with_reference {
            line.extend(["--reference", &reference]);
        }
        let t0 = std::time::Instant::now();
        let out = std::process::Command::new("/usr/bin/time")
            .arg("-v")
            .args(&line)
            .output()
            .expect("GNU time at /usr/bin/time");
        let seconds = t0.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let peak = stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
            .map_or(0.0, |k| k.parse::<f64>().unwrap() / 1024.0);
        eprintln!(
            "{models} + {models}{} models x {examples} examples: {seconds:.1} s, peak {peak:.0} MiB\n{}",
            if with_reference { " + 512 reference" } else { "" },
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(seconds < 15.0, "{seconds} s");
        assert!(peak < 2048.0, "{peak} MiB");
    }
}
