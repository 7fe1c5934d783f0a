//! The `harness` command line: see the README, or `harness --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use harness::config::{Experiment, Suite};
use harness::fsutil::Folder;
use harness::progress::Verbosity;
use harness::run::{RunOptions, execute};

/// Runs machine-unlearning experiment grids, caching every trained model, and writes CSV
/// tables and figures.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The experiment file, e.g. experiments/gamma_sweep.toml.
    #[arg(required = true)]
    experiment: Option<PathBuf>,
    /// Output folder [default: results/<experiment name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only shard I of N (I from 0): the jobs whose index among the sorted job keys is I
    /// mod N, and the original models they need. Writes no results: run `harness report`
    /// when every shard is done. Defaults to Slurm's SLURM_ARRAY_TASK_ID (minus
    /// SLURM_ARRAY_TASK_MIN) of SLURM_ARRAY_TASK_COUNT, or to Kubernetes'
    /// JOB_COMPLETION_INDEX of --shard-count, when they are set.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// The number of shards, for JOB_COMPLETION_INDEX.
    #[arg(long, env = "UNLEARN_BENCH_SHARD_COUNT", value_name = "N")]
    shard_count: Option<usize>,
    #[command(flatten)]
    run: RunArgs,
    /// Print only the summary table.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print every epoch's losses and accuracies.
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Redraw the figures of a results folder from its CSV files alone (trains nothing).
    Plot {
        /// A results folder, e.g. results/gamma_sweep.
        dir: PathBuf,
    },
    /// Run an experiment (reusing the cache) and compare its `[check]` metrics with a
    /// baseline: exit 0 if all pass, 1 if any fails, 2 if the input is unusable.
    Check {
        /// The experiment file; it needs a [check] section.
        experiment: PathBuf,
        /// The baseline CSV, e.g. results/ci/baseline.csv.
        #[arg(long)]
        baseline: PathBuf,
        /// Rewrite the baseline from the current results instead of comparing.
        #[arg(long)]
        update_baseline: bool,
        /// Output folder [default: results/<experiment name>].
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Measure speed: seconds per training epoch, MI-unlearn epoch and evaluation for each
    /// engine with one thread and with all cores, PyTorch's time for the same work measured in
    /// the same run, and a small sweep with one job at a time against one job per core.
    Bench {
        /// Where the MNIST files are.
        #[arg(long, default_value = "data/MNIST/raw")]
        data: PathBuf,
        /// Timed epochs per measurement, after one warm-up epoch.
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        /// Python with torch 2.13 (scripts/setup records its venv's).
        #[arg(long, env = "UNLEARN_BENCH_PYTHON")]
        python: Option<PathBuf>,
        /// Skip the PyTorch comparison.
        #[arg(long)]
        no_pytorch: bool,
        /// Skip the sweep comparison.
        #[arg(long)]
        no_sweep: bool,
    },
    /// Write an experiment's CSV files and figures from whatever runs the cache holds,
    /// training nothing (after sharded runs); lists the runs that are missing.
    Report {
        /// The experiment file.
        experiment: PathBuf,
        /// Output folder [default: results/<experiment name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The model cache folder.
        #[arg(long, env = "UNLEARN_BENCH_CACHE", default_value = "cache")]
        cache: PathBuf,
        /// The device the runs were trained on (it is in their keys), as for a run.
        #[arg(long, env = "UNLEARN_BENCH_DEVICE")]
        device: Option<String>,
    },
    /// Run every experiment file under a folder and rewrite its results folder, reusing the
    /// cache.
    Regenerate {
        /// Where the experiment files are (searched recursively for *.toml).
        #[arg(default_value = "experiments")]
        experiments: PathBuf,
        /// Where the results folders go.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// Jobs trained at once [default: the number of cores divided by --threads].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// libtorch threads per job. Results are reproducible for a given value; 1 is fastest
    /// for this small model when jobs fill the cores.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The model cache folder.
    #[arg(long, env = "UNLEARN_BENCH_CACHE", default_value = "cache")]
    cache: PathBuf,
    /// Where to train: auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N or mps;
    /// overrides the experiment's `device`.
    #[arg(long, env = "UNLEARN_BENCH_DEVICE")]
    device: Option<String>,
}

/// The most jobs or libtorch threads a run may ask for (each is an OS thread).
const MAX_WORKERS: usize = 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Check { experiment, baseline, update_baseline, out, run }) => {
            check(experiment, baseline, *update_baseline, out.as_deref(), run, verbosity(&cli))
        }
        _ => run(&cli).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        // 1 is kept for a failed check; every error (bad input, missing data, I/O) is 2.
        ExitCode::from(2)
    })
}

