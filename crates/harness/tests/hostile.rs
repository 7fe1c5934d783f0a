//! Hostile input and faults (issue #22): every bad input exits with its code, a message that
//! names the file, key, flag or value and what to do, and leaves nothing behind; a diverged
//! model is never cached or reported; an interrupt stops external commands and removes their
//! job folders. Needs `scripts/setup` (the real-MNIST slice).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Every path under `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(dir).unwrap().to_owned())
        .collect()
}

/// The harness with `args` in `dir` (its temporary directory `dir/tmp`): exit code and stderr.
fn run_in(dir: &Path, args: &[String]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(dir)
        .args(args)
        .env("TMPDIR", dir.join("tmp"))
        .env_remove("UNLEARN_BENCH_SHARD_COUNT")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .output()
        .unwrap();
    (out.status.code().expect("exited"), String::from_utf8(out.stderr).unwrap())
}

/// One hostile input: the experiment file's text (written to `case.toml`), the command line
/// (`{file}`, `{cache}`, `{out}` and `{dir}` replaced; the default runs the file), the exit
/// code and the words the message must contain.
struct Case {
    what: &'static str,
    file: String,
    args: &'static [&'static str],
    code: i32,
    words: Vec<String>,
}

const RUN: &[&str] = &["{file}", "--cache", "{cache}", "--out", "{out}"];

