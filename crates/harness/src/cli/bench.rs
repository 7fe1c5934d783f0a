//! `harness bench`: seconds per training epoch, per MI-unlearn epoch and per full evaluation,
//! for each engine and thread count, measured in this process; the same work as a
//! best-practice PyTorch loop (`scripts/bench_pytorch.py`), measured in the same run; and the
//! wall time and peak memory of a small sweep with one job at a time and one job per core.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Context as _;
use data::dataset::LoadOptions;
use data::split::{ForgetSpec, forget_split};
use methods::catalog::{mi_unlearn::MiUnlearn, supervised::Original};
use methods::engine::evaluate;
use methods::{AnyMethod, Context, Data, Engine, Images, SparseRows};
use model::{Classifier, ClassifierSpec};
use results::rows::RunRow;

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub data_dir: PathBuf,
    /// Timed epochs per measurement (after one warm-up epoch).
    pub epochs: usize,
    pub threads: Vec<usize>,
    pub engines: Vec<Engine>,
    /// Python with torch 2.13 for the PyTorch side; `None` skips it.
    pub python: Option<PathBuf>,
    pub pytorch_script: PathBuf,
}

/// One measured line.
#[derive(Debug, Clone)]
pub struct Measure {
    pub work: &'static str,
    pub engine: String,
    pub threads: usize,
    pub seconds: f64,
    pub pytorch: Option<f64>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Times every epoch after the first of `method`; returns (median seconds, the model).
fn epoch_times(method: &AnyMethod, ctx: &Context<'_>) -> (f64, Classifier) {
    let mut times = Vec::new();
    let mut last = Instant::now();
    let model = method.train(ctx, &mut |epoch, _, _| {
        let now = Instant::now();
        if epoch > 1 {
            times.push((now - last).as_secs_f64());
        }
        last = now;
    });
    (median(times), model.expect("a built-in method cannot fail"))
}

pub fn micro(opts: &BenchOptions, log: &dyn Fn(&str)) -> anyhow::Result<Vec<Measure>> {
    let mnist = data::dataset::load(&opts.data_dir, &LoadOptions::default())?;
    let spec = ForgetSpec::class(3, 0.75);
    let split = forget_split(&mnist.train.labels, &spec, &mut data::rng::stream(0, "split"))?;
    let data = Data::new(&Images::new(std::sync::Arc::new(mnist)), &split, tch::Device::Cpu);
    let mlp = ClassifierSpec::default();
    let sparse = SparseRows::new(&data.images().dataset().train.features, mlp.input);
    log(&format!(
        "training images: {:.1} of {} pixels differ from the background value {} (the native engine's first-layer work)",
        sparse.mean_nonzero(),
        mlp.input,
        sparse.background()
    ));
    let mut out = Vec::new();
    for &threads in &opts.threads {
        tch::set_num_threads(threads as i32);
        let pytorch = match &opts.python {
            Some(python) => {
                Some(pytorch(python, &opts.pytorch_script, &opts.data_dir, threads, opts.epochs)?)
            }
            None => None,
        };
        let py = |key: &str| pytorch.as_ref().and_then(|p| p[key].as_f64());
        for &engine in &opts.engines {
            log(&format!("timing the {} engine with {threads} thread(s)...", engine.name()));
            let (data, spec, device) = (&data, &mlp, tch::Device::Cpu);
            let mut ctx = Context::new(data, spec, 0, device, engine);
            let epochs = methods::Count::try_from(opts.epochs as i64 + 1)
                .map_err(|e| anyhow::anyhow!("--epochs {e}"))?;
            let train = AnyMethod::new(Original { epochs, ..Original::default() });
            let (train_s, original) = epoch_times(&train, &ctx);
            ctx.original = Some(&original);
            let mi = AnyMethod::new(MiUnlearn { epochs, ..MiUnlearn::default() });
            let (mi_s, _) = epoch_times(&mi, &ctx);
            let name = engine.name().to_owned();
            out.push(Measure {
                work: "training epoch",
                engine: name.clone(),
                threads,
                seconds: train_s,
                pytorch: py("train_epoch_s"),
            });
            out.push(Measure {
                work: "MI-unlearn epoch",
                engine: name.clone(),
                threads,
                seconds: mi_s,
                pytorch: py("mi_epoch_s"),
            });
            let eval_s = median(
                (0..6)
                    .map(|_| {
                        let t0 = Instant::now();
                        evaluate(&original, data, engine);
                        t0.elapsed().as_secs_f64()
                    })
                    .skip(1)
                    .collect(),
            );
            out.push(Measure {
                work: "evaluation",
                engine: name,
                threads,
                seconds: eval_s,
                pytorch: py("eval_s"),
            });
        }
        let gflops = sgemm_gflops();
        out.push(Measure {
            work: "epoch matmul limit",
            engine: format!("{gflops:.0}GF/s"),
            threads,
            seconds: EPOCH_GFLOP / gflops,
            pytorch: None,
        });
    }
    Ok(out)
}

fn pytorch(
    python: &Path,
    script: &Path,
    data_dir: &Path,
    threads: usize,
    epochs: usize,
) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(python)
        .arg(script)
        .arg("--data")
        .arg(data_dir)
        .args(["--threads", &threads.to_string(), "--epochs", &epochs.to_string()])
        .output()
        .with_context(|| {
            format!("cannot run {} (run scripts/setup, or pass --python)", python.display())
        })?;
    anyhow::ensure!(
        output.status.success(),
        "{} {} failed: {}",
        python.display(),
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .with_context(|| format!("unexpected output from {}: {stdout}", script.display()))
}

/// One sweep run: wall seconds, peak memory (MiB) and its runs.csv without the wall-time
/// columns (`rte`, `rte_speedup`).
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub jobs: usize,
    pub seconds: f64,
    pub peak_mib: Option<f64>,
    /// `runs.csv`, times left out.
    pub numbers: Vec<RunRow>,
}

