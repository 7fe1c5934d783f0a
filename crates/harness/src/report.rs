//! The public interface of a run: CSV files (and the resolved configuration) in the output
//! folder, and the summary table on stdout.
//!
//! - `runs.csv`: one row per run (method, parameters, seed), accuracies in %, the final
//!   epoch's mean training CE and MI, training seconds, and the cache key of the model;
//! - `summary.csv`: one row per method and parameter set, means and sample standard deviations
//!   (n - 1; empty for a single seed) over seeds;
//! - `history.csv`: one row per unlearning run (every method but `original`) per epoch: the
//!   accuracies after that epoch and its mean training loss, CE and MI;
//! - `config.toml`: the experiment with every default written out.

use std::path::Path;

use crate::fsutil::write_atomic;
use crate::run::{Outcome, RunResult};

pub const RUNS_HEADER: [&str; 11] = [
    "method",
    "gamma",
    "epochs",
    "seed",
    "remain_acc",
    "forget_acc",
    "test_acc",
    "ce",
    "mi",
    "seconds",
    "checkpoint",
];

pub const HISTORY_HEADER: [&str; 12] = [
    "method",
    "gamma",
    "epochs",
    "seed",
    "epoch",
    "remain_acc",
    "forget_acc",
    "test_acc",
    "loss",
    "ce",
    "mi",
    "checkpoint",
];

pub const SUMMARY_HEADER: [&str; 14] = [
    "method",
    "gamma",
    "epochs",
    "n_seeds",
    "remain_acc_mean",
    "remain_acc_std",
    "forget_acc_mean",
    "forget_acc_std",
    "test_acc_mean",
    "test_acc_std",
    "mi_mean",
    "mi_std",
    "seconds_mean",
    "checkpoints",
];

/// One row of `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub method: String,
    pub gamma: Option<f64>,
    pub epochs: usize,
    pub n_seeds: usize,
    pub remain: Stat,
    pub forget: Stat,
    pub test: Stat,
    pub mi: Option<Stat>,
    pub seconds_mean: f64,
    /// Cache keys of the runs, in seed order.
    pub checkpoints: Vec<String>,
}

/// Mean and sample standard deviation (`None` for a single value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
}

impl Stat {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1)
            .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Self { mean, std }
    }
}

fn final_stats(r: &RunResult) -> (Option<f64>, Option<f64>) {
    let last = r.record.history.last();
    (last.map(|e| e.ce), last.and_then(|e| e.mi))
}

