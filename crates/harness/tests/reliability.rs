//! Sharing a cache: shards and a report, concurrent processes, a killed run and corrupt
//! entries (needs `scripts/setup` for the real-MNIST slice; bad input is `hostile.rs`).

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
    let c = harness::execution::cache::Cache::open(cache).unwrap();
    let Ok(dir) = std::fs::read_dir(cache.join("v2/models")) else { return Vec::new() };
    dir.map(|e| e.unwrap().file_name().into_string().unwrap())
        .inspect(|key| {
            assert!(
                matches!(c.lookup(key).unwrap(), harness::execution::cache::Entry::Found(_)),
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
    // A report now has part of the runs, says which are missing, and exits 1: incomplete.
    let (code, _, stderr) =
        harness_code(&["report", exp, "--cache", &p("shared"), "--out", &p("part")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("missing") && stderr.contains("exit status 1"), "{stderr}");
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