/// A small sweep of independent jobs (4 seeds x (original + 2 MI-unlearn gammas)), run from an
/// empty cache with `jobs` jobs at a time.
pub fn sweep(
    binary: &Path,
    data_dir: &Path,
    engine: Engine,
    jobs: usize,
) -> anyhow::Result<SweepRun> {
    let dir =
        std::env::temp_dir().join(format!("unlearn-bench-sweep-{}-{jobs}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let exp = dir.join("bench_sweep.toml");
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("{}: missing; run scripts/setup", data_dir.display()))?;
    std::fs::write(
        &exp,
        format!(
            "seeds = [0, 1, 2, 3]\nengine = \"{}\"\n[data]\ndir = {:?}\n[forget]\nclass = 3\nfraction = 0.75\n\
             [methods.original]\nepochs = 2\n[methods.mi_unlearn]\ngamma = [2, 4]\nepochs = 2\n",
            engine.name(),
            data_dir.display().to_string()
        ),
    )?;
    let t0 = Instant::now();
    let output = Command::new(binary)
        .arg(&exp)
        .args(["--jobs", &jobs.to_string(), "--threads", "1", "--cache"])
        .arg(dir.join("cache"))
        .arg("--out")
        .arg(dir.join("out"))
        .output()?;
    let seconds = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "the sweep failed: {stderr}");
    let peak_mib = stderr.lines().find_map(|l| {
        l.split_once("peak memory ").and_then(|(_, r)| r.split_whitespace().next()?.parse().ok())
    });
    // Every column but the times, which differ from run to run.
    let numbers = results::rows::read::<RunRow>(&dir.join("out/runs.csv"))?
        .into_iter()
        .map(|r| RunRow { rte: 0.0, rte_speedup: None, ..r })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(SweepRun { jobs, seconds, peak_mib, numbers })
}

/// The measurements as a table.
pub fn table(measures: &[Measure]) -> String {
    let mut out = format!(
        "{:<18} {:<9} {:>7} {:>10} {:>12} {:>14}\n",
        "work", "engine", "threads", "ours (s)", "PyTorch (s)", "PyTorch / ours"
    );
    for m in measures {
        let (py, ratio) = match m.pytorch {
            Some(p) => (format!("{p:.3}"), format!("{:.2}x", p / m.seconds)),
            None => ("-".into(), "-".into()),
        };
        out += &format!(
            "{:<18} {:<9} {:>7} {:>10.3} {:>12} {:>14}\n",
            m.work, m.engine, m.threads, m.seconds, py, ratio
        );
    }
    out
}

/// Peak resident memory of this process, from `/proc/self/status` (Linux).
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// FLOPs of one training epoch (60,000 images, batch 64) of the 784-128-64-10 MLP: forward,
/// weight gradients, and input gradients of the two upper layers.
pub const EPOCH_GFLOP: f64 =
    60_000.0 * 2.0 * (2.0 * 109_184.0 + (128.0 * 64.0 + 64.0 * 10.0)) / 1e9;

/// Single-precision matmul throughput at the shape that dominates training (a batch of 64
/// through the first layer), in GFLOP/s with the current thread count.
pub fn sgemm_gflops() -> f64 {
    let opts = (tch::Kind::Float, tch::Device::Cpu);
    let (x, w) = (tch::Tensor::randn([64, 784], opts), tch::Tensor::randn([128, 784], opts));
    let reps = 2000;
    let _ = x.mm(&w.tr());
    let t0 = Instant::now();
    for _ in 0..reps {
        let _ = x.mm(&w.tr());
    }
    let seconds = t0.elapsed().as_secs_f64() / reps as f64;
    2.0 * 64.0 * 784.0 * 128.0 / seconds / 1e9
}

/// Measures speed (see `harness bench --help`), printing what it finds.
pub fn command(
    data: &Path,
    epochs: usize,
    python: Option<PathBuf>,
    with_sweep: bool,
    engines: Vec<Engine>,
    only_threads: Option<usize>,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(epochs >= 1, "--epochs must be at least 1");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match only_threads {
        Some(n) if (1..=1024).contains(&n) => vec![n],
        Some(n) => anyhow::bail!("--threads is {n}; it must be between 1 and 1024"),
        None if cores > 1 => vec![1, cores],
        None => vec![1],
    };
    if python.is_none() {
        eprintln!(
            "no PyTorch comparison: pass --python or set UNLEARN_BENCH_PYTHON (scripts/setup does)"
        );
    }
    let opts = BenchOptions {
        data_dir: data.to_owned(),
        epochs,
        threads,
        engines: engines.clone(),
        python,
        pytorch_script: PathBuf::from("scripts/bench_pytorch.py"),
    };
    let measures = micro(&opts, &|m| eprintln!("{m}"))?;
    print!("{}", table(&measures));
    if with_sweep {
        let binary = std::env::current_exe().context("cannot find the harness binary")?;
        for engine in engines {
            eprintln!("timing a 12-job sweep with the {} engine...", engine.name());
            let one = sweep(&binary, data, engine, 1)?;
            let all = sweep(&binary, data, engine, cores)?;
            let mib = |r: &SweepRun| r.peak_mib.map_or("?".into(), |m| format!("{m:.0} MiB"));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn the_table_gives_pytorchs_time_over_ours() {
        let t = table(&[Measure {
            work: "evaluation",
            engine: "-".into(),
            threads: 1,
            seconds: 0.5,
            pytorch: Some(1.0),
        }]);
        assert!(t.lines().nth(1).unwrap().ends_with("2.00x"), "{t}");
    }
}