/// Groups runs by method and parameters, in plan order.
pub fn summarize(results: &[RunResult]) -> Vec<SummaryRow> {
    let mut groups: Vec<(&methods::Method, Vec<&RunResult>)> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|(m, _)| **m == r.job.method) {
            Some((_, runs)) => runs.push(r),
            None => groups.push((&r.job.method, vec![r])),
        }
    }
    groups
        .into_iter()
        .map(|(method, runs)| {
            let stat = |f: &dyn Fn(&RunResult) -> f64| {
                Stat::of(&runs.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            let mis: Vec<f64> = runs.iter().filter_map(|r| final_stats(r).1).collect();
            SummaryRow {
                method: method.name().to_owned(),
                gamma: method.gamma(),
                epochs: method.epochs(),
                n_seeds: runs.len(),
                remain: stat(&|r| r.accuracy.remain),
                forget: stat(&|r| r.accuracy.forget),
                test: stat(&|r| r.accuracy.test),
                mi: (!mis.is_empty()).then(|| Stat::of(&mis)),
                seconds_mean: stat(&|r| r.record.seconds).mean,
                checkpoints: runs.iter().map(|r| r.job.key.clone()).collect(),
            }
        })
        .collect()
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn csv_bytes(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.write_record(&row)?;
    }
    Ok(w.into_inner()?)
}

pub fn runs_csv(results: &[RunResult]) -> anyhow::Result<Vec<u8>> {
    csv_bytes(
        &RUNS_HEADER,
        results.iter().map(|r| {
            let (ce, mi) = final_stats(r);
            vec![
                r.job.method.name().to_owned(),
                opt(r.job.method.gamma()),
                r.job.method.epochs().to_string(),
                r.job.seed.to_string(),
                r.accuracy.remain.to_string(),
                r.accuracy.forget.to_string(),
                r.accuracy.test.to_string(),
                opt(ce),
                opt(mi),
                format!("{:.2}", r.record.seconds),
                r.job.key.clone(),
            ]
        }),
    )
}

pub fn history_csv(results: &[RunResult]) -> anyhow::Result<Vec<u8>> {
    csv_bytes(
        &HISTORY_HEADER,
        results.iter().flat_map(|r| {
            r.record.history.iter().filter_map(move |e| {
                let m = e.metrics?;
                Some(vec![
                    r.job.method.name().to_owned(),
                    opt(r.job.method.gamma()),
                    r.job.method.epochs().to_string(),
                    r.job.seed.to_string(),
                    e.epoch.to_string(),
                    m.remain.to_string(),
                    m.forget.to_string(),
                    m.test.to_string(),
                    e.loss.to_string(),
                    e.ce.to_string(),
                    opt(e.mi),
                    r.job.key.clone(),
                ])
            })
        }),
    )
}

pub fn summary_csv(rows: &[SummaryRow]) -> anyhow::Result<Vec<u8>> {
    csv_bytes(
        &SUMMARY_HEADER,
        rows.iter().map(|s| {
            vec![
                s.method.clone(),
                opt(s.gamma),
                s.epochs.to_string(),
                s.n_seeds.to_string(),
                s.remain.mean.to_string(),
                opt(s.remain.std),
                s.forget.mean.to_string(),
                opt(s.forget.std),
                s.test.mean.to_string(),
                opt(s.test.std),
                opt(s.mi.map(|m| m.mean)),
                opt(s.mi.and_then(|m| m.std)),
                format!("{:.2}", s.seconds_mean),
                s.checkpoints.join(" "),
            ]
        }),
    )
}

/// Writes `runs.csv`, `history.csv`, `summary.csv` and `config.toml` into `out`, each
/// atomically.
pub fn write(
    out: &Path,
    outcome: &Outcome,
    resolved_config: &str,
) -> anyhow::Result<Vec<SummaryRow>> {
    let summary = summarize(&outcome.results);
    write_atomic(&out.join("runs.csv"), &runs_csv(&outcome.results)?)?;
    write_atomic(&out.join("history.csv"), &history_csv(&outcome.results)?)?;
    write_atomic(&out.join("summary.csv"), &summary_csv(&summary)?)?;
    let header = "# The experiment as run, every default written out (written by harness).\n";
    write_atomic(
        &out.join("config.toml"),
        format!("{header}{resolved_config}").as_bytes(),
    )?;
    Ok(summary)
}

/// The summary as a plain-text table: mean ± std over seeds.
pub fn table(rows: &[SummaryRow]) -> String {
    let pm = |s: &Stat| match s.std {
        Some(std) => format!("{:6.2} ± {:<5.2}", s.mean, std),
        None => format!("{:6.2}        ", s.mean),
    };
    let mut out = format!(
        "{:<11} {:>5} {:>6} {:>5}  {:<15} {:<15} {:<15} {:>8}\n",
        "method", "gamma", "epochs", "seeds", "remain %", "forget %", "test %", "MI"
    );
    for r in rows {
        out += &format!(
            "{:<11} {:>5} {:>6} {:>5}  {} {} {} {:>8}\n",
            r.method,
            r.gamma.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
            r.epochs,
            r.n_seeds,
            pm(&r.remain),
            pm(&r.forget),
            pm(&r.test),
            r.mi.map(|m| format!("{:.4}", m.mean))
                .unwrap_or_else(|| "-".into()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_uses_the_sample_standard_deviation() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.std.unwrap() - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(
            Stat::of(&[7.0]),
            Stat {
                mean: 7.0,
                std: None
            }
        );
    }
}
