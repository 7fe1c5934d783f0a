//! External methods end to end (needs `scripts/setup`: MNIST and its Python with torch,
//! numpy and safetensors): the examples run through the process boundary, failures are
//! reported and lose nothing, bad declarations exit 2.

mod common;

use common::*;

/// The slice experiment with a 2-epoch original, a 1-epoch finetune and `external`.
fn with_external(dir: &std::path::Path, name: &str, external: &str) -> String {
    let methods = "[methods.original]\nepochs = 2\n[methods.finetune]\nepochs = 1\n";
    slice(dir, name, "", &format!("{methods}{external}")).display().to_string()
}

#[test]
fn the_identity_is_the_original_and_pytorch_finetuning_agrees_with_the_built_in() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let file = with_external(
        tmp.path(),
        "external",
        r#"
[methods.external.identity]
command = ["python", "examples/external/identity.py"]
inputs = ["examples/external/identity.py", "examples/external/unlearn_job.py"]
[methods.external.torch_finetune]
command = ["python", "examples/external/finetune.py"]
inputs = ["examples/external/finetune.py", "examples/external/unlearn_job.py"]
params = { epochs = 2 }
"#,
    );
    let (ok, _, stderr) =
        harness_in_workspace(&[&file, "--cache", &p("cache"), "--out", &p("out")]);
    assert!(ok, "{stderr}");
    let runs = read_csv(&tmp.path().join("out/runs.csv"));
    let row = |m: &str| runs.iter().find(|r| r["method"] == m).unwrap_or_else(|| panic!("{m}"));
    let (original, identity) = (row("original"), row("identity"));
    for column in ["remain_acc", "forget_acc", "test_acc", "mia", "mia_attack_acc"] {
        assert_eq!(identity[column], original[column], "the identity's {column}");
    }
    // Its own cache entry (`checkpoint` is the job's key), holding the original's bytes.
    let model_sha = |r: &Row| {
        let record = tmp.path().join("cache/v2/models").join(&r["checkpoint"]).join("record.json");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
        record["model_sha256"].as_str().unwrap().to_owned()
    };
    assert_ne!(identity["checkpoint"], original["checkpoint"]);
    assert_eq!(model_sha(identity), model_sha(original), "the same model, bit for bit");
    // PyTorch's bits depend on the CPU: the external jobs' keys carry its class, the native
    // engine's do not.
    let described = |r: &Row| {
        let path = tmp.path().join("cache/v2/models").join(&r["checkpoint"]).join("record.json");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        record["description"].as_str().unwrap().to_owned()
    };
    assert!(described(identity).contains("\nengine native\ncpu "), "{}", described(identity));
    assert!(!described(original).contains("\ncpu "), "{}", described(original));
    assert_eq!(identity["params"], "external");
    let (builtin, torch) = (row("finetune"), row("torch_finetune"));
    assert_eq!((torch["params"].as_str(), torch["epochs"].as_str()), ("epochs=2", "2"));
    assert_ne!(model_sha(torch), model_sha(original), "PyTorch trained the model");
    // Another implementation with its own random numbers: the same within seed noise.
    for (column, tolerance) in [("remain_acc", 2.0), ("test_acc", 3.0), ("forget_acc", 15.0)] {
        let (a, b) = (num(builtin, column), num(torch, column));
        assert!((a - b).abs() < tolerance, "{column}: built-in {a}, PyTorch {b}");
    }
    let history = read_csv(&tmp.path().join("out/history.csv"));
    let torch_epochs: Vec<_> = history.iter().filter(|r| r["method"] == "torch_finetune").collect();
    // Its losses.csv: a row per epoch, a cross-entropy of a model that fits, falling; the
    // accuracies of the last epoch alone (the only model the harness sees), the final ones.
    let column = |c: &str| torch_epochs.iter().map(|r| r[c].clone()).collect::<Vec<_>>();
    assert_eq!(column("epoch"), ["1", "2"]);
    let (first, last) = (num(torch_epochs[0], "loss"), num(torch_epochs[1], "loss"));
    assert!(0.0 < last && last < first && first < 0.5, "{first} then {last}");
    assert_eq!(column("ce"), column("loss"), "`ce` is `loss` when left out");
    assert_eq!(column("test_acc"), ["", torch["test_acc"].as_str()]);
    let identity_epochs: Vec<_> = history.iter().filter(|r| r["method"] == "identity").collect();
    assert_eq!(identity_epochs.len(), 1);
    assert_eq!(identity_epochs[0]["loss"], "NaN", "the harness sees no losses it is not given");

    // Cached like any other job: the rerun trains nothing.
    let (ok, _, stderr) =
        harness_in_workspace(&[&file, "--cache", &p("cache"), "--out", &p("again")]);
    assert!(ok && stderr.contains("everything from the cache"), "{stderr}");
    assert_eq!(
        numbers(&tmp.path().join("out/runs.csv")),
        numbers(&tmp.path().join("again/runs.csv"))
    );
}

