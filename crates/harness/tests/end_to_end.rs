//! End to end on a small slice of real MNIST (needs `scripts/setup`): the binary's behaviour,
//! the cache, and reproducibility across parallelism.

mod common;

use std::path::Path;

use common::*;

#[test]
fn slice_trains_caches_and_reproduces_across_jobs() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let exp = exp.to_str().unwrap();

    let (ok, stdout, stderr) =
        harness(&[exp, "--jobs", "1", "--cache", &p("cache1"), "--out", &p("out1")]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(10 trained)"), "{stderr}");
    assert!(stdout.starts_with("method") && stdout.contains("mi_unlearn"), "{stdout}");

    let runs = read_csv(&tmp.path().join("out1/runs.csv"));
    assert_eq!(runs.len(), 2 * 5);
    for r in &runs {
        let method = r["method"].as_str();
        assert!(num(r, "remain_acc") > 85.0 && num(r, "test_acc") > 80.0, "{r:?}");
        if method == "original" {
            assert!(num(r, "forget_acc") > 80.0, "the original knows the forget set: {r:?}");
        }
        if method == "mi_unlearn" {
            assert!(num(r, "mi") > 0.0, "MI recorded: {r:?}");
        }
        if method == "retrain" {
            assert_eq!((&r["forget_gap"][..], &r["rte_speedup"][..]), ("", "1.00"));
        } else {
            let retrain =
                runs.iter().find(|o| o["method"] == "retrain" && o["seed"] == r["seed"]).unwrap();
            let gap = num(r, "forget_acc") - num(retrain, "forget_acc");
            assert_eq!(num(r, "forget_gap"), gap, "{r:?}");
            assert_eq!(num(r, "mia_gap"), num(r, "mia") - num(retrain, "mia"), "{r:?}");
            let abs: f64 = ["remain_gap", "forget_gap", "test_gap", "mia_gap"]
                .iter()
                .map(|c| num(r, c).abs())
                .sum();
            assert!((num(r, "avg_gap") - abs / 4.0).abs() < 1e-9, "{r:?}");
            assert!(num(r, "rte_speedup") > 0.0, "{r:?}");
        }
        assert_eq!(num(r, "ua"), 100.0 - num(r, "forget_acc"), "{r:?}");
        // The attack tells members from test samples better than chance, not perfectly.
        assert!((52.0..70.0).contains(&num(r, "mia_attack_acc")), "{r:?}");
        assert_eq!(r["checkpoint"].len(), 64, "checkpoint key");
    }
    // The retrained model never saw the forget set: the attack calls far more of it
    // non-members than it does for the original, which trained on it.
    for seed in ["0", "1"] {
        let mia = |m: &str| {
            num(runs.iter().find(|r| r["method"] == m && r["seed"] == seed).unwrap(), "mia")
        };
        assert!(mia("retrain") > mia("original") + 20.0, "seed {seed}");
    }
    // history.csv: every unlearning run (not the original) x its epochs, epochs 1..E, and the
    // last epoch's evaluation equals the run's final numbers.
    let history = read_csv(&tmp.path().join("out1/history.csv"));
    let unlearning: Vec<_> = runs.iter().filter(|r| r["method"] != "original").collect();
    let expected_rows: usize = unlearning.iter().map(|r| num(r, "epochs") as usize).sum();
    assert_eq!(history.len(), expected_rows);
    for run in &unlearning {
        let rows: Vec<_> =
            history.iter().filter(|h| h["checkpoint"] == run["checkpoint"]).collect();
        let epochs: Vec<usize> = rows.iter().map(|h| num(h, "epoch") as usize).collect();
        assert_eq!(epochs, (1..=num(run, "epochs") as usize).collect::<Vec<_>>(), "{run:?}");
        let last = rows.last().unwrap();
        for column in ["remain_acc", "forget_acc", "test_acc", "ce", "mi"] {
            assert_eq!(last[column], run[column], "{column} of {run:?}");
        }
    }
    for ext in ["svg", "png"] {
        for stem in ["mi_acc_gamma0_epochs2", "mi_acc_gamma4_epochs2"] {
            let path = tmp.path().join(format!("out1/{stem}.{ext}"));
            assert!(
                std::fs::metadata(&path).map(|m| m.len() > 1000).unwrap_or(false),
                "{}",
                path.display()
            );
        }
    }

    let summary = read_csv(&tmp.path().join("out1/summary.csv"));
    assert_eq!(summary.len(), 5);
    assert!(summary.iter().all(|s| s["n_seeds"] == "2"));
    let mi4 = summary.iter().find(|s| s["method"] == "mi_unlearn" && s["gamma"] == "4").unwrap();
    let gaps: Vec<f64> = runs
        .iter()
        .filter(|r| r["method"] == "mi_unlearn" && r["gamma"] == "4")
        .map(|r| num(r, "forget_gap"))
        .collect();
    assert!((num(mi4, "forget_gap_mean") - (gaps[0] + gaps[1]) / 2.0).abs() < 1e-9);
    assert!((num(mi4, "forget_gap_std") - (gaps[0] - gaps[1]).abs() / 2f64.sqrt()).abs() < 1e-9);
    assert!((num(mi4, "forget_abs_gap_mean") - (gaps[0].abs() + gaps[1].abs()) / 2.0).abs() < 1e-9);
    assert!(tmp.path().join("out1/config.toml").exists());
    // The folder explains itself: the command that regenerates it, the summary, the figures.
    let readme = std::fs::read_to_string(tmp.path().join("out1/README.md")).unwrap();
    for line in [
        &format!("cargo run --release -p harness -- {exp}\n"),
        "| method | parameters | runs | remain % | forget % | test % | forget gap | MIA % | avg gap | MI |",
        "| mi_unlearn | gamma=4 epochs=2 | 2 |",
    ] {
        assert!(readme.contains(line), "{line} in\n{readme}");
    }
    let gap = format!("{:.2} ± {:.2}", num(mi4, "forget_gap_mean"), num(mi4, "forget_gap_std"));
    assert!(readme.contains(&gap), "{gap} in\n{readme}");
    let pngs = std::fs::read_dir(tmp.path().join("out1"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|f| f.ends_with(".png"))
        .collect::<Vec<_>>();
    assert!(!pngs.is_empty());
    for png in &pngs {
        assert!(readme.contains(&format!("![{png}]({png})")), "{png} embedded");
    }

    // A second run trains nothing and writes the same numbers.
    let (ok, stdout2, stderr) = harness(&[exp, "--cache", &p("cache1"), "--out", &p("out1b")]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(everything from the cache)"), "{stderr}");
    assert_eq!(stdout2, stdout);
    assert_eq!(
        std::fs::read(tmp.path().join("out1/runs.csv")).unwrap(),
        std::fs::read(tmp.path().join("out1b/runs.csv")).unwrap()
    );

    // Figures come back from the CSV files alone.
    for ext in ["svg", "png"] {
        std::fs::remove_file(tmp.path().join(format!("out1/mi_acc_gamma4_epochs2.{ext}"))).unwrap();
    }
    let (ok, stdout, stderr) = harness(&["plot", &p("out1")]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert!(tmp.path().join("out1/mi_acc_gamma4_epochs2.png").exists());

    // `regenerate` runs every experiment of a folder into <results>/<name>, from the cache.
    let (ok, _, stderr) = harness(&[
        "regenerate",
        &p("experiments"),
        "--results",
        &p("results"),
        "--cache",
        &p("cache1"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(everything from the cache)"), "{stderr}");
    assert_eq!(
        numbers(&tmp.path().join("out1/runs.csv")),
        numbers(&tmp.path().join("results/slice/runs.csv"))
    );

    // Two jobs at a time on a fresh cache: the same numbers.
    let (ok, _, stderr) =
        harness(&[exp, "--jobs", "2", "--cache", &p("cache2"), "--out", &p("out2")]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(10 trained)"), "{stderr}");
    assert_eq!(
        numbers(&tmp.path().join("out1/runs.csv")),
        numbers(&tmp.path().join("out2/runs.csv"))
    );
}

/// The default (native) engine and the libtorch reference (autograd) train the same runs to
/// the same accuracies, up to float rounding carried through training.
#[test]
fn native_engine_matches_the_autograd_reference_on_real_mnist() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let native = experiment(tmp.path());
    let autograd = tmp.path().join("experiments/slice_autograd.toml");
    let text = std::fs::read_to_string(&native).unwrap();
    std::fs::write(&autograd, format!("engine = \"autograd\"\n{text}")).unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    for (exp, out) in [(&native, "native"), (&autograd, "autograd")] {
        let (ok, _, stderr) =
            harness(&[exp.to_str().unwrap(), "--cache", &p("cache"), "--out", &p(out)]);
        assert!(ok, "{stderr}");
        assert!(stderr.contains("(10 trained)"), "{out}: {stderr}");
    }
    let (a, b) = (
        read_csv(&tmp.path().join("native/runs.csv")),
        read_csv(&tmp.path().join("autograd/runs.csv")),
    );
    assert_eq!(a.len(), 10);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (&x["method"], &x["gamma"], &x["seed"]),
            (&y["method"], &y["gamma"], &y["seed"])
        );
        assert_ne!(x["checkpoint"], y["checkpoint"], "the engine is in the key");
        for (column, tolerance) in [("remain_acc", 0.5), ("test_acc", 0.5), ("forget_acc", 2.0)] {
            let d = (num(x, column) - num(y, column)).abs();
            assert!(d <= tolerance, "{column}: {x:?} vs {y:?}");
        }
        if x["method"] == "mi_unlearn" {
            assert!((num(x, "mi") - num(y, "mi")).abs() < 2e-3, "{x:?} vs {y:?}");
        }
    }
}

#[test]
fn bad_input_fails_with_a_clear_message_and_writes_nothing() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let text = std::fs::read_to_string(&exp)
        .unwrap()
        .replace("gamma = [0, 4]", "gamma = [0, 4]\nbeta = 1");
    std::fs::write(&exp, text).unwrap();
    let out = tmp.path().join("out");
    let (ok, _, stderr) = harness(&[exp.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("slice.toml")
            && stderr.contains("`methods.mi_unlearn.beta` is not a parameter of mi_unlearn")
            && stderr.contains("line 18"),
        "{stderr}"
    );
    assert!(!out.exists());

    let (ok, _, stderr) = harness(&["/nonexistent/x.toml"]);
    assert!(!ok && stderr.contains("/nonexistent/x.toml: cannot read"), "{stderr}");

    // Missing data: the message says how to get it.
    let missing = tmp.path().join("missing.toml");
    std::fs::write(&missing, "seeds = [0]\n[data]\ndir = \"/nonexistent\"\n[forget]\nclass = 3\nfraction = 0.5\n[methods.original]\nepochs = 1\n").unwrap();
    let (ok, _, stderr) = harness(&[
        missing.to_str().unwrap(),
        "--cache",
        tmp.path().join("c").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("run scripts/setup"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn check_passes_fails_and_rejects_unusable_baselines() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let plain = std::fs::read_to_string(&exp).unwrap();
    let checked = format!(
        "{plain}\n[check]\nmetrics = [\"forget_gap\", \"test_gap\", \"forget_acc\"]\ntolerance = 0.5\n"
    );
    std::fs::write(&exp, &checked).unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let baseline = p("baseline.csv");
    let (cache, out) = (p("cache"), p("out"));
    let check = |extra: &[&str]| {
        let exp = exp.to_str().unwrap();
        let mut args =
            vec!["check", exp, "--baseline", &baseline, "--cache", &cache, "--out", &out];
        args.extend_from_slice(extra);
        harness_code(&args)
    };

    let (code, _, stderr) = check(&[]);
    assert_eq!(code, 2, "no baseline yet: {stderr}");
    assert!(
        stderr.contains("cannot read the baseline") && stderr.contains("--update-baseline"),
        "{stderr}"
    );

    let (code, _, stderr) = check(&["--update-baseline"]);
    assert_eq!(code, 0, "{stderr}");
    // 4 unlearning methods x forget_gap and test_gap, 5 methods x forget_acc.
    let rows = read_csv(Path::new(&baseline));
    assert_eq!(rows.len(), 4 + 4 + 5);

    let (code, stdout, stderr) = check(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout.matches("PASS").count(), 13, "{stdout}");
    assert!(
        stderr.contains("(everything from the cache)") && stderr.contains("check passed"),
        "{stderr}"
    );

    // One metric shifted beyond its tolerance fails, and the table names it.
    let text = std::fs::read_to_string(&baseline).unwrap();
    let target =
        text.lines().find(|l| l.starts_with("forget_gap,mi_unlearn,4,")).unwrap().to_owned();
    let mut cells: Vec<String> = target.split(',').map(String::from).collect();
    // metric,method,gamma,epochs,params,n_seeds,mean,std
    cells[6] = (cells[6].parse::<f64>().unwrap() + 0.8).to_string();
    std::fs::write(&baseline, text.replace(&target, &cells.join(","))).unwrap();
    let (code, stdout, stderr) = check(&[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.ends_with("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    assert!(
        failed[0].starts_with("forget_gap") && failed[0].contains("gamma=4 epochs=2"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 13 metrics moved beyond tolerance"), "{stderr}");

    // Unusable input exits 2 and says what is wrong.
    std::fs::write(&baseline, text.replace(&target, "")).unwrap();
    let (code, _, stderr) = check(&[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no baseline row for forget_gap of mi_unlearn gamma=4 epochs=2"),
        "{stderr}"
    );
    std::fs::write(
        &baseline,
        format!("{text}forget_gap,mi_unlearn,8,2,gamma=8 epochs=2,2,-3.0,,,\n"),
    )
    .unwrap();
    let (code, _, stderr) = check(&[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("the baseline has forget_gap of mi_unlearn gamma=8 epochs=2"),
        "{stderr}"
    );
    std::fs::write(&baseline, "metric;method\n").unwrap();
    let (code, _, stderr) = check(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("malformed baseline"), "{stderr}");
    std::fs::write(&exp, &plain).unwrap();
    let (code, _, stderr) = check(&[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no [check] section"), "{stderr}");
}

/// A suite: two datasets x two scenarios, the baselines beside the notebook's methods.
#[test]
fn a_suite_runs_every_cell_and_ranks_the_methods() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("suite.toml");
    std::fs::write(
        &exp,
        r#"
seeds = [0]
[data]
dataset = ["mnist", "fashion-mnist"]
train_limit = 2000
test_limit = 500
[[forget]]
class = 3
fraction = 1.0
[[forget]]
fraction = 0.1
[methods.original]
epochs = 2
[methods.retrain]
epochs = 2
[methods.random_label]
[methods.l1_sparse]
epochs = 1
"#,
    )
    .unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let args = [exp.to_str().unwrap(), "--cache", &p("cache"), "--out", &p("out")];
    let (ok, stdout, stderr) = harness_in_workspace(&args);
    assert!(ok, "{stderr}");
    let cells = [
        "mnist-class3-all",
        "mnist-random-0.1",
        "fashion-mnist-class3-all",
        "fashion-mnist-random-0.1",
    ];
    for cell in cells {
        let runs = read_csv(&tmp.path().join(format!("out/{cell}/runs.csv")));
        assert_eq!(runs.len(), 4, "{cell}");
        let retrain = runs.iter().find(|r| r["method"] == "retrain").unwrap();
        if cell.contains("class3-all") {
            // A whole class forgotten: retrain never predicts it.
            assert_eq!(num(retrain, "forget_acc"), 0.0, "{cell}");
        } else {
            assert!(num(retrain, "forget_acc") > 60.0, "{cell}: {retrain:?}");
        }
    }
    // Originals do not depend on the scenario: 2 per dataset, not 4.
    assert!(stderr.contains("(4 trained)") && stderr.contains("(3 trained)"), "{stderr}");
    let board = read_csv(&tmp.path().join("out/leaderboard.csv"));
    let methods: Vec<&str> = board.iter().map(|r| r["method"].as_str()).collect();
    assert_eq!(methods[0], "retrain");
    assert_eq!(methods.len(), 4);
    assert!(board[1..].iter().all(|r| r["cells"] == "4" && !r["rank"].is_empty()), "{board:?}");
    let gaps: Vec<f64> = board[1..].iter().map(|r| num(r, "avg_gap")).collect();
    assert!(gaps.is_sorted(), "{gaps:?}");
    assert!(stdout.contains("rank  method"), "{stdout}");
    for ext in ["svg", "png"] {
        assert!(tmp.path().join(format!("out/leaderboard.{ext}")).exists());
    }
    let readme = std::fs::read_to_string(tmp.path().join("out/README.md")).unwrap();
    assert!(readme.contains("rank  method") && readme.contains("![leaderboard.png]"), "{readme}");
    for cell in cells {
        assert!(readme.contains(&format!("- [{cell}]({cell}/)")), "{readme}");
        assert!(tmp.path().join(format!("out/{cell}/README.md")).exists());
    }
    // From the cache, the same leaderboard; `plot` redraws its figure from the CSV alone.
    let before = std::fs::read(tmp.path().join("out/leaderboard.csv")).unwrap();
    let (ok, _, stderr) = harness_in_workspace(&args);
    assert!(ok, "{stderr}");
    assert_eq!(before, std::fs::read(tmp.path().join("out/leaderboard.csv")).unwrap());
    std::fs::remove_file(tmp.path().join("out/leaderboard.png")).unwrap();
    let (ok, _, stderr) = harness(&["plot", &p("out")]);
    assert!(ok && tmp.path().join("out/leaderboard.png").exists(), "{stderr}");
}

/// `model = "cnn"`: LeNet-5 trains with autograd (the native engine is the MLP's), learns,
/// and its keys say so.
#[test]
fn the_cnn_trains_on_autograd_and_learns() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = slice(
        tmp.path(),
        "cnn",
        "model = \"cnn\"\n",
        "[methods.original]\nepochs = 2\n[methods.retrain]\nepochs = 2\n\
         [methods.mi_unlearn]\ngamma = 4\nepochs = 1\n[methods.salun]\n",
    );
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let (ok, _, stderr) =
        harness(&[exp.to_str().unwrap(), "--cache", &p("cache"), "--out", &p("out")]);
    assert!(ok, "{stderr}");
    let runs = read_csv(&tmp.path().join("out/runs.csv"));
    assert_eq!(runs.len(), 4);
    for r in &runs {
        // Unlearning class 3 costs up to its tenth of the test set.
        let floor = if r["method"] == "original" { 80.0 } else { 65.0 };
        assert!(num(r, "test_acc") > floor, "LeNet-5 learns MNIST: {r:?}");
    }
    let config = std::fs::read_to_string(tmp.path().join("out/config.toml")).unwrap();
    assert!(config.contains("arch = \"cnn\"") && config.contains("    120,\n    84,"), "{config}");
    let key = &runs[0]["checkpoint"];
    let record =
        std::fs::read_to_string(tmp.path().join(format!("cache/v2/models/{key}/record.json")))
            .unwrap();
    assert!(record.contains("model cnn lenet5") && !record.contains("engine native"), "{record}");
}

/// Devices on a machine without a GPU: `auto` is the CPU, and asking for CUDA or MPS is a
/// clear error (exit 2) that says what the machine has, whether asked in the file or by flag.
#[test]
fn devices_resolve_to_the_cpu_here_and_missing_ones_are_errors() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let exp = exp.to_str().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    for device in ["cuda", "cuda:0", "mps"] {
        let (code, _, stderr) =
            harness_code(&[exp, "--device", device, "--cache", &p("c"), "--out", &p("o")]);
        assert_eq!(code, 2, "{device}: {stderr}");
        assert!(stderr.contains(&format!("--device = \"{device}\" asks for")), "{stderr}");
        assert!(stderr.contains("(it has: cpu)"), "{stderr}");
        assert!(!tmp.path().join("o").exists() && !tmp.path().join("c").exists());
    }
    let text = std::fs::read_to_string(exp).unwrap();
    let in_file = tmp.path().join("experiments/gpu.toml");
    std::fs::write(&in_file, format!("device = \"cuda\"\n{text}")).unwrap();
    let (code, _, stderr) = harness_code(&[in_file.to_str().unwrap(), "--cache", &p("c")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("gpu.toml: `device` = \"cuda\" asks for a CUDA device"), "{stderr}");

    let (ok, _, stderr) = harness(&[exp, "--device", "auto", "--cache", &p("c"), "--out", &p("o")]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("device: cpu (asked for: auto)"), "{stderr}");
    let runs = read_csv(&tmp.path().join("o/runs.csv"));
    assert!(runs.iter().all(|r| r["device"] == "cpu"), "{runs:?}");
    // The same runs asked for explicitly on the CPU come from the cache: the key holds the
    // kind, and auto chose the CPU.
    let (ok, _, stderr) = harness(&[exp, "--device", "cpu", "--cache", &p("c"), "--out", &p("o2")]);
    assert!(ok && stderr.contains("(everything from the cache)"), "{stderr}");
}

/// Input a hostile or careless user might give: each exits 2 naming the key, value or path at
/// fault, says each cause once, loads no data and creates nothing.
#[test]
fn hostile_input_fails_before_loading_anything() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let base = std::fs::read_to_string(&exp).unwrap();
    let (out, cache) = (tmp.path().join("out"), tmp.path().join("cache"));
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let edited = |name: &str, from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        let path = tmp.path().join(name);
        std::fs::write(&path, base.replace(from, to)).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let exp = exp.to_str().unwrap().to_owned();
    let checked = edited(
        "checked.toml",
        "[forget]",
        "[check]\nmetrics = [\"forget_gap\"]\ntolerance = 0.5\n[forget]",
    );
    let (out_s, cache_s, file_s) =
        (out.to_str().unwrap(), cache.to_str().unwrap(), file.to_str().unwrap());
    let retrain = "[methods.retrain]\nepochs = 2";
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![edited("huge.toml", retrain, "[methods.retrain]\nepochs = 100000000000")],
            "`methods.retrain.epochs` is 100000000000; it must be at most 1000000",
        ),
        (
            vec![edited("negative.toml", retrain, "[methods.retrain]\nepochs = -3")],
            "`methods.retrain.epochs` is -3; it must be a whole number >= 1 (line 13)",
        ),
        (
            vec![edited("wide.toml", "[forget]", "[model]\nhidden = [100000000]\n[forget]")],
            "`model.hidden` is [100000000]",
        ),
        (
            vec![edited("seeds.toml", "seeds = [0, 1]", "seeds = [0.5]")],
            "seeds = [0.5]\n  |          ^^^\ninvalid type: floating point `0.5`",
        ),
        (
            vec![edited(
                "replicates.toml",
                "epochs = 2\n[methods.finetune]",
                "epochs = 2\n[audit]\nreplicates = 0\n[methods.finetune]",
            )],
            "replicates.toml: `audit.replicates` is 0; it must be 1 to 100000 (line 15)",
        ),
        (
            vec![edited(
                "shadows.toml",
                "epochs = 2\n[methods.finetune]",
                "epochs = 2\n[audit]\nshadows = 1\n[methods.finetune]",
            )],
            "shadows.toml: `audit.shadows` is 1; U-LiRA scores each shadow against the others",
        ),
        (
            vec![edited(
                "few.toml",
                "epochs = 2\n[methods.finetune]",
                "epochs = 2\n[audit]\nshadows = 6\n[methods.finetune]",
            )],
            "few.toml: `audit.shadows` is 6: with a forget fraction of 0.75 a forget example is unlearned by 1.9 other shadows on average",
        ),
        (
            vec![edited(
                "no_retrain.toml",
                "[methods.retrain]\nepochs = 2\n",
                "[audit]\nreplicates = 4\n",
            )],
            "no_retrain.toml: `audit` needs a [methods.retrain] section",
        ),
        (
            vec![edited("nan.toml", "gamma = [0, 4]", "gamma = [0, nan]")],
            "`methods.mi_unlearn.gamma` is NaN; it must be a finite number",
        ),
        (
            vec![edited(
                "batch.toml",
                retrain,
                "[methods.retrain]\nepochs = 2\nbatch_size = 2000000",
            )],
            "methods.retrain.batch_size",
        ),
        (vec![exp.clone(), "--cache".into(), file_s.into()], "cannot create the cache folder"),
        (vec![exp.clone(), "--out".into(), file_s.into()], "cannot create the results folder"),
        (vec![exp.clone(), "--jobs".into(), "100000".into()], "--jobs is 100000"),
        (vec![exp.clone(), "--threads".into(), "0".into()], "--threads is 0"),
        (vec![tmp.path().to_str().unwrap().into()], "cannot read"),
        (
            vec![
                "check".into(),
                checked.clone(),
                "--baseline".into(),
                tmp.path().join("none.csv").to_str().unwrap().into(),
            ],
            "none.csv: cannot read the baseline",
        ),
        (
            vec![
                "check".into(),
                checked.clone(),
                "--baseline".into(),
                tmp.path().to_str().unwrap().into(),
            ],
            "cannot read the baseline",
        ),
    ];
    for (mut args, expected) in cases {
        if !args.contains(&"--cache".to_owned()) {
            args.extend(["--cache".into(), cache_s.into()]);
        }
        if !args.contains(&"--out".to_owned()) {
            args.extend(["--out".into(), out_s.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = harness_code(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: lacks {expected:?}:\n{stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("memory allocation"), "{stderr}");
        assert!(!stderr.contains("loaded "), "{args:?}: loaded data before failing: {stderr}");
        if let Some(cause) = stderr.find("(os error") {
            let text = &stderr[cause..];
            let rest = &text[1..];
            assert!(!rest.contains("(os error"), "{args:?}: a cause said twice: {stderr}");
        }
        assert!(!out.exists() && !cache.exists(), "{args:?} created something");
    }
    let (code, _, stderr) = harness_code(&["regenerate", "/nonexistent-experiments"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("/nonexistent-experiments: no such folder"), "{stderr}");
}

/// `eval_every` is not in the cache key: a run's history must still be what its own
/// experiment asks for, whichever experiment trained the model first, and plots must draw it.
#[test]
fn history_is_what_each_experiment_asks_for_whatever_trained_it_first() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, every: usize| {
        let text = format!(
            "seeds = [0]\n[data]\ndir = \"{}\"\ntrain_limit = 3000\ntest_limit = 500\n\
             [forget]\nclass = 3\nfraction = 0.75\n[methods.original]\nepochs = 2\n\
             [methods.mi_unlearn]\ngamma = [2]\nepochs = 3\neval_every = {every}\n",
            mnist_dir().display()
        );
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    let (sparse, dense) = (write("sparse", 3), write("dense", 1));
    let cache = tmp.path().join("cache");
    let run = |exp: &Path, out: &str| {
        let out = tmp.path().join(out);
        let (ok, _, stderr) = harness(&[
            exp.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(ok, "{stderr}");
        let epochs: Vec<String> =
            read_csv(&out.join("history.csv")).iter().map(|r| r["epoch"].clone()).collect();
        (out, epochs, stderr)
    };
    // The sparse experiment trains first: one evaluation, after the last epoch; its figure
    // draws that one point.
    let (out, epochs, _) = run(&sparse, "sparse1");
    assert_eq!(epochs, ["3"]);
    assert!(out.join("mi_acc_gamma2_epochs3.png").exists());
    // The dense one asks for every epoch: it retrains the model to record them (same model).
    let (out, epochs, stderr) = run(&dense, "dense");
    assert_eq!(epochs, ["1", "2", "3"], "{stderr}");
    assert!(stderr.contains("retraining it to record them"), "{stderr}");
    assert!(!stderr.contains("came out different"), "{stderr}");
    assert!(out.join("mi_acc_gamma2_epochs3.png").exists());
    // Now the cache holds every epoch: the sparse experiment still gets only what it asks
    // for, the same file as before, and nothing is trained.
    let (out, epochs, stderr) = run(&sparse, "sparse2");
    assert_eq!(epochs, ["3"]);
    assert!(stderr.contains("everything from the cache"), "{stderr}");
    for f in ["history.csv", "runs.csv"] {
        assert_eq!(
            numbers(&out.join(f)),
            numbers(&tmp.path().join("sparse1").join(f)),
            "{f} does not depend on which experiment trained first"
        );
    }
    // Figures are written atomically: no temporary file is left beside them.
    for dir in ["sparse1", "dense", "sparse2"] {
        let stray: Vec<_> = std::fs::read_dir(tmp.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.') || n.contains("tmp"))
            .collect();
        assert!(stray.is_empty(), "{dir}: {stray:?}");
    }
}