fn case(what: &'static str, file: String, args: &'static [&'static str], words: &[&str]) -> Case {
    let args = if args.is_empty() { RUN } else { args };
    Case { what, file, args, code: 2, words: words.iter().map(|w| w.to_string()).collect() }
}

#[test]
fn hostile_inputs_exit_with_their_code_name_the_problem_and_leave_nothing_behind() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(experiment(tmp.path())).unwrap();
    let data_dir = mnist_dir().display().to_string();
    let fashion = workspace().join("data/FashionMNIST/raw");
    let edit = |from: &str, to: &str| {
        assert!(good.contains(from), "{from:?} is not in the experiment");
        good.replace(from, to)
    };
    let plus = |section: &str| format!("{good}{section}");
    let check = |metrics: &str| plus(&format!("[check]\nmetrics = {metrics}\ntolerance = 1\n"));
    let external =
        |section: &str| plus(&format!("[methods.external.x]\ncommand = [\"true\"]\n{section}"));
    const CHECK: &[&str] = &[
        "check",
        "{file}",
        "--baseline",
        "{dir}/base.csv",
        "--cache",
        "{cache}",
        "--out",
        "{out}",
    ];
    const UPDATE: &[&str] = &[
        "check",
        "{file}",
        "--baseline",
        "{dir}/a-file/base.csv",
        "--update-baseline",
        "--cache",
        "{cache}",
        "--out",
        "{out}",
    ];
    let cases = vec![
        case(
            "malformed TOML",
            edit("seeds = [0, 1]", "seeds = [0, 1"),
            &[],
            &["case.toml", "line"],
        ),
        case("unknown key", edit("[forget]", "[forget]\nclas = 3"), &[], &["unknown field `clas`"]),
        case(
            "wrong type",
            edit("epochs = 1\n", "epochs = \"one\"\n"),
            &[],
            &[
                "`methods.finetune.epochs` invalid type: string \"one\", expected a whole number >= 1",
                "(line 15)",
            ],
        ),
        case(
            "fraction 0",
            edit("fraction = 0.75", "fraction = 0"),
            &[],
            &["forget.fraction", "(0, 1]"],
        ),
        case(
            "fraction > 1",
            edit("fraction = 0.75", "fraction = 1.5"),
            &[],
            &["forget.fraction", "(0, 1]"],
        ),
        case(
            "fraction NaN",
            edit("fraction = 0.75", "fraction = nan"),
            &[],
            &["forget.fraction", "is NaN"],
        ),
        case(
            "the whole training set forgotten",
            edit("class = 3\nfraction = 0.75", "fraction = 1"),
            &[],
            &["case.toml", "`forget.fraction` is 1 with no `class`", "at least 2"],
        ),
        case(
            "a split that leaves too little to remain",
            edit("train_limit = 4000", "train_limit = 1")
                .replace("class = 3\nfraction = 0.75", "class = 5\nfraction = 1"),
            &[],
            &[
                "case.toml",
                "`forget` (class5-all) cannot be drawn for seed 0",
                "leaves 0 to remain",
                "at least 2 must",
            ],
        ),
        case(
            "a split that forgets nothing",
            edit("train_limit = 4000", "train_limit = 5"),
            &[],
            &["case.toml", "cannot be drawn for seed 0", "forgets none"],
        ),
        case(
            "class 10",
            edit("class = 3", "class = 10"),
            &[],
            &["forget.class", "is 10", "0 to 9"],
        ),
        case(
            "train_limit beyond the set",
            edit("train_limit = 4000", "train_limit = 99999999"),
            &[],
            &["`data.train_limit` is 99999999", "has 60000 images", "1 to 60000"],
        ),
        case(
            "train_limit 0",
            edit("train_limit = 4000", "train_limit = 0"),
            &[],
            &["`data.train_limit` is 0"],
        ),
        case(
            "test_limit beyond the set",
            edit("test_limit = 1000", "test_limit = 10001"),
            &[],
            &["`data.test_limit` is 10001", "2 to 10000"],
        ),
        case(
            "test_limit 1",
            edit("test_limit = 1000", "test_limit = 1"),
            &[],
            &["`data.test_limit` is 1"],
        ),
        case(
            "negative gamma",
            edit("gamma = [0, 4]", "gamma = [0, -4]"),
            &[],
            &["methods.mi_unlearn.gamma", "-4"],
        ),
        case("negative epochs", edit("epochs = 1\n", "epochs = -1\n"), &[], &["epochs", "line"]),
        case(
            "negative learning rate",
            edit("[methods.retrain]\n", "[methods.retrain]\nlr = -0.001\n"),
            &[],
            &["methods.retrain.lr", "-0.001", "must be positive"],
        ),
        case(
            "batch size 0",
            edit("[methods.original]\n", "[methods.original]\nbatch_size = 0\n"),
            &[],
            &["methods.original.batch_size", "is 0"],
        ),
        case(
            "eval_every 0",
            edit("[methods.retrain]\n", "[methods.retrain]\neval_every = 0\n"),
            &[],
            &["eval_every", "is 0"],
        ),
        case("no seeds", edit("seeds = [0, 1]", "seeds = []"), &[], &["seeds", "is empty"]),
        case(
            "a seed twice",
            edit("seeds = [0, 1]", "seeds = [1, 1]"),
            &[],
            &["`seeds` lists 1 twice"],
        ),
        case(
            "a method twice",
            edit("[methods.finetune]", "[methods.retrain]\nepochs = 3\n[methods.finetune]"),
            &[],
            &["retrain"],
        ),
        case(
            "a grid value twice",
            edit("gamma = [0, 4]", "gamma = [4, 4.0]"),
            &[],
            &["methods.mi_unlearn.gamma", "lists 4.0 twice"],
        ),
        case(
            "an unknown method",
            plus("[methods.sisa]\n"),
            &[],
            &["`methods.sisa` is not a method"],
        ),
        case("a bad name", format!("name = \"../x\"\n{good}"), &[], &["`name` is \"../x\""]),
        case(
            "a hidden layer of 0",
            plus("[model]\nhidden = [0]\n"),
            &[],
            &["model.hidden", "must be positive"],
        ),
        case(
            "an unknown engine",
            format!("engine = \"jit\"\n{good}"),
            &[],
            &["unknown variant `jit`"],
        ),
        case(
            "missing data",
            edit(&data_dir, "/nonexistent/mnist"),
            &[],
            &["/nonexistent/mnist", "run scripts/setup"],
        ),
        case(
            "another dataset's files",
            edit(&data_dir, &fashion.display().to_string()),
            &[],
            &["is fashion-mnist's file, not mnist's", "data.dir"],
        ),
        case(
            "an external value listed twice",
            external("params = { lr = [1, 1] }\n"),
            &[],
            &["`methods.external.x.params.lr` lists 1 twice"],
        ),
        case(
            "an external value listed twice as integer and float",
            external("params = { lr = [2, 2.0] }\n"),
            &[],
            &["`methods.external.x.params.lr` lists 2.0 twice"],
        ),
        case(
            "an endless external timeout",
            external("timeout_s = 1e300\n"),
            &[],
            &["`methods.external.x.timeout_s` is 1e300", "at most 2592000"],
        ),
        case(
            "a zero external timeout",
            external("timeout_s = 0\n"),
            &[],
            &["`methods.external.x.timeout_s` is 0"],
        ),
        case(
            "an external program that does not exist",
            plus("[methods.external.x]\ncommand = [\"no-such-program-here\"]\n"),
            &[],
            &["methods.external.x.command", "not a program on PATH"],
        ),
        case(
            "an external method named like a built-in",
            plus("[methods.external.retrain]\ncommand = [\"true\"]\n"),
            &[],
            &["not the name of a built-in method"],
        ),
        case(
            "an audit of 0 replicates",
            plus("[audit]\nreplicates = 0\n"),
            &[],
            &["`audit.replicates` is 0"],
        ),
        case(
            "an audit of 1 shadow",
            plus("[audit]\nshadows = 1\n"),
            &[],
            &["`audit.shadows` is 1"],
        ),
        case(
            "a check of F without an audit",
            check("[\"forget_quality\"]"),
            CHECK,
            &[
                "`check.metrics` lists forget_quality",
                "needs an [audit] section with replicates >= 2",
            ],
        ),
        case(
            "a check of U-LiRA without shadows",
            format!("{}[audit]\nreplicates = 2\n", check("[\"ulira_acc\"]")),
            CHECK,
            &["lists ulira_acc", "with shadows"],
        ),
        case(
            "a check of a gap without retrain",
            check("[\"forget_gap\"]").replace("[methods.retrain]\nepochs = 2\n", ""),
            CHECK,
            &["lists forget_gap", "needs a [methods.retrain] section"],
        ),
        case("a check without [check]", good.clone(), CHECK, &["no [check] section"]),
        case(
            "a baseline that does not exist",
            check("[\"forget_gap\"]"),
            CHECK,
            &["base.csv: cannot read the baseline", "--update-baseline"],
        ),
        case(
            "an empty baseline",
            check("[\"forget_gap\"]"),
            &[
                "check",
                "{file}",
                "--baseline",
                "{dir}/empty.csv",
                "--cache",
                "{cache}",
                "--out",
                "{out}",
            ],
            &["empty.csv: malformed baseline: the file is empty"],
        ),
        case(
            "a baseline that cannot be written",
            check("[\"forget_gap\"]"),
            UPDATE,
            &[
                "--baseline",
                "a-file/base.csv",
                "cannot create the baseline's folder",
                "choose another --baseline path",
            ],
        ),
        case(
            "a baseline that is a folder",
            check("[\"forget_gap\"]"),
            &[
                "check",
                "{file}",
                "--baseline",
                "{dir}/tmp",
                "--update-baseline",
                "--cache",
                "{cache}",
                "--out",
                "{out}",
            ],
            &["--baseline", "is a folder"],
        ),
        case(
            "an unwritable results folder",
            good.clone(),
            &["{file}", "--cache", "{cache}", "--out", "{dir}/a-file/results"],
            &["cannot create the results folder", "--out"],
        ),
        case(
            "an unwritable cache",
            good.clone(),
            &["{file}", "--cache", "{dir}/a-file/cache", "--out", "{out}"],
            &["cache folder", "--cache"],
        ),
        case(
            "shards that disagree",
            good.clone(),
            &["{file}", "--shard", "1/2", "--shard-count", "3", "--cache", "{cache}"],
            &["--shard 1/2 says 2 shards but --shard-count"],
        ),
        case(
            "a shard that does not exist",
            good.clone(),
            &["{file}", "--shard", "2/2", "--cache", "{cache}"],
            &["shard 2 of 2 does not exist"],
        ),
        case(
            "no jobs at a time",
            good.clone(),
            &["{file}", "--jobs", "0", "--cache", "{cache}", "--out", "{out}"],
            &["--jobs is 0"],
        ),
        case(
            "no threads",
            good.clone(),
            &["{file}", "--threads", "0", "--cache", "{cache}", "--out", "{out}"],
            &["--threads is 0"],
        ),
        case(
            "an unknown device",
            good.clone(),
            &["{file}", "--device", "gpu", "--cache", "{cache}", "--out", "{out}"],
            &["--device", "\"gpu\""],
        ),
        case(
            "an experiment file that does not exist",
            good.clone(),
            &["{dir}/none.toml"],
            &["none.toml: cannot read"],
        ),
        case(
            "a report without a cache",
            good.clone(),
            &["report", "{file}", "--cache", "{dir}/no-cache", "--out", "{out}"],
            &["no-cache: no such cache folder"],
        ),
        case(
            "a figure of NaN",
            good.clone(),
            &["plot", "{dir}/nan"],
            &["runs.csv: line 2: forget_acc is NaN", "regenerate"],
        ),
        case(
            "a folder of no experiments",
            good.clone(),
            &["regenerate", "{dir}/no-experiments", "--results", "{out}"],
            &["no-experiments: no such folder"],
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());

    let ci_runs = std::fs::read_to_string(workspace().join("results/ci/runs.csv")).unwrap();
    for (i, c) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("case{i}"));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        std::fs::write(dir.join("case.toml"), &c.file).unwrap();
        std::fs::write(dir.join("a-file"), b"").unwrap();
        std::fs::write(dir.join("empty.csv"), b"").unwrap();
        // A results folder whose one NaN makes its figures nonsense.
        let mut lines: Vec<String> = ci_runs.lines().map(str::to_owned).collect();
        let column = lines[0].split(',').position(|c| c == "forget_acc").unwrap();
        let mut cells: Vec<&str> = lines[1].split(',').collect();
        cells[column] = "NaN";
        lines[1] = cells.join(",");
        std::fs::create_dir_all(dir.join("nan")).unwrap();
        std::fs::write(dir.join("nan/runs.csv"), lines.join("\n") + "\n").unwrap();
        let before = tree(&dir);
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| {
                a.replace("{file}", &dir.join("case.toml").display().to_string())
                    .replace("{cache}", &dir.join("cache").display().to_string())
                    .replace("{out}", &dir.join("out").display().to_string())
                    .replace("{dir}", &dir.display().to_string())
            })
            .collect();
        let (code, stderr) = run_in(&dir, &args);
        assert_eq!(code, c.code, "{}: {stderr}", c.what);
        for w in &c.words {
            assert!(stderr.contains(w.as_str()), "{}: {w:?} not in {stderr}", c.what);
        }
        assert_eq!(tree(&dir), before, "{}: something was left behind", c.what);
    }
}

