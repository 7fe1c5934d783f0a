//! The `harness` command line: see the README, or `harness --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::cli::commands::{self, RunArgs};
use harness::execution::progress::Verbosity;

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
        /// Time only this engine [default: both].
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(methods::Engine::ALL.map(methods::Engine::name)))]
        engine: Option<String>,
        /// Time only with this many threads [default: 1, then every core].
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Write an experiment's CSV files and figures from whatever runs the cache holds,
    /// training nothing (after sharded runs); lists the runs that are missing and then exits
    /// 1 (0 when none is).
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
    /// Score populations trained anywhere: the NeurIPS 2023 competition's forgetting quality
    /// F of an unlearned population against a retrained one, with its 95% interval (examples
    /// and models), and F_ref with a second retrained population. Arrays in .npy or .npz
    /// files: [models, examples] confidences, or [models, examples, classes] logits with
    /// --labels.
    Score {
        /// The unlearned models' outputs: FILE.npy, FILE.npz (its array 'unlearned') or
        /// FILE.npz:NAME.
        #[arg(long)]
        unlearned: String,
        /// The retrained models' outputs, the same examples in the same order.
        #[arg(long)]
        retrained: String,
        /// A second, independent retrained population: its score against --retrained is
        /// F_ref, the best F at this population size.
        #[arg(long)]
        reference: Option<String>,
        /// A second unlearned population (e.g. another method's), scored against the same
        /// --retrained: the difference in F with its interval, paired over the same
        /// examples and halves.
        #[arg(long)]
        versus: Option<String>,
        /// The examples' labels ([examples] integers), when the arrays are logits.
        #[arg(long)]
        labels: Option<String>,
        /// Write score.csv and the per-example epsilons (.npy) to this folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Bootstrap resamples of the examples.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..))]
        resamples: u64,
        /// Times F is recomputed on a random half of each population (the model noise).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..))]
        splits: u64,
        /// The seed of the resampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Mean remain-set accuracy of the unlearned and the retrained models,
        /// UNLEARNED,RETRAINED: with --test-accuracy, the competition's final score.
        #[arg(long, requires = "test_accuracy")]
        remain_accuracy: Option<String>,
        /// Mean test-set accuracy of the unlearned and the retrained models, UNLEARNED,RETRAINED.
        #[arg(long, requires = "remain_accuracy")]
        test_accuracy: Option<String>,
        /// F against N: F (and F_ref) at these sub-population sizes, e.g. 16,32, each over
        /// --draws random draws of that many models from each population.
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// Random draws per size of --sizes.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(2..))]
        draws: u64,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = harness::execution::interrupt::install() {
        eprintln!(
            "warning: cannot handle SIGINT and SIGTERM ({e:#}): an interrupted run may leave external commands running"
        );
    }
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let result = match &cli.command {
        None => {
            let path = cli.experiment.as_ref().expect("clap requires it without a subcommand");
            let var = |name: &str| std::env::var(name).ok();
            harness::cli::shard::shard(cli.shard.as_deref(), cli.shard_count, var).and_then(
                |shard| commands::run(path, cli.out.as_deref(), shard, &cli.run, verbosity),
            )
        }
        Some(Command::Check { experiment, baseline, update_baseline, out, run }) => {
            harness::cli::check::check(
                experiment,
                baseline,
                *update_baseline,
                out.as_deref(),
                run,
                verbosity,
            )
        }
        Some(Command::Report { experiment, out, cache, device }) => {
            commands::report(experiment, out.as_deref(), cache, device.as_deref())
        }
        Some(Command::Plot { dir }) => commands::plot(dir),
        Some(Command::Bench { data, epochs, python, no_pytorch, no_sweep, engine, threads }) => {
            let python = if *no_pytorch { None } else { python.clone() };
            let engines = methods::Engine::ALL
                .into_iter()
                .filter(|e| engine.as_deref().is_none_or(|n| n == e.name()))
                .collect();
            harness::cli::bench::command(data, *epochs, python, !no_sweep, engines, *threads)
        }
        Some(Command::Score {
            unlearned,
            retrained,
            reference,
            versus,
            labels,
            out,
            resamples,
            splits,
            seed,
            remain_accuracy,
            test_accuracy,
            sizes,
            draws,
        }) => {
            use harness::cli::score::{Accuracies, Request, Source, score};
            let accuracies = match (remain_accuracy, test_accuracy) {
                (Some(r), Some(t)) => Accuracies::parse(r, t).map(Some),
                _ => Ok(None),
            };
            accuracies.and_then(|accuracies| {
                score(&Request {
                    unlearned: Source::parse(unlearned, "unlearned"),
                    retrained: Source::parse(retrained, "retrained"),
                    reference: reference.as_deref().map(|r| Source::parse(r, "reference")),
                    versus: versus.as_deref().map(|v| Source::parse(v, "versus")),
                    labels: labels.as_deref().map(|l| Source::parse(l, "labels")),
                    out: out.clone(),
                    noise: harness::report::quality::Noise {
                        resamples: *resamples as usize,
                        splits: *splits as usize,
                        seed: *seed,
                    },
                    accuracies,
                    sizes: sizes.clone(),
                    draws: *draws as usize,
                })
            })
        }
        Some(Command::Regenerate { experiments, results, run }) => {
            commands::regenerate(experiments, results, run, verbosity)
        }
    };
    harness::execution::interrupt::wait_if_interrupted();
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        // 1 is kept for a failed check; every error (bad input, missing data, I/O) is 2.
        ExitCode::from(2)
    })
}
