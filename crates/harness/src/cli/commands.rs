//! The harness's commands, each returning the process's exit code: `main.rs` parses the
//! command line and calls one. 0 is success; 1 a failed `check`; every error (bad input,
//! missing data, I/O) is reported by `main` and exits 2.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use results::fsutil::Folder;
use results::rows::SummaryRow;

use crate::execution::progress::Verbosity;
use crate::execution::run::{RunOptions, execute};
use crate::experiment::{ConfigError, Experiment, Suite};

/// How to run: the command line's options shared by `run`, `check` and `regenerate`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Jobs trained at once [default: the number of cores divided by --threads].
    #[arg(short, long)]
    pub jobs: Option<usize>,
    /// libtorch threads per job. Results are reproducible for a given value; 1 is fastest
    /// for this small model when jobs fill the cores.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The model cache folder.
    #[arg(long, env = "UNLEARN_BENCH_CACHE", default_value = "cache")]
    pub cache: PathBuf,
    /// Where to train: auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps;
    /// overrides the experiment's `device`.
    #[arg(long, env = "UNLEARN_BENCH_DEVICE")]
    pub device: Option<String>,
}

/// The experiment file at `path`, read and checked, with its external methods' programs found
/// and inputs hashed (`execution::plan::methods`), so that every problem with it is found
/// before anything trains.
pub fn load(path: &Path) -> anyhow::Result<Suite> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
    let suite = Suite::parse(&text, path)?;
    for cell in &suite.cells {
        crate::execution::plan::methods(cell)?;
    }
    Ok(suite)
}

/// The most jobs or libtorch threads a run may ask for (each is an OS thread).
const MAX_WORKERS: usize = 1024;