fn verbosity(cli: &Cli) -> Verbosity {
    match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    }
}

fn check(
    path: &Path,
    baseline: &Path,
    update: bool,
    out: Option<&Path>,
    args: &RunArgs,
    verbosity: Verbosity,
) -> anyhow::Result<ExitCode> {
    let exp = Experiment::load(path)?;
    let Some(spec) = &exp.check else {
        anyhow::bail!(
            "{}: no [check] section: add one naming the metrics and tolerances",
            path.display()
        );
    };
    // Read the baseline before the (possibly long) run, so a bad one fails at once.
    let base = if update { None } else { Some(harness::check::read_baseline(baseline)?) };
    let out = out.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let summary = run_experiment(path, &exp, &options(args, verbosity, path, &exp)?, &out)?;
    let now = harness::check::current(&summary, spec);
    match base {
        None => {
            harness::fsutil::write_atomic(baseline, &harness::check::baseline_csv(&now)?)?;
            eprintln!("wrote {} ({} rows)", baseline.display(), now.len());
            Ok(ExitCode::SUCCESS)
        }
        Some(base) => {
            let verdicts = harness::check::compare(&now, &base, spec, baseline)?;
            print!("{}", harness::check::table(&verdicts));
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

fn run(cli: &Cli) -> anyhow::Result<()> {
    let verbosity = verbosity(cli);
    match &cli.command {
        Some(Command::Check { .. }) => unreachable!("handled in main"),
        None => {
            let path = cli.experiment.as_ref().expect("clap requires it without a subcommand");
            let suite = Suite::load(path)?;
            let out = cli.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
            match shard(cli.shard.as_deref(), cli.shard_count)? {
                Some(shard) => suite.cells.iter().try_for_each(|exp| {
                    let mut opts = options(&cli.run, verbosity, path, exp)?;
                    opts.shard = Some(shard);
                    run_shard(path, exp, &opts, shard)
                }),
                None => run_suite(path, &suite, &cli.run, verbosity, &out),
            }
        }
        Some(Command::Report { experiment, out, cache, device }) => {
            let suite = Suite::load(experiment)?;
            let out = out.clone().unwrap_or_else(|| PathBuf::from("results").join(&suite.name));
            let mut summaries = Vec::new();
            for exp in &suite.cells {
                let cell_out = suite.cell_out(&out, exp);
                let device = resolve_device(device.as_deref(), experiment, exp, Verbosity::Quiet)?;
                summaries
                    .push((exp.name.clone(), report(experiment, exp, cache, device, &cell_out)?));
            }
            write_leaderboard(&suite, &summaries, &out)
        }
        Some(Command::Plot { dir }) => {
            // A suite's folder holds its leaderboard; a cell's (or a plain experiment's) its runs.
            let written = if dir.join("leaderboard.csv").exists() && !dir.join("runs.csv").exists()
            {
                harness::plot::plot_leaderboard(dir)?
            } else {
                harness::plot::plot_dir(dir)?
            };
            anyhow::ensure!(
                !written.is_empty(),
                "{}: these runs call for no figure (see `harness plot --help`)",
                dir.display()
            );
            for path in written {
                println!("{}", path.display());
            }
            Ok(())
        }
        Some(Command::Bench { data, epochs, python, no_pytorch, no_sweep }) => {
            bench(data, *epochs, if *no_pytorch { None } else { python.clone() }, !no_sweep)
        }
        Some(Command::Regenerate { experiments, results, run }) => {
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
                if entry.file_type().is_file()
                    && entry.path().extension().is_some_and(|e| e == "toml")
                {
                    all.push((entry.path().to_owned(), Suite::load(entry.path())?));
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
                run_suite(path, suite, run, verbosity, &results.join(&suite.name))?;
            }
            Ok(())
        }
    }
}

fn bench(data: &Path, epochs: usize, python: Option<PathBuf>, sweep: bool) -> anyhow::Result<()> {
    use harness::bench;
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
    Ok(())
}

/// The shard to run: `--shard I/N`, else the array index of a Slurm or Kubernetes job.
fn shard(flag: Option<&str>, count: Option<usize>) -> anyhow::Result<Option<(usize, usize)>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let number = |what: &str, v: &str| -> anyhow::Result<usize> {
        v.trim().parse().with_context(|| format!("{what} is {v:?}; expected a whole number"))
    };
    let (index, count, source) = if let Some(flag) = flag {
        let (i, n) = flag
            .split_once('/')
            .with_context(|| format!("--shard is {flag:?}; write it as I/N, e.g. 0/4"))?;
        (number("--shard's I", i)?, number("--shard's N", n)?, "--shard")
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

fn report(
    path: &Path,
    exp: &Experiment,
    cache: &Path,
    device: harness::device::Resolved,
    out: &Path,
) -> anyhow::Result<Vec<harness::report::SummaryRow>> {
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
    harness::fsutil::ensure_writable(out, Folder::Results)?;
    let (outcome, missing) = harness::run::collect(exp, &opts)?;
    anyhow::ensure!(
        !outcome.results.is_empty(),
        "{}: none of its {} runs is in {}; run the experiment (or its shards) first",
        path.display(),
        missing.len(),
        cache.display()
    );
    let summary = harness::report::write(out, &outcome, &exp.resolved)?;
    let figures = harness::plot::plot_dir(out)?;
    print!("{}", harness::report::table(&summary));
    eprintln!(
        "{}: {} of {} runs from {}; wrote {}/{{runs,history,summary}}.csv, config.toml and {} figure files",
        path.display(),
        outcome.results.len(),
        outcome.plan.jobs.len(),
        cache.display(),
        out.display(),
        figures.len()
    );
    if !missing.is_empty() {
        eprintln!("missing {} runs (not in the cache yet):", missing.len());
        for job in &missing {
            eprintln!("  {}", job.label());
        }
    }
    Ok(summary)
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
    summaries: &[(String, Vec<harness::report::SummaryRow>)],
    out: &Path,
) -> anyhow::Result<()> {
    if suite.is_single() {
        return Ok(());
    }
    let rank_by = suite.cells[0].rank_by;
    let board = harness::leaderboard::build(summaries, rank_by);
    let files = harness::leaderboard::write(out, &board, rank_by)?;
    print!("{}", harness::leaderboard::table(&board));
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
) -> anyhow::Result<harness::device::Resolved> {
    use harness::device::{Available, Request, resolve};
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
        eprintln!("device: {} (asked for: {request})", harness::device::kind(resolved.device));
    }
    Ok(resolved)
}

fn run_experiment(
    path: &Path,
    exp: &Experiment,
    opts: &RunOptions,
    out: &Path,
) -> anyhow::Result<Vec<harness::report::SummaryRow>> {
    if opts.verbosity > Verbosity::Quiet {
        eprintln!(
            "{}: {} jobs ({} seeds), {} at a time x {} libtorch thread(s), cache {}",
            path.display(),
            exp.methods.len() * exp.seeds.len(),
            exp.seeds.len(),
            opts.jobs,
            opts.threads,
            opts.cache.display()
        );
    }
    // An unwritable results folder or cache fails now, not after loading data or training.
    harness::fsutil::ensure_writable(out, Folder::Results)?;
    harness::fsutil::ensure_writable(&opts.cache, Folder::Cache)?;
    let t0 = std::time::Instant::now();
    let outcome = execute(exp, opts).with_context(|| format!("running {}", path.display()))?;
    let summary = harness::report::write(out, &outcome, &exp.resolved)?;
    let figures = harness::plot::plot_dir(out)?;
    print!("{}", harness::report::table(&summary));
    let trained = outcome.trained();
    let from_cache = if trained == 0 {
        " (everything from the cache)".to_owned()
    } else {
        format!(" ({trained} trained)")
    };
    if opts.verbosity == Verbosity::Quiet {
        return Ok(summary);
    }
    eprintln!(
        "{} runs in {:.1}s{from_cache}; wrote {}/{{runs,history,summary}}.csv, config.toml and {} figure files; peak memory {}",
        outcome.results.len(),
        t0.elapsed().as_secs_f64(),
        out.display(),
        figures.len(),
        harness::bench::peak_memory_mib().map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    Ok(summary)
}