#[test]
fn an_external_method_is_audited_like_a_built_in_one() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let methods = "[methods.original]\nepochs = 2\n[methods.retrain]\nepochs = 2\n\
                   [methods.external.identity]\ncommand = [\"python\", \"examples/external/identity.py\"]\n\
                   [audit]\nreplicates = 3\nshadows = 8\nmin_members = 2\n";
    let file = slice(tmp.path(), "audited", "", methods).display().to_string();
    let (ok, _, stderr) =
        harness_in_workspace(&[&file, "--cache", &p("cache"), "--out", &p("out")]);
    assert!(ok, "{stderr}");
    let runs = read_csv(&tmp.path().join("out/runs.csv"));
    let replicates: Vec<&str> = runs
        .iter()
        .filter(|r| r["method"] == "identity")
        .map(|r| r["replicate"].as_str())
        .collect();
    assert_eq!(replicates, ["0", "1", "2"], "each replicate is one external job");
    let shadows = read_csv(&tmp.path().join("out/shadows.csv"));
    assert_eq!(shadows.iter().filter(|r| r["method"] == "identity").count(), 8);
    let audit = read_csv(&tmp.path().join("out/audit.csv"));
    let identity = audit.iter().find(|r| r["method"] == "identity").unwrap();
    // Three copies of the original: one peaky distribution per example, epsilon 50, F = 0.
    assert_eq!((num(identity, "forget_quality"), num(identity, "eps_median")), (0.0, 50.0));
    assert!(num(identity, "ulira_scored") > 0.0, "{identity:?}");

    // Two shards into a fresh cache, then the report: the same audit as one process.
    for shard in ["0/2", "1/2"] {
        let args = [file.as_str(), "--cache", &p("sharded"), "--shard", shard];
        let (ok, _, stderr) = harness_in_workspace(&args);
        assert!(ok, "{stderr}");
    }
    let report = ["report", file.as_str(), "--cache", &p("sharded"), "--out", &p("report")];
    let (ok, _, stderr) = harness_in_workspace(&report);
    assert!(ok, "{stderr}");
    for f in ["runs.csv", "audit.csv", "shadows.csv"] {
        let (one, two) = (tmp.path().join("out").join(f), tmp.path().join("report").join(f));
        assert_eq!(numbers(&one), numbers(&two), "{f}");
    }
}

