//! Sharing a cache: shards and a report, concurrent processes, a killed run, corrupt entries,
//! and bad input (needs `scripts/setup` for the real-MNIST slice).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The tests choose their shards themselves.
    for k in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "JOB_COMPLETION_INDEX"] {
        if !env.iter().any(|(e, _)| e == &k) {
            cmd.env_remove(k);
        }
    }
    cmd.spawn().unwrap()
}

/// Waits for a child; returns (success, stderr).
fn wait(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8(out.stderr).unwrap())
}

fn trained(stderr: &str) -> usize {
    stderr.matches(": trained in ").count()
}

/// Keys of the complete entries of a cache, checked by the cache itself.
fn complete_entries(cache: &Path) -> Vec<String> {
    let c = harness::cache::Cache::open(cache).unwrap();
    let Ok(dir) = std::fs::read_dir(cache.join("v2/models")) else { return Vec::new() };
    dir.map(|e| e.unwrap().file_name().into_string().unwrap())
        .inspect(|key| {
            assert!(
                matches!(c.lookup(key).unwrap(), harness::cache::Entry::Found(_)),
                "{key} is visible but not complete"
            )
        })
        .collect()
}

#[test]
fn shards_share_upstream_models_and_the_report_equals_one_process() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let exp = exp.to_str().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let (ok, _, stderr) = harness(&[exp, "--cache", &p("reference"), "--out", &p("one")]);
    assert!(ok, "{stderr}");

    // Shard 0 alone, named the way a Slurm array names it (task ids 5 to 7).
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let (ok, first) = wait(spawn(&[exp, "--cache", &p("shared")], &slurm));
    assert!(ok && first.contains("shard 0/3") && first.contains("no results written"), "{first}");
    assert!(!tmp.path().join("results").exists());
    // A report now has part of the runs and says which are missing.
    let (ok, _, stderr) = harness(&["report", exp, "--cache", &p("shared"), "--out", &p("part")]);
    assert!(ok && stderr.contains("missing"), "{stderr}");
    let part = read_csv(&tmp.path().join("part/runs.csv")).len();
    assert!(part > 0 && part < 10, "{part} runs after one shard of three");

    // The other two at once, on the same cache.
    let children = [
        spawn(&[exp, "--cache", &p("shared"), "--shard", "1/3"], &[]),
        spawn(
            &[exp, "--cache", &p("shared"), "--shard-count", "3"],
            &[("JOB_COMPLETION_INDEX", "2")],
        ),
    ];
    let mut total = trained(&first);
    for child in children {
        let (ok, stderr) = wait(child);
        assert!(ok, "{stderr}");
        total += trained(&stderr);
    }
    assert_eq!(total, 10, "each of the 10 jobs trained once across the shards");
    let (ok, _, stderr) = harness(&["report", exp, "--cache", &p("shared"), "--out", &p("all")]);
    assert!(ok && !stderr.contains("missing"), "{stderr}");
    assert_eq!(
        numbers(&tmp.path().join("one/runs.csv")),
        numbers(&tmp.path().join("all/runs.csv"))
    );
    assert_eq!(
        numbers(&tmp.path().join("one/summary.csv")),
        numbers(&tmp.path().join("all/summary.csv"))
    );

    let (ok, _, stderr) = harness(&[exp, "--shard", "3/3"]);
    assert!(!ok && stderr.contains("shard 3 of 3 does not exist"), "{stderr}");
}

#[test]
fn two_processes_on_one_cache_train_each_job_once() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let exp = exp.to_str().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let children = [
        spawn(&[exp, "--cache", &p("cache"), "--out", &p("a"), "--jobs", "1"], &[]),
        spawn(&[exp, "--cache", &p("cache"), "--out", &p("b"), "--jobs", "2"], &[]),
    ];
    let mut total = 0;
    for child in children {
        let (ok, stderr) = wait(child);
        assert!(ok, "{stderr}");
        total += trained(&stderr);
    }
    assert_eq!(total, 10, "each job trained by one process only");
    assert_eq!(numbers(&tmp.path().join("a/runs.csv")), numbers(&tmp.path().join("b/runs.csv")));
    assert_eq!(complete_entries(&tmp.path().join("cache")).len(), 10);
    assert_eq!(std::fs::read_dir(tmp.path().join("cache/v2/locks")).unwrap().count(), 0);
}

#[test]
fn a_killed_run_resumes_and_corrupt_entries_are_retrained() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = experiment(tmp.path());
    let exp = exp.to_str().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let (ok, _, stderr) = harness(&[exp, "--cache", &p("reference"), "--out", &p("reference")]);
    assert!(ok, "{stderr}");

    // SIGKILL as soon as the first model is in the cache.
    let cache = tmp.path().join("cache");
    let mut child = spawn(&[exp, "--cache", &p("cache"), "--out", &p("out"), "--jobs", "1"], &[]);
    let t0 = std::time::Instant::now();
    while std::fs::read_dir(cache.join("v2/models")).map_or(0, |d| d.count()) == 0 {
        assert!(t0.elapsed().as_secs() < 120, "no model after two minutes");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let survived = complete_entries(&cache).len();
    assert!((1..10).contains(&survived), "killed mid-run: {survived} of 10 entries");
    assert!(!tmp.path().join("out/runs.csv").exists(), "no results from a killed run");

    // The rerun reuses every finished model (its lock's owner is dead: taken over).
    let (ok, _, stderr) = harness(&[exp, "--cache", &p("cache"), "--out", &p("out")]);
    assert!(ok, "{stderr}");
    assert_eq!(trained(&stderr), 10 - survived, "{stderr}");
    let reference = numbers(&tmp.path().join("reference/runs.csv"));
    assert_eq!(numbers(&tmp.path().join("out/runs.csv")), reference);

    // A truncated model file and a garbled record: detected, reported, retrained.
    let keys = complete_entries(&cache);
    let model = cache.join("v2/models").join(&keys[0]).join("model.safetensors");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(cache.join("v2/models").join(&keys[1]).join("record.json"), b"{\"key\": ")
        .unwrap();
    let (ok, _, stderr) = harness(&[exp, "--cache", &p("cache"), "--out", &p("out")]);
    assert!(ok, "{stderr}");
    assert_eq!(stderr.matches("is corrupt").count(), 2, "{stderr}");
    assert!(stderr.contains(&keys[0][..]) || stderr.contains("SHA-256"), "{stderr}");
    // Retraining an original also retrains nothing else: its dependants are cached.
    assert_eq!(trained(&stderr), 2, "{stderr}");
    assert_eq!(numbers(&tmp.path().join("out/runs.csv")), reference);
    assert_eq!(complete_entries(&cache).len(), 10);
}