/// A slice experiment in `dir` with `body` (method sections).
fn slice_with(dir: &Path, name: &str, body: &str) -> PathBuf {
    slice(dir, name, "", body)
}

#[test]
fn a_diverged_model_fails_its_job_and_is_neither_cached_nor_reported() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        // MI-unlearn at an absurd gamma: the other runs go on and are cached.
        (
            "[methods.original]\nepochs = 2\n[methods.retrain]\nepochs = 2\n\
             [methods.mi_unlearn]\ngamma = [1, 1e308]\nepochs = 2\n",
            "mi_unlearn gamma=1e308 epochs=2 seed=0: training diverged: its loss first went non-finite",
            3,
        ),
        // An original that diverges: what starts from it is not run either.
        (
            "[methods.original]\nepochs = 2\nlr = 1e30\n[methods.retrain]\nepochs = 2\n\
             [methods.mi_unlearn]\ngamma = 1\nepochs = 2\n",
            "original epochs=2 lr=1e30 seed=0: training diverged: its loss first went non-finite",
            1,
        ),
    ];
    for (i, (body, words, cached)) in cases.into_iter().enumerate() {
        let exp = slice_with(tmp.path(), &format!("diverged{i}"), body);
        let (cache, out) =
            (tmp.path().join(format!("cache{i}")), tmp.path().join(format!("out{i}")));
        let (code, _, stderr) = harness_code(&[
            exp.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(words) && stderr.contains("at epoch 1"), "{stderr}");
        assert!(stderr.contains("nothing was cached"), "{stderr}");
        if i == 1 {
            assert!(
                stderr.contains("1 more start from a failed model and were not run"),
                "{stderr}"
            );
        }
        assert!(!out.exists(), "no results");
        let entries = std::fs::read_dir(cache.join("v2/models")).unwrap().count();
        assert_eq!(entries, cached, "only the models that trained well are cached");
    }
}