#[test]
fn a_failing_command_fails_its_job_with_its_stderr_and_keeps_the_others() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let nan = "import sys, numpy as np; sys.path.insert(0, 'examples/external'); \
               from unlearn_job import *; job = load_job(); t = load_original_numpy(job); \
               t['fc2.bias'][:] = np.nan; save_numpy(job, t)";
    let file = with_external(
        tmp.path(),
        "failing",
        &format!(
            r#"
[methods.external.crashes]
command = ["python", "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
[methods.external.hangs]
command = ["python", "-c", "import subprocess, time; subprocess.Popen(['sleep', '321']); time.sleep(60)"]
timeout_s = 1
[methods.external.writes_nan]
command = ["python", "-c", "{nan}"]
[methods.external.writes_nothing]
command = ["python", "-c", "pass"]
"#
        ),
    );
    let (code, _, stderr) =
        harness_code_in_workspace(&[&file, "--cache", &p("cache"), "--out", &p("out")]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("4 of 6 jobs failed"), "{stderr}");
    assert!(
        stderr.contains("crashes external seed=0") && stderr.contains("exit status: 3"),
        "{stderr}"
    );
    assert!(stderr.contains("boom"), "the command's stderr: {stderr}");
    assert!(stderr.contains("hangs") && stderr.contains("timed out after 1 s"), "{stderr}");
    // What the command started went with it.
    let ps = std::process::Command::new("ps").args(["-eo", "args"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&ps.stdout).lines().any(|l| l == "sleep 321"), "left running");
    assert!(stderr.contains("fc2.bias has NaN or infinite values"), "{stderr}");
    assert!(stderr.contains("writes_nothing") && stderr.contains("wrote no model"), "{stderr}");
    assert!(!tmp.path().join("out").exists(), "no results are written");
    // The other jobs are cached: without the failing methods nothing trains again.
    let fine = with_external(tmp.path(), "fine", "");
    let (ok, _, stderr) = harness(&[&fine, "--cache", &p("cache"), "--out", &p("fine")]);
    assert!(ok && stderr.contains("everything from the cache"), "{stderr}");
    assert!(stderr.is_empty() || !stderr.contains("kept"), "{stderr}");

    // UNLEARN_BENCH_KEEP_FAILED keeps a failed run's job folder, and the error names it.
    let crash = with_external(
        tmp.path(),
        "crash",
        "[methods.external.crashes]\ncommand = [\"python\", \"-c\", \"import sys; print('boom', file=sys.stderr); sys.exit(3)\"]\n",
    );
    let jobs = tmp.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    let run = |keep: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(workspace())
            .env("UNLEARN_BENCH_KEEP_FAILED", keep)
            .env("TMPDIR", &jobs)
            .args([crash.as_str(), "--cache", &p("cache"), "--out", &p("crash")])
            .output()
            .unwrap();
        String::from_utf8(out.stderr).unwrap()
    };
    let stderr = run("");
    assert!(stderr.contains("set UNLEARN_BENCH_KEEP_FAILED=1 to keep its job folder"), "{stderr}");
    assert_eq!(std::fs::read_dir(&jobs).unwrap().count(), 0, "removed");
    let stderr = run("1");
    let kept = stderr.split("its job folder is kept for debugging: ").nth(1).expect(&stderr);
    let kept = std::path::Path::new(kept.split(')').next().unwrap());
    assert!(kept.starts_with(&jobs), "{}", kept.display());
    assert!(std::fs::read_to_string(kept.join("stderr.log")).unwrap().contains("boom"));
    assert!(kept.join("job.json").exists() && kept.join("original.safetensors").exists());
}

#[test]
fn bad_declarations_exit_2_naming_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "no_command",
            "[methods.external.x]\nparams = { a = 1 }\n",
            "methods.external.x.command",
            "is missing",
        ),
        (
            "unknown_key",
            "[methods.external.x]\ncommand = [\"python3\"]\nlr = 1e-3\n",
            "methods.external.x.lr",
            "is not a key of an external method",
        ),
        (
            "no_input",
            "[methods.external.x]\ncommand = [\"python3\"]\ninputs = [\"nowhere.py\"]\n",
            "methods.external.x.inputs",
            "lists nowhere.py, which cannot be read",
        ),
        (
            "no_program",
            "[methods.external.x]\ncommand = [\"no-such-program-here\"]\n",
            "methods.external.x.command",
            "not a program on PATH",
        ),
        (
            "fractional_epochs",
            "[methods.external.x]\ncommand = [\"python3\"]\nparams = { epochs = [1, 2.5] }\n",
            "methods.external.x.params.epochs",
            "is 2.5; `epochs` is the method's epoch count, a whole number from 1",
        ),
        (
            "builtin_name",
            "[methods.external.finetune]\ncommand = [\"python3\"]\n",
            "methods.external.finetune",
            "not the name of a built-in method",
        ),
    ];
    for (name, section, key, problem) in cases {
        let text = format!(
            "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.75\n[methods.original]\nepochs = 1\n{section}"
        );
        let path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = tmp.path().join("out").display().to_string();
        let (code, _, stderr) = harness_code(&[path.to_str().unwrap(), "--out", &out]);
        assert_eq!(code, 2, "{name}: {stderr}");
        let file = format!("{name}.toml");
        assert!(
            stderr.contains(&file) && stderr.contains(key) && stderr.contains(problem),
            "{name}: {stderr}"
        );
        assert!(!tmp.path().join("out").exists(), "{name}: nothing written");
    }
}