/// Runs an experiment file (every cell of a suite, then its leaderboard) into `out`
/// (default `results/<name>`), or only its shard `shard` (writing no results).
pub fn run(
    path: &Path,
    out: Option<&Path>,
    shard: Option<(usize, usize)>,
    args: &RunArgs,
    verbosity: Verbosity,
) -> anyhow::Result<ExitCode> {
    let suite = load(path)?;
    let out = out.map_or_else(|| PathBuf::from("results").join(&suite.name), Path::to_owned);
    match shard {
        Some(shard) => suite.cells.iter().try_for_each(|exp| {
            let mut opts = options(args, verbosity, path, exp)?;
            opts.shard = Some(shard);
            run_shard(path, exp, &opts, shard)
        })?,
        None => run_suite(path, &suite, args, verbosity, &out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes an experiment's results from the runs the cache holds (after sharded runs).
pub fn report(
    experiment: &Path,
    out: Option<&Path>,
    cache: &Path,
    device: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let suite = load(experiment)?;
    let out = out.map_or_else(|| PathBuf::from("results").join(&suite.name), Path::to_owned);
    let (mut summaries, mut missing) = (Vec::new(), 0);
    for exp in &suite.cells {
        let cell_out = suite.cell_out(&out, exp);
        let device = resolve_device(device, experiment, exp, Verbosity::Quiet)?;
        let (summary, cell_missing) = report_cell(experiment, exp, cache, device, &cell_out)?;
        summaries.push((exp.name.clone(), summary));
        missing += cell_missing;
    }
    write_leaderboard(&suite, &summaries, &out)?;
    if missing > 0 {
        eprintln!(
            "the results are incomplete: {missing} runs are missing (exit status 1); run the \
             experiment or its failed shards, then report again"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Redraws a results folder's figures from its CSV files; prints the files written.
pub fn plot(dir: &Path) -> anyhow::Result<ExitCode> {
    // A suite's folder holds its leaderboard; a cell's (or a plain experiment's) its runs.
    let written = if dir.join("leaderboard.csv").exists() && !dir.join("runs.csv").exists() {
        results::plot::plot_leaderboard(dir)?
    } else {
        results::plot::plot_dir(dir)?
    };
    anyhow::ensure!(
        !written.is_empty(),
        "{}: these runs call for no figure (see `harness plot --help`)",
        dir.display()
    );
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs every experiment file under `experiments` into `results/<name>`, all parsed first.
pub fn regenerate(
    experiments: &Path,
    results: &Path,
    args: &RunArgs,
    verbosity: Verbosity,
) -> anyhow::Result<ExitCode> {
    // Parse them all first: a typo in the last file should not surface after an hour.
    anyhow::ensure!(
        experiments.is_dir(),
        "{}: no such folder of experiment files",
        experiments.display()
    );
    let mut all = Vec::new();
    for entry in walkdir::WalkDir::new(experiments).sort_by_file_name() {
        // walkdir's message already holds its cause: say it once.
        let entry = entry.map_err(|e| anyhow::anyhow!("cannot list {e}"))?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "toml") {
            all.push((entry.path().to_owned(), load(entry.path())?));
        }
    }
    anyhow::ensure!(
        !all.is_empty(),
        "{}: no experiment files (*.toml) found",
        experiments.display()
    );
    if let Some(dup) = all.iter().enumerate().find_map(|(i, (p, e))| {
        all[..i]
            .iter()
            .find(|(_, o)| o.name == e.name)
            .map(|(o, _)| (o.clone(), p.clone(), e.name.clone()))
    }) {
        anyhow::bail!(
            "{} and {} both write results/{}: give one a different `name`",
            dup.0.display(),
            dup.1.display(),
            dup.2
        );
    }
    for (path, suite) in &all {
        run_suite(path, suite, args, verbosity, &results.join(&suite.name))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs an experiment and compares its `[check]` metrics with `baseline` (or rewrites it).
pub fn check(
    path: &Path,
    baseline: &Path,
    update: bool,
    out: Option<&Path>,
    args: &RunArgs,
    verbosity: Verbosity,
) -> anyhow::Result<ExitCode> {
    let exp = Experiment::single(load(path)?, path)?;
    let Some(spec) = &exp.check else {
        anyhow::bail!(
            "{}: no [check] section: add one naming the metrics and tolerances",
            path.display()
        );
    };
    // Read the baseline (or see that it can be written) before the (possibly long) run, so a
    // bad one fails at once.
    let base = if update {
        anyhow::ensure!(
            !baseline.is_dir(),
            "--baseline {}: is a folder; give the path of a CSV file to write",
            baseline.display()
        );
        let folder = baseline.parent().filter(|p| !p.as_os_str().is_empty());
        results::fsutil::ensure_writable(folder.unwrap_or(Path::new(".")), Folder::Baseline)
            .with_context(|| format!("--baseline {}", baseline.display()))?;
        None
    } else {
        Some(results::check::read_baseline(baseline)?)
    };
    let out = out.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let summary = run_experiment(path, &exp, &options(args, verbosity, path, &exp)?, &out)?;
    let now = results::check::current(&summary, spec);
    if let Some((metric, _)) =
        spec.metrics.iter().find(|(m, _)| !now.iter().any(|r| r.metric == *m))
    {
        anyhow::bail!(
            "{}: `check.metrics` lists {metric}, but no run of this experiment has a value for \
             it{}; take it out of check.metrics, or add a method that computes it",
            path.display(),
            match metric.needs() {
                results::rows::Needs::MiEstimate =>
                    " (only a method that reports an MI estimate has)",
                _ => "",
            }
        );
    }
    match base {
        None => {
            results::fsutil::write_atomic(baseline, &results::check::baseline_csv(&now)?)
                .with_context(|| format!("--baseline {}", baseline.display()))?;
            eprintln!("wrote {} ({} rows)", baseline.display(), now.len());
            Ok(ExitCode::SUCCESS)
        }
        Some(base) => {
            let verdicts = results::check::compare(&now, &base, spec, baseline)?;
            print!("{}", results::check::table(&verdicts));
            let failed = verdicts.iter().filter(|v| !v.pass()).count();
            if failed == 0 {
                eprintln!(
                    "check passed: {} metrics within tolerance of {}",
                    verdicts.len(),
                    baseline.display()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "check FAILED: {failed} of {} metrics moved beyond tolerance",
                    verdicts.len()
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Measures speed (see `harness bench --help`).
pub fn bench(
    data: &Path,
    epochs: usize,
    python: Option<PathBuf>,
    sweep: bool,
) -> anyhow::Result<ExitCode> {
    use crate::cli::bench;
    anyhow::ensure!(epochs >= 1, "--epochs must be at least 1");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = if cores > 1 { vec![1, cores] } else { vec![1] };
    if python.is_none() {
        eprintln!(
            "no PyTorch comparison: pass --python or set UNLEARN_BENCH_PYTHON (scripts/setup does)"
        );
    }
    let opts = bench::BenchOptions {
        data_dir: data.to_owned(),
        epochs,
        threads,
        python,
        pytorch_script: PathBuf::from("scripts/bench_pytorch.py"),
    };
    let measures = bench::micro(&opts, &|m| eprintln!("{m}"))?;
    print!("{}", bench::table(&measures));
    if sweep {
        let binary = std::env::current_exe().context("cannot find the harness binary")?;
        for engine in methods::Engine::ALL {
            eprintln!("timing a 12-job sweep with the {} engine...", engine.name());
            let one = bench::sweep(&binary, data, engine, 1)?;
            let all = bench::sweep(&binary, data, engine, cores)?;
            let mib =
                |r: &bench::SweepRun| r.peak_mib.map_or("?".into(), |m| format!("{m:.0} MiB"));
            println!(
                "sweep of 12 jobs, {} engine: --jobs 1 {:.1} s (peak {}), --jobs {cores} {:.1} s (peak {}): {:.2}x the time, {} numbers",
                engine.name(),
                one.seconds,
                mib(&one),
                all.seconds,
                mib(&all),
                all.seconds / one.seconds,
                if one.numbers == all.numbers { "identical" } else { "DIFFERENT" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The shard to run: `--shard I/N`, else the array index of a Slurm or Kubernetes job, read
/// through `var` (the process's environment: `|name| std::env::var(name).ok()`).
pub fn shard(
    flag: Option<&str>,
    count: Option<usize>,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<(usize, usize)>> {
    let env = |name: &str| var(name).filter(|v| !v.is_empty());
    let number = |what: &str, v: &str| -> anyhow::Result<usize> {
        v.trim().parse().with_context(|| format!("{what} is {v:?}; expected a whole number"))
    };
    let (index, count, source) = if let Some(flag) = flag {
        let (i, n) = flag
            .split_once('/')
            .with_context(|| format!("--shard is {flag:?}; write it as I/N, e.g. 0/4"))?;
        let n = number("--shard's N", n)?;
        if let Some(count) = count.filter(|&c| c != n) {
            anyhow::bail!(
                "--shard {flag} says {n} shards but --shard-count (or UNLEARN_BENCH_SHARD_COUNT) \
                 says {count}; give one of them"
            );
        }
        (number("--shard's I", i)?, n, "--shard")
    } else if let (Some(id), Some(n)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT"))
    {
        let min =
            env("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| number("SLURM_ARRAY_TASK_MIN", &m))?;
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        anyhow::ensure!(id >= min, "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}");
        (id - min, number("SLURM_ARRAY_TASK_COUNT", &n)?, "SLURM_ARRAY_TASK_ID")
    } else if let Some(i) = env("JOB_COMPLETION_INDEX") {
        let n = count.with_context(|| {
            "JOB_COMPLETION_INDEX is set but the number of shards is not: pass --shard-count N or set UNLEARN_BENCH_SHARD_COUNT"
        })?;
        (number("JOB_COMPLETION_INDEX", &i)?, n, "JOB_COMPLETION_INDEX")
    } else {
        return Ok(None);
    };
    anyhow::ensure!(
        count >= 1 && index < count,
        "{source}: shard {index} of {count} does not exist; shards are numbered 0 to N-1"
    );
    Ok(Some((index, count)))
}

fn run_shard(
    path: &Path,
    exp: &Experiment,
    opts: &RunOptions,
    (index, count): (usize, usize),
) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let outcome = execute(exp, opts).with_context(|| format!("running {}", path.display()))?;
    eprintln!(
        "{}: shard {index}/{count}: {} runs in {:.1}s ({} trained); no results written: run `harness report {}` once every shard is done",
        path.display(),
        outcome.results.len(),
        t0.elapsed().as_secs_f64(),
        outcome.trained(),
        path.display()
    );
    Ok(())
}

/// One cell of `report`: its summary and how many of its runs are missing.
fn report_cell(
    path: &Path,
    exp: &Experiment,
    cache: &Path,
    device: crate::execution::device::Resolved,
    out: &Path,
) -> anyhow::Result<(Vec<SummaryRow>, usize)> {
    anyhow::ensure!(
        cache.is_dir(),
        "{}: no such cache folder; pass --cache or set UNLEARN_BENCH_CACHE",
        cache.display()
    );
    let opts = RunOptions {
        jobs: 1,
        threads: 1,
        cache: cache.to_owned(),
        verbosity: Verbosity::Quiet,
        shard: None,
        device,
    };
    results::fsutil::ensure_writable(out, Folder::Results)?;
    let (outcome, missing) = crate::execution::run::collect(exp, &opts)?;
    anyhow::ensure!(
        !outcome.results.is_empty(),
        "{}: none of its {} runs is in {}; run the experiment (or its shards) first",
        path.display(),
        missing.len(),
        cache.display()
    );
    let (summary, figures) = crate::report::folder::write(out, &outcome, exp)?;
    print!("{}", crate::report::folder::table(&summary));
    eprintln!(
        "{}: {} of {} runs from {}; wrote {}/{{runs,history,summary}}.csv, config.toml and {} figure files",
        path.display(),
        outcome.results.len(),
        outcome.plan.jobs.len(),
        cache.display(),
        out.display(),
        figures
    );
    if !missing.is_empty() {
        eprintln!("missing {} runs (not in the cache yet):", missing.len());
        for job in &missing {
            eprintln!("  {}", job.label());
        }
    }
    Ok((summary, missing.len()))
}

/// Runs every cell of `suite` into its folder, then, for a suite of several cells, writes
/// the leaderboard over them into `out`.
fn run_suite(
    path: &Path,
    suite: &Suite,
    args: &RunArgs,
    verbosity: Verbosity,
    out: &Path,
) -> anyhow::Result<()> {
    let mut summaries = Vec::new();
    for exp in &suite.cells {
        let opts = &options(args, verbosity, path, exp)?;
        if !suite.is_single() && opts.verbosity > Verbosity::Quiet {
            eprintln!("{}: cell {}", path.display(), exp.name);
        }
        let summary = run_experiment(path, exp, opts, &suite.cell_out(out, exp))?;
        summaries.push((exp.name.clone(), summary));
    }
    write_leaderboard(suite, &summaries, out)
}

fn write_leaderboard(
    suite: &Suite,
    summaries: &[(String, Vec<SummaryRow>)],
    out: &Path,
) -> anyhow::Result<()> {
    if suite.is_single() {
        return Ok(());
    }
    // The cells' methods and their roles, each once.
    let mut methods: Vec<results::rows::MethodRow> = Vec::new();
    for exp in &suite.cells {
        let cell: Vec<results::rows::MethodRow> =
            results::rows::read(&suite.cell_out(out, exp).join("methods.csv"))?;
        for m in cell {
            if !methods.iter().any(|o| o.method == m.method && o.params == m.params) {
                methods.push(m);
            }
        }
    }
    let board = results::leaderboard::build(summaries, suite.cells[0].rank_by, &methods);
    let files = results::leaderboard::write(out, &board, &methods)?;
    print!("{}", results::leaderboard::table(&board));
    eprintln!(
        "leaderboard over {} cells: wrote {}",
        summaries.len(),
        files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// How to run `exp`: the command line's settings, its device resolved against the machine
/// (`--device` over the file's `device`), and as many jobs at once as asked, or else one per
/// GPU, or one per core divided by `--threads`.
fn options(
    args: &RunArgs,
    verbosity: Verbosity,
    path: &Path,
    exp: &Experiment,
) -> anyhow::Result<RunOptions> {
    anyhow::ensure!(
        (1..=MAX_WORKERS).contains(&args.threads),
        "--threads is {}; it must be between 1 and {MAX_WORKERS}",
        args.threads
    );
    if let Some(jobs) = args.jobs {
        anyhow::ensure!(
            (1..=MAX_WORKERS).contains(&jobs),
            "--jobs is {jobs}; it must be between 1 and {MAX_WORKERS}"
        );
    }
    let device = resolve_device(args.device.as_deref(), path, exp, verbosity)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(RunOptions {
        jobs: args.jobs.unwrap_or_else(|| device.default_jobs((cores / args.threads).max(1))),
        threads: args.threads,
        cache: args.cache.clone(),
        verbosity,
        shard: None,
        device,
    })
}

/// The device `exp` runs on: `--device` if given, else its file's `device`; says what it
/// chose unless quiet.
fn resolve_device(
    flag: Option<&str>,
    path: &Path,
    exp: &Experiment,
    verbosity: Verbosity,
) -> anyhow::Result<crate::execution::device::Resolved> {
    use crate::execution::device::{Available, resolve};
    use crate::experiment::device::Request;
    let (request, asked_by) = match flag {
        Some(text) => (
            Request::parse(text).map_err(|e| anyhow::anyhow!("--device {e}"))?,
            "--device".to_owned(),
        ),
        None => (exp.device, format!("{}: `device`", path.display())),
    };
    let resolved = resolve(request, Available::probe())
        .map_err(|e| anyhow::anyhow!("{asked_by} = \"{request}\" {e}"))?;
    if verbosity > Verbosity::Quiet {
        eprintln!(
            "device: {} (asked for: {request})",
            crate::execution::device::kind(resolved.device)
        );
    }
    Ok(resolved)
}

fn run_experiment(
    path: &Path,
    exp: &Experiment,
    opts: &RunOptions,
    out: &Path,
) -> anyhow::Result<Vec<SummaryRow>> {
    if let Some(audit) = exp.audit.filter(|a| a.replicates < 2)
        && opts.verbosity > Verbosity::Quiet
    {
        eprintln!(
            "note: {}: [audit] has replicates = {}, so no forgetting quality is computed (F \
             scores populations of at least 2 models per method): its F columns stay empty",
            path.display(),
            audit.replicates
        );
    }
    // An unwritable results folder or cache fails now, not after loading data or training.
    results::fsutil::ensure_writable(out, Folder::Results)?;
    results::fsutil::ensure_writable(&opts.cache, Folder::Cache)?;
    let t0 = std::time::Instant::now();
    let outcome = execute(exp, opts).with_context(|| format!("running {}", path.display()))?;
    let (summary, figures) = crate::report::folder::write(out, &outcome, exp)?;
    print!("{}", crate::report::folder::table(&summary));
    let trained = outcome.trained();
    let from_cache = if trained == 0 {
        " (everything from the cache)".to_owned()
    } else {
        format!(" ({trained} trained)")
    };
    if opts.verbosity == Verbosity::Quiet {
        return Ok(summary);
    }
    let audit = match exp.audit {
        Some(a) if a.shadows > 0 => ", shadows.csv, audit.csv, audit_epsilons.csv, arrays/",
        Some(_) => ", audit.csv, audit_epsilons.csv, arrays/",
        None => "",
    };
    eprintln!(
        "{} runs in {:.1}s{from_cache}; wrote {}/{{runs,history,summary}}.csv{audit}, config.toml and {} figure files; peak memory {}",
        outcome.results.len(),
        t0.elapsed().as_secs_f64(),
        out.display(),
        figures,
        crate::cli::bench::peak_memory_mib().map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment of `vars` only.
    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_shard_comes_from_the_flag_then_slurm_then_kubernetes() {
        assert_eq!(shard(Some("1/4"), None, env(&[])).unwrap(), Some((1, 4)));
        assert_eq!(shard(None, None, env(&[])).unwrap(), None);
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
        ];
        assert_eq!(shard(None, None, env(&slurm)).unwrap(), Some((2, 4)));
        assert_eq!(shard(Some("0/2"), None, env(&slurm)).unwrap(), Some((0, 2)), "the flag wins");
        let k8s = [("JOB_COMPLETION_INDEX", "2")];
        assert_eq!(shard(None, Some(3), env(&k8s)).unwrap(), Some((2, 3)));
        let err = |flag, count, vars: &[(&str, &str)]| {
            format!("{:#}", shard(flag, count, env(vars)).unwrap_err())
        };
        assert!(err(Some("4/4"), None, &[]).contains("shard 4 of 4 does not exist"));
        assert!(err(Some("a/4"), None, &[]).contains("--shard's I is \"a\""));
        assert!(err(Some("1-4"), None, &[]).contains("write it as I/N"));
        assert!(err(None, None, &k8s).contains("pass --shard-count N"));
        assert!(err(Some("1/2"), Some(3), &[]).contains("says 2 shards but --shard-count"));
        assert_eq!(shard(Some("1/3"), Some(3), env(&[])).unwrap(), Some((1, 3)), "they agree");
        let below = [("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "4"), slurm[2]];
        assert!(err(None, None, &below).contains("below SLURM_ARRAY_TASK_MIN 5"));
    }
}