/// A slice with the original and an external method that records its pid in `$SLEEPER_PID`
/// and sleeps (as does a child it starts), so that the harness has something to interrupt.
fn sleeper(dir: &Path) -> PathBuf {
    let script = dir.join("sleeper.sh");
    std::fs::write(&script, "#!/bin/sh\necho $$ > \"$SLEEPER_PID\"\nsleep 1000\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    slice_with(
        dir,
        "sleeper",
        &format!(
            "[methods.original]\nepochs = 1\n[methods.external.sleeper]\ncommand = [\"{}\"]\n",
            script.display()
        ),
    )
}

fn is_alive(pid: u32) -> bool {
    // A zombie (exited, not yet reaped by whoever inherited it) is not running.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    results::owner::alive(pid)
        && !stat.rsplit_once(')').is_some_and(|(_, s)| s.trim_start().starts_with('Z'))
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let child: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(child)
        })
        .collect()
}

fn job_folders(tmpdir: &Path) -> Vec<String> {
    std::fs::read_dir(tmpdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("unlearn-bench-external"))
        .collect()
}

#[test]
fn an_interrupt_stops_external_commands_removes_their_folders_and_exits_130_or_143() {
    use rustix::process::{Pid, Signal, kill_process, kill_process_group};
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exp = sleeper(tmp.path());
    // To the harness alone (as `kill` does), and to its process group (as Ctrl-C does).
    for (how, signal, code) in [
        ("SIGTERM to the harness", Signal::TERM, 143),
        ("SIGINT to the harness", Signal::INT, 130),
        ("SIGINT to the process group", Signal::INT, 130),
    ] {
        let tmpdir = tmp.path().join(format!("tmp-{code}-{}", how.len()));
        std::fs::create_dir_all(&tmpdir).unwrap();
        let pid_file = tmpdir.join("sleeper.pid");
        let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
        command
            .args([exp.to_str().unwrap(), "--cache"])
            .arg(tmp.path().join("cache"))
            .arg("--out")
            .arg(tmp.path().join("out"))
            .env("TMPDIR", &tmpdir)
            .env("SLEEPER_PID", &pid_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let harness = command.spawn().unwrap();
        let t0 = Instant::now();
        while !pid_file.exists() || std::fs::read_to_string(&pid_file).unwrap().trim().is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(60), "{how}: the command never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        let sleeper: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        // The command's own child: the interrupt must reach it too.
        let mut grandchildren = children(sleeper);
        while grandchildren.is_empty() {
            assert!(t0.elapsed() < Duration::from_secs(60), "{how}: the command has no child");
            std::thread::sleep(Duration::from_millis(20));
            grandchildren = children(sleeper);
        }
        assert_eq!(job_folders(&tmpdir).len(), 1, "{how}: one job folder while it runs");
        let pid = Pid::from_raw(harness.id() as i32).unwrap();
        if how.contains("group") {
            kill_process_group(pid, signal).unwrap();
        } else {
            kill_process(pid, signal).unwrap();
        }
        let out = harness.wait_with_output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(code), "{how}: {stderr}");
        assert!(
            stderr.contains("unfinished jobs were stopped")
                && stderr.contains("sleeper external seed=0"),
            "{how}: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(100));
        assert!(!is_alive(sleeper), "{how}: the external command is still running");
        assert!(!is_alive(grandchildren[0]), "{how}: the command's child is still running");
        assert_eq!(job_folders(&tmpdir), Vec::<String>::new(), "{how}: its job folder is left");
        let locks = tmp.path().join("cache/v2/locks");
        assert_eq!(std::fs::read_dir(&locks).unwrap().count(), 0, "{how}: a lock is left");
    }
}

#[test]
fn job_folders_of_dead_processes_are_swept_and_live_ones_kept() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = tmp.path().join("tmp");
    let host = results::owner::hostname();
    let dead = format!("unlearn-bench-external@{host}@{}@7abc", i32::MAX - 7);
    let live = format!("unlearn-bench-external@{host}@{}@7abc", std::process::id());
    for name in [&dead, &live] {
        std::fs::create_dir_all(tmpdir.join(name)).unwrap();
        std::fs::write(tmpdir.join(name).join("original.safetensors"), b"x").unwrap();
    }
    // `true` writes no model: the job fails, after the sweep.
    let exp = slice_with(
        tmp.path(),
        "sweep",
        "[methods.original]\nepochs = 1\n[methods.external.nothing]\ncommand = [\"true\"]\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([exp.to_str().unwrap(), "--cache"])
        .arg(tmp.path().join("cache"))
        .env("TMPDIR", &tmpdir)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wrote no model"), "{stderr}");
    assert_eq!(job_folders(&tmpdir), vec![live], "the dead process's folder is swept");
}