/// Every kind of bad input: exit code 2, a message naming the file, key or value and what to
/// do, and nothing written or cached.
#[test]
fn bad_input_exits_2_names_the_problem_and_writes_nothing() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(experiment(tmp.path())).unwrap();
    // A data folder with one corrupt file (the others linked to the real ones).
    let corrupt = tmp.path().join("corrupt-data");
    std::fs::create_dir_all(&corrupt).unwrap();
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"] {
        std::os::unix::fs::symlink(mnist_dir().join(f), corrupt.join(f)).unwrap();
    }
    let mut labels = std::fs::read(mnist_dir().join("t10k-labels-idx1-ubyte")).unwrap();
    labels[100] ^= 1;
    std::fs::write(corrupt.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    let data_dir = mnist_dir().display().to_string();

    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "malformed TOML",
            good.replace("seeds = [0, 1]", "seeds = [0, 1"),
            vec!["case.toml", "line"],
        ),
        (
            "unknown key",
            good.replace("[forget]", "[forget]\nclas = 3"),
            vec!["unknown field `clas`"],
        ),
        (
            "wrong type",
            good.replace("epochs = 1\n", "epochs = \"one\"\n"),
            vec![
                "`methods.finetune.epochs` invalid type: string \"one\", expected usize",
                "(line 15)",
            ],
        ),
        (
            "fraction 0",
            good.replace("fraction = 0.75", "fraction = 0"),
            vec!["forget.fraction", "(0, 1]"],
        ),
        (
            "fraction > 1",
            good.replace("fraction = 0.75", "fraction = 1.5"),
            vec!["forget.fraction", "(0, 1]"],
        ),
        (
            "class 10",
            good.replace("class = 3", "class = 10"),
            vec!["forget.class", "is 10", "0 to 9"],
        ),
        (
            "negative gamma",
            good.replace("gamma = [0, 4]", "gamma = [0, -4]"),
            vec!["methods.mi_unlearn.gamma", "-4"],
        ),
        ("negative epochs", good.replace("epochs = 1\n", "epochs = -1\n"), vec!["epochs", "line"]),
        (
            "negative learning rate",
            good.replace("[methods.retrain]\n", "[methods.retrain]\nlr = -0.001\n"),
            vec!["methods.retrain.lr", "-0.001", "must be positive"],
        ),
        (
            "batch size 0",
            good.replace("[methods.original]\n", "[methods.original]\nbatch_size = 0\n"),
            vec!["methods.original.batch_size", "is 0"],
        ),
        ("no seeds", good.replace("seeds = [0, 1]", "seeds = []"), vec!["seeds", "is empty"]),
        (
            "a method twice",
            good.replace("[methods.finetune]", "[methods.retrain]\nepochs = 3\n[methods.finetune]"),
            vec!["retrain"],
        ),
        (
            "a grid value twice",
            good.replace("gamma = [0, 4]", "gamma = [4, 4.0]"),
            vec!["methods.mi_unlearn.gamma", "lists 4.0 twice"],
        ),
        (
            "missing data",
            good.replace(&data_dir, "/nonexistent/mnist"),
            vec!["/nonexistent/mnist", "run scripts/setup"],
        ),
        (
            "corrupt data",
            good.replace(&data_dir, &corrupt.display().to_string()),
            vec!["t10k-labels-idx1-ubyte", "SHA-256", "delete it and re-run scripts/setup"],
        ),
    ];
    let path = tmp.path().join("case.toml");
    for (i, (what, text, expected)) in cases.iter().enumerate() {
        assert_ne!(text, &good, "{what}: the case changes the file");
        std::fs::write(&path, text).unwrap();
        let (cache, out) =
            (tmp.path().join(format!("cache{i}")), tmp.path().join(format!("out{i}")));
        let (code, _, stderr) = harness_code(&[
            path.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{what}: {stderr}");
        for e in expected {
            assert!(stderr.contains(e), "{what}: {e:?} not in {stderr}");
        }
        assert!(!out.exists() && !cache.exists(), "{what}: something was written");
    }

    // An unwritable results folder fails before any training.
    std::fs::write(&path, &good).unwrap();
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"").unwrap();
    let cache = tmp.path().join("cache-unwritable");
    let out = blocker.join("results");
    let (code, _, stderr) = harness_code(&[
        path.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("cannot create the results folder") && stderr.contains("--out"),
        "{stderr}"
    );
    assert!(!cache.exists(), "nothing cached");
}
