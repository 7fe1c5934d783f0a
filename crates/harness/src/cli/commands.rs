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
        "{}: {} of {} runs from {}; wrote {}/{{runs,history,summary,methods}}.csv, config.toml, README.md and {} figure files",
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
    let table = results::leaderboard::table(&board);
    crate::report::readme::write_suite(out, suite, &table, &files)?;
    print!("{table}");
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
pub(crate) fn options(
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

pub(crate) fn run_experiment(
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
    let memorization = match exp.memorization {
        Some(_) => ", memorization.csv, memorization_gallery.csv, memorization/",
        None => "",
    };
    eprintln!(
        "{} runs in {:.1}s{from_cache}; wrote {}/{{runs,history,summary,methods}}.csv{audit}{memorization}, config.toml, README.md and {} figure files; peak memory {}",
        outcome.results.len(),
        t0.elapsed().as_secs_f64(),
        out.display(),
        figures,
        crate::cli::bench::peak_memory_mib().map_or("unknown".into(), |m| format!("{m:.0} MiB"))
    );
    Ok(summary)
}
