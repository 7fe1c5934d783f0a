//! `harness EXPERIMENT.toml [--jobs N] [--cache DIR] [--out DIR]`: see the README.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use harness::config::Experiment;
use harness::run::{RunOptions, execute};

/// Runs a machine-unlearning experiment grid and writes its CSV tables.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The experiment file, e.g. experiments/gamma_sweep.toml.
    experiment: PathBuf,
    /// Jobs trained at once [default: the number of cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// libtorch threads per job. Results are reproducible for a given value; 1 is fastest for
    /// this small model when jobs fill the cores.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The model cache folder.
    #[arg(long, env = "UNLEARN_BENCH_CACHE", default_value = "cache")]
    cache: PathBuf,
    /// Output folder [default: results/<experiment name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print only the summary table.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let exp = Experiment::load(&cli.experiment)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = cli.jobs.unwrap_or((cores / cli.threads.max(1)).max(1));
    anyhow::ensure!(
        jobs >= 1 && cli.threads >= 1,
        "--jobs and --threads must be at least 1"
    );
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let opts = RunOptions {
        jobs,
        threads: cli.threads,
        cache: cli.cache.clone(),
        quiet: cli.quiet,
    };
    if !cli.quiet {
        eprintln!(
            "{}: {} jobs ({} seeds), {jobs} at a time x {} libtorch thread(s), cache {}",
            cli.experiment.display(),
            exp.methods.len() * exp.seeds.len(),
            exp.seeds.len(),
            cli.threads,
            cli.cache.display()
        );
    }
    let t0 = std::time::Instant::now();
    let outcome =
        execute(&exp, &opts).with_context(|| format!("running {}", cli.experiment.display()))?;
    let summary = harness::report::write(&out, &outcome, &exp.resolved)?;
    print!("{}", harness::report::table(&summary));
    let trained = outcome.trained();
    let from_cache = if trained == 0 {
        " (everything from the cache)".to_owned()
    } else {
        format!(" ({trained} trained)")
    };
    eprintln!(
        "{} runs in {:.1}s{from_cache}; wrote {}/{{runs.csv,summary.csv,config.toml}}",
        outcome.results.len(),
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
