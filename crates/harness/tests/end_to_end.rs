//! End to end on a small slice of real MNIST (needs `scripts/setup`): the binary's behaviour,
//! the cache, and reproducibility across parallelism.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mnist_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/MNIST/raw");
    assert!(
        dir.join("train-images-idx3-ubyte").exists(),
        "MNIST missing in {}: run scripts/setup",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

fn experiment(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
seeds = [0, 1]
[data]
dir = "{}"
train_limit = 4000
test_limit = 1000
[forget]
class = 3
fraction = 0.75
[methods.original]
epochs = 2
[methods.retrain]
epochs = 2
[methods.finetune]
epochs = 1
[methods.mi_unlearn]
gamma = [0, 4]
epochs = 2
"#,
        mnist_dir().display()
    );
    std::fs::create_dir_all(dir.join("experiments")).unwrap();
    let path = dir.join("experiments/slice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the harness binary; returns (success, stdout, stderr).
fn harness(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn read_csv(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

/// runs.csv without the `seconds` column (wall time is the one thing allowed to differ).
fn numbers(path: &Path) -> Vec<Vec<String>> {
    let header = csv::Reader::from_path(path)
        .unwrap()
        .headers()
        .unwrap()
        .clone();
    let seconds = header.iter().position(|h| h == "seconds").unwrap();
    read_csv(path)
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .filter(|(i, _)| *i != seconds)
                .map(|(_, v)| v.to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn slice_trains_caches_and_reproduces_across_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let exp = exp.to_str().unwrap();

    let (ok, stdout, stderr) = harness(&[
        exp,
        "--jobs",
        "1",
        "--cache",
        &p("cache1"),
        "--out",
        &p("out1"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(10 trained)"), "{stderr}");
    assert!(
        stdout.starts_with("method") && stdout.contains("mi_unlearn"),
        "{stdout}"
    );

    let runs = read_csv(&tmp.path().join("out1/runs.csv"));
    assert_eq!(runs.len(), 2 * 5);
    for r in &runs {
        let acc = |i: usize| r[i].parse::<f64>().unwrap();
        let (method, remain, forget, test) = (&r[0], acc(4), acc(5), acc(6));
        assert!(remain > 85.0 && test > 80.0, "{r:?}");
        if method == "original" {
            assert!(forget > 80.0, "the original knows the forget set: {r:?}");
        }
        if method == "mi_unlearn" {
            assert!(r[8].parse::<f64>().unwrap() > 0.0, "MI recorded: {r:?}");
        }
        assert_eq!(r[10].len(), 64, "checkpoint key");
    }
    // history.csv: every unlearning run (not the original) x its epochs, epochs 1..E, and the
    // last epoch's evaluation equals the run's final numbers.
    let history = read_csv(&tmp.path().join("out1/history.csv"));
    let unlearning: Vec<_> = runs.iter().filter(|r| &r[0] != "original").collect();
    let expected_rows: usize = unlearning
        .iter()
        .map(|r| r[2].parse::<usize>().unwrap())
        .sum();
    assert_eq!(history.len(), expected_rows);
    for run in &unlearning {
        let rows: Vec<_> = history.iter().filter(|h| h[11] == run[10]).collect();
        let epochs: Vec<usize> = rows.iter().map(|h| h[4].parse().unwrap()).collect();
        assert_eq!(
            epochs,
            (1..=run[2].parse().unwrap()).collect::<Vec<_>>(),
            "{run:?}"
        );
        let last = rows.last().unwrap();
        assert_eq!(
            (&last[5], &last[6], &last[7]),
            (&run[4], &run[5], &run[6]),
            "{run:?}"
        );
        assert_eq!(&last[9], &run[7], "final CE");
        assert_eq!(&last[10], &run[8], "final MI");
    }
    for ext in ["svg", "png"] {
        for stem in ["mi_acc_gamma0_epochs2", "mi_acc_gamma4_epochs2"] {
            let path = tmp.path().join(format!("out1/{stem}.{ext}"));
            assert!(
                std::fs::metadata(&path)
                    .map(|m| m.len() > 1000)
                    .unwrap_or(false),
                "{}",
                path.display()
            );
        }
    }

    let summary = read_csv(&tmp.path().join("out1/summary.csv"));
    assert_eq!(summary.len(), 5);
    assert!(summary.iter().all(|s| &s[3] == "2"));
    assert!(tmp.path().join("out1/config.toml").exists());

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
    let (ok, _, stderr) = harness(&[
        exp,
        "--jobs",
        "2",
        "--cache",
        &p("cache2"),
        "--out",
        &p("out2"),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("(10 trained)"), "{stderr}");
    assert_eq!(
        numbers(&tmp.path().join("out1/runs.csv")),
        numbers(&tmp.path().join("out2/runs.csv"))
    );
}

#[test]
fn bad_input_fails_with_a_clear_message_and_writes_nothing() {
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
            && stderr.contains("unknown field `beta`")
            && stderr.contains("line 18"),
        "{stderr}"
    );
    assert!(!out.exists());

    let (ok, _, stderr) = harness(&["/nonexistent/x.toml"]);
    assert!(
        !ok && stderr.contains("/nonexistent/x.toml: cannot read"),
        "{stderr}"
    );

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
