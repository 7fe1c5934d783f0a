//! The public interface of a run: CSV files (and the resolved configuration) in the output
//! folder, and the summary table on stdout.
//!
//! - `runs.csv`: one row per run (method, parameters, seed), accuracies in %, `ua` (100 -
//!   forget accuracy), the membership-inference attack (`mia`, `mia_attack_acc`: see
//!   `methods::mia`), the final epoch's mean training CE and MI, the gaps to retrain on the
//!   same seed and their mean `avg_gap`, the training's wall seconds `rte` and retrain's
//!   speed-up over it, and the cache key of the model;
//! - `summary.csv`: one row per method and parameter set, means and sample standard deviations
//!   (n - 1; empty for a single seed) over seeds;
//! - `history.csv`: one row per unlearning run (every method but `original`) per epoch: the
//!   accuracies after that epoch and its mean training loss, CE and MI;
//! - `config.toml`: the experiment with every default written out.

use std::path::Path;

use crate::fsutil::write_atomic;
use crate::run::{Outcome, RunResult};

pub const RUNS_HEADER: [&str; 22] = [
    "method",
    "gamma",
    "epochs",
    "params",
    "seed",
    "device",
    "remain_acc",
    "forget_acc",
    "test_acc",
    "ua",
    "mia",
    "mia_attack_acc",
    "ce",
    "mi",
    "remain_gap",
    "forget_gap",
    "test_gap",
    "mia_gap",
    "avg_gap",
    "rte",
    "rte_speedup",
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

/// The metrics summarised over seeds, in `summary.csv`'s column order (`<metric>_mean`,
/// `<metric>_std`). Gaps are `method - retrain` on the same seed, in percentage points;
/// `avg_gap` is the mean of the four absolute gaps (remain, forget, test, MIA) and `train_gap`
/// that of the remain and forget gaps (no test sample enters it: what a hyper-parameter search
/// may select on); `rte` is the
/// training's wall seconds and `rte_speedup` retrain's over the run's.
pub const METRICS: [&str; 19] = [
    "remain_acc",
    "forget_acc",
    "test_acc",
    "ua",
    "mia",
    "mia_attack_acc",
    "mi",
    "remain_gap",
    "forget_gap",
    "test_gap",
    "mia_gap",
    "remain_abs_gap",
    "forget_abs_gap",
    "test_abs_gap",
    "mia_abs_gap",
    "avg_gap",
    "train_gap",
    "rte",
    "rte_speedup",
];

pub fn summary_header() -> Vec<String> {
    let mut h: Vec<String> =
        ["method", "gamma", "epochs", "params", "n_seeds"].map(String::from).to_vec();
    for m in METRICS {
        h.push(format!("{m}_mean"));
        h.push(format!("{m}_std"));
    }
    h.push("checkpoints".to_owned());
    h
}

/// One row of `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub method: String,
    pub gamma: Option<f64>,
    pub epochs: usize,
    /// [`methods::Method::label`]: what tells parameter sets of one method apart.
    pub params: String,
    pub n_seeds: usize,
    /// Statistics of the [`METRICS`] that apply to this method (no gaps for retrain, no MI
    /// but for MI-unlearn).
    pub metrics: Vec<(&'static str, Stat)>,
    /// Cache keys of the runs, in seed order.
    pub checkpoints: Vec<String>,
}

impl SummaryRow {
    pub fn metric(&self, name: &str) -> Option<Stat> {
        self.metrics.iter().find(|(m, _)| *m == name).map(|(_, s)| *s)
    }
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

/// What each run is compared with: retrain on the same seed (the retrain with the most
/// epochs, if several ran).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VsRetrain {
    /// `[remain, forget, test, mia]` of the run minus retrain's, in points (`mia` only where
    /// both have it).
    pub gaps: [Option<f64>; 4],
    /// Retrain's training seconds over the run's.
    pub speedup: f64,
}

impl VsRetrain {
    /// The mean absolute remain and forget gap.
    pub fn train_gap(&self) -> Option<f64> {
        Some((self.gaps[0]?.abs() + self.gaps[1]?.abs()) / 2.0)
    }

    /// The mean of the four absolute gaps.
    pub fn avg_gap(&self) -> Option<f64> {
        let gaps: Option<Vec<f64>> = self.gaps.iter().map(|g| g.map(f64::abs)).collect();
        gaps.map(|g| g.iter().sum::<f64>() / g.len() as f64)
    }
}

/// Each run against retrain on the same seed; `None` for retrain itself (but its speed-up,
/// 1, is in [`speedups`]) and where no retrain ran.
pub fn vs_retrain(results: &[RunResult]) -> Vec<Option<VsRetrain>> {
    let retrains: Vec<&RunResult> =
        results.iter().filter(|r| r.job.method.name() == "retrain").collect();
    let most_epochs = retrains.iter().map(|r| r.job.method.epochs()).max();
    results
        .iter()
        .map(|r| {
            if r.job.method.name() == "retrain" {
                return None;
            }
            let reference = retrains
                .iter()
                .find(|g| g.job.seed == r.job.seed && Some(g.job.method.epochs()) == most_epochs)?;
            let (a, b) = (&r.accuracy, &reference.accuracy);
            let mia = a.mia.zip(b.mia).map(|(a, b)| a - b);
            Some(VsRetrain {
                gaps: [
                    Some(a.remain - b.remain),
                    Some(a.forget - b.forget),
                    Some(a.test - b.test),
                    mia,
                ],
                speedup: reference.record.seconds / r.record.seconds,
            })
        })
        .collect()
}

/// Each run's speed-up over retrain on the same seed (1 for that retrain itself).
fn speedup(r: &RunResult, vs: Option<&VsRetrain>) -> Option<f64> {
    if r.job.method.name() == "retrain" { Some(1.0) } else { vs.map(|v| v.speedup) }
}

/// Groups runs by method and parameters, in plan order.
pub fn summarize(results: &[RunResult]) -> Vec<SummaryRow> {
    let vs = vs_retrain(results);
    let mut groups: Vec<(&methods::Method, Vec<usize>)> = Vec::new();
    for (i, r) in results.iter().enumerate() {
        match groups.iter_mut().find(|(m, _)| **m == r.job.method) {
            Some((_, runs)) => runs.push(i),
            None => groups.push((&r.job.method, vec![i])),
        }
    }
    groups
        .into_iter()
        .map(|(method, runs)| {
            let value = |metric: &str, i: usize| -> Option<f64> {
                let (r, vs) = (&results[i], vs[i].as_ref());
                let gap = |k: usize| vs.and_then(|v| v.gaps[k]);
                match metric {
                    "remain_acc" => Some(r.accuracy.remain),
                    "forget_acc" => Some(r.accuracy.forget),
                    "test_acc" => Some(r.accuracy.test),
                    "ua" => Some(100.0 - r.accuracy.forget),
                    "mia" => r.accuracy.mia,
                    "mia_attack_acc" => r.accuracy.mia_attack_acc,
                    "mi" => final_stats(r).1,
                    "remain_gap" => gap(0),
                    "forget_gap" => gap(1),
                    "test_gap" => gap(2),
                    "mia_gap" => gap(3),
                    "remain_abs_gap" => gap(0).map(f64::abs),
                    "forget_abs_gap" => gap(1).map(f64::abs),
                    "test_abs_gap" => gap(2).map(f64::abs),
                    "mia_abs_gap" => gap(3).map(f64::abs),
                    "avg_gap" => vs.and_then(VsRetrain::avg_gap),
                    "train_gap" => vs.and_then(VsRetrain::train_gap),
                    "rte" => Some(r.record.seconds),
                    "rte_speedup" => speedup(r, vs),
                    _ => unreachable!("{metric} is not in METRICS"),
                }
            };
            let metrics = METRICS
                .iter()
                .filter_map(|&m| {
                    let values: Option<Vec<f64>> = runs.iter().map(|&i| value(m, i)).collect();
                    Some((m, Stat::of(&values?)))
                })
                .collect();
            SummaryRow {
                method: method.name().to_owned(),
                gamma: method.gamma(),
                epochs: method.epochs(),
                params: method.label(),
                n_seeds: runs.len(),
                metrics,
                checkpoints: runs.iter().map(|&i| results[i].job.key.clone()).collect(),
            }
        })
        .collect()
}

/// `gamma=4 epochs=5`, or `epochs=100` for methods without gamma: for logs, tables and
/// messages.
pub fn parameters(gamma: Option<f64>, epochs: usize) -> String {
    let gamma = gamma.map(|g| format!("gamma={g} ")).unwrap_or_default();
    format!("{gamma}epochs={epochs}")
}

/// An optional number as a CSV cell: shortest round-trip form, empty when absent.
pub(crate) fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub(crate) fn csv_bytes(
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> anyhow::Result<Vec<u8>> {
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
        results.iter().zip(vs_retrain(results)).map(|(r, vs)| {
            let (ce, mi) = final_stats(r);
            let gap = |k: usize| opt(vs.as_ref().and_then(|v| v.gaps[k]));
            let a = &r.accuracy;
            vec![
                r.job.method.name().to_owned(),
                opt(r.job.method.gamma()),
                r.job.method.epochs().to_string(),
                r.job.method.label(),
                r.job.seed.to_string(),
                crate::device::label(r.job.device),
                a.remain.to_string(),
                a.forget.to_string(),
                a.test.to_string(),
                (100.0 - a.forget).to_string(),
                opt(a.mia),
                opt(a.mia_attack_acc),
                opt(ce),
                opt(mi),
                gap(0),
                gap(1),
                gap(2),
                gap(3),
                opt(vs.as_ref().and_then(VsRetrain::avg_gap)),
                format!("{:.2}", r.record.seconds),
                speedup(r, vs.as_ref()).map(|s| format!("{s:.2}")).unwrap_or_default(),
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
    let header = summary_header();
    csv_bytes(
        &header.iter().map(String::as_str).collect::<Vec<_>>(),
        rows.iter().map(|s| {
            let mut row = vec![
                s.method.clone(),
                opt(s.gamma),
                s.epochs.to_string(),
                s.params.clone(),
                s.n_seeds.to_string(),
            ];
            for m in METRICS {
                let stat = s.metric(m);
                row.push(opt(stat.map(|st| st.mean)));
                row.push(opt(stat.and_then(|st| st.std)));
            }
            row.push(s.checkpoints.join(" "));
            row
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
    write_atomic(&out.join("config.toml"), format!("{header}{resolved_config}").as_bytes())?;
    Ok(summary)
}

/// The summary as a plain-text table: mean ± std over seeds.
pub fn table(rows: &[SummaryRow]) -> String {
    let pm = |s: Option<Stat>| match s {
        Some(Stat { mean, std: Some(std) }) => format!("{mean:6.2} ± {std:<5.2}"),
        Some(Stat { mean, std: None }) => format!("{mean:6.2}        "),
        None => format!("{:^15}", "-"),
    };
    let width = rows.iter().map(|r| r.params.len()).max().unwrap_or(0).max(6);
    let mut out = format!(
        "{:<12} {:<width$} {:>5}  {:<15} {:<15} {:<15} {:<15} {:<15} {:>7} {:>8}\n",
        "method",
        "params",
        "seeds",
        "remain %",
        "forget %",
        "test %",
        "forget gap",
        "MIA %",
        "avg gap",
        "MI"
    );
    for r in rows {
        out += &format!(
            "{:<12} {:<width$} {:>5}  {} {} {} {} {} {:>7} {:>8}\n",
            r.method,
            r.params,
            r.n_seeds,
            pm(r.metric("remain_acc")),
            pm(r.metric("forget_acc")),
            pm(r.metric("test_acc")),
            pm(r.metric("forget_gap")),
            pm(r.metric("mia")),
            r.metric("avg_gap").map(|m| format!("{:.2}", m.mean)).unwrap_or_else(|| "-".into()),
            r.metric("mi").map(|m| format!("{:.4}", m.mean)).unwrap_or_else(|| "-".into()),
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
        assert_eq!(Stat::of(&[7.0]), Stat { mean: 7.0, std: None });
    }
}
