//! From a run's results to the files of its results folder (their row types are
//! `results::rows`) and the summary table on stdout:
//!
//! - `runs.csv`: one [`RunRow`] per run (method, parameters, seed);
//! - `summary.csv`: one [`SummaryRow`] per method and parameter set, means and sample standard
//!   deviations (n - 1; empty for a single run) of every [`Metric`] over seeds and replicates;
//! - `history.csv`: one [`HistoryRow`] per evaluated epoch of every unlearning run (every
//!   method but `original`);
//! - `config.toml`: the experiment with every default written out.

use std::path::Path;

use methods::Role;

use results::fsutil::write_atomic;
use results::rows::{AuditRow, HistoryRow, Metric, RunRow, Stat, SummaryRow, to_csv};

use crate::execution::run::{Outcome, RunResult};
use crate::experiment::Experiment;
use crate::report::audit::Audit;
use crate::report::methods::{gamma, methods_in, reference};

fn final_stats(r: &RunResult) -> (Option<f64>, Option<f64>) {
    let last = r.record.history.last();
    (last.map(|e| e.ce), last.and_then(|e| e.mi))
}

/// What each run is compared with: retrain on the same seed and replicate (the retrain with
/// the most epochs, if several ran).
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

    /// Tug-of-War: the product over remain, forget and test of `1 - |gap| / 100`.
    pub fn tow(&self) -> Option<f64> {
        self.gaps[..3].iter().map(|g| g.map(|g| 1.0 - g.abs() / 100.0)).product()
    }

    /// The mean of the four absolute gaps.
    pub fn avg_gap(&self) -> Option<f64> {
        let gaps: Option<Vec<f64>> = self.gaps.iter().map(|g| g.map(f64::abs)).collect();
        gaps.map(|g| g.iter().sum::<f64>() / g.len() as f64)
    }
}

/// Each run against the reference (retrain) on the same seed and replicate (and shadow);
/// `None` for the reference method's runs (but their speed-up, 1, is in [`speedup`]) and
/// where no reference ran.
pub fn vs_retrain(results: &[RunResult]) -> Vec<Option<VsRetrain>> {
    let reference = reference(results);
    let retrains: Vec<&RunResult> =
        results.iter().filter(|r| Some(&r.job.method) == reference).collect();
    results
        .iter()
        .map(|r| {
            if r.job.method.role() == Role::Reference {
                return None;
            }
            let run = |j: &crate::execution::plan::Job| (j.seed, j.replicate, j.shadow);
            let reference = retrains.iter().find(|g| run(&g.job) == run(&r.job))?;
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

/// Each run's speed-up over the reference on the same seed (1 for the reference itself).
fn speedup(r: &RunResult, vs: Option<&VsRetrain>) -> Option<f64> {
    if r.job.method.role() == Role::Reference { Some(1.0) } else { vs.map(|v| v.speedup) }
}

/// A run's value of a per-run metric (`None` for a population metric, which comes from the
/// audit's rows: `Metric::of_population`), given how it compares with the reference.
fn run_metric(
    r: &RunResult,
    vs: Option<&VsRetrain>,
    audit: Option<&Audit>,
    m: Metric,
) -> Option<f64> {
    let gap = |k: usize| vs.and_then(|v| v.gaps[k]);
    match m {
        Metric::RemainAcc => Some(r.accuracy.remain),
        Metric::ForgetAcc => Some(r.accuracy.forget),
        Metric::TestAcc => Some(r.accuracy.test),
        Metric::Ua => Some(100.0 - r.accuracy.forget),
        Metric::Mia => r.accuracy.mia,
        Metric::MiaAttackAcc => r.accuracy.mia_attack_acc,
        Metric::Mi => final_stats(r).1,
        Metric::RemainGap => gap(0),
        Metric::ForgetGap => gap(1),
        Metric::TestGap => gap(2),
        Metric::MiaGap => gap(3),
        Metric::RemainAbsGap => gap(0).map(f64::abs),
        Metric::ForgetAbsGap => gap(1).map(f64::abs),
        Metric::TestAbsGap => gap(2).map(f64::abs),
        Metric::MiaAbsGap => gap(3).map(f64::abs),
        Metric::AvgGap => vs.and_then(VsRetrain::avg_gap),
        Metric::Tow => vs.and_then(VsRetrain::tow),
        Metric::Ks => audit.and_then(|a| a.ks(&r.job)).map(|k| k.0),
        Metric::Ksp => audit.and_then(|a| a.ks(&r.job)).map(|k| k.1),
        Metric::TrainGap => vs.and_then(VsRetrain::train_gap),
        Metric::Rte => Some(r.record.seconds),
        Metric::RteSpeedup => speedup(r, vs),
        _ => None,
    }
}

/// Groups runs by method and parameters, in plan order; population metrics come from the
/// audit's rows (one per seed), the others from the runs.
pub fn summarize(results: &[RunResult], audit: Option<&Audit>) -> Vec<SummaryRow> {
    let vs = vs_retrain(results);
    methods_in(results)
        .into_iter()
        .map(|method| {
            let runs: Vec<usize> =
                (0..results.len()).filter(|&i| &results[i].job.method == method).collect();
            let mut row = SummaryRow {
                method: method.name().to_owned(),
                gamma: gamma(method),
                epochs: method.epochs(),
                params: method.label(),
                n_seeds: distinct(runs.iter().map(|&i| results[i].job.seed)),
                n_replicates: distinct(runs.iter().map(|&i| results[i].job.replicate)),
                checkpoints: runs
                    .iter()
                    .map(|&i| results[i].job.key.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                ..SummaryRow::default()
            };
            let audit_rows: Vec<&AuditRow> = audit
                .map(|a| {
                    a.rows
                        .iter()
                        .filter(|a| a.method == row.method && a.params == row.params)
                        .collect()
                })
                .unwrap_or_default();
            for &m in Metric::ALL {
                let values: Option<Vec<f64>> = if m.of_population() {
                    audit_rows.iter().map(|a| a.value(m)).collect()
                } else {
                    runs.iter()
                        .map(|&i| run_metric(&results[i], vs[i].as_ref(), audit, m))
                        .collect()
                };
                row.set(m, values.filter(|v| !v.is_empty()).map(|v| Stat::of(&v)));
            }
            row
        })
        .collect()
}

/// How many different values `values` holds.
fn distinct<T: Ord>(values: impl Iterator<Item = T>) -> usize {
    values.collect::<std::collections::BTreeSet<T>>().len()
}

/// One [`RunRow`] per run, in plan order.
pub fn run_rows(results: &[RunResult], audit: Option<&Audit>) -> Vec<RunRow> {
    results
        .iter()
        .zip(vs_retrain(results))
        .map(|(r, vs)| {
            let m = &r.job.method;
            let mut row = RunRow {
                method: m.name().to_owned(),
                gamma: gamma(m),
                epochs: m.epochs(),
                params: m.label(),
                seed: r.job.seed,
                replicate: r.job.replicate,
                shadow: r.job.shadow,
                device: crate::execution::device::label(r.job.device),
                ce: final_stats(r).0,
                checkpoint: r.job.key.clone(),
                ..RunRow::default()
            };
            for &metric in RunRow::METRICS {
                row.set(metric, run_metric(r, vs.as_ref(), audit, metric));
            }
            row
        })
        .collect()
}

/// One [`HistoryRow`] per evaluated epoch of every run, and per epoch a method that hands
/// back only its final model reported losses for (its accuracies empty but the last epoch's).
pub fn history_rows(results: &[RunResult]) -> Vec<HistoryRow> {
    results
        .iter()
        .flat_map(|r| {
            let losses_alone = !r.job.method.models_each_epoch();
            let recorded =
                r.record.history.iter().filter(move |e| e.metrics.is_some() || losses_alone);
            recorded.map(|e| {
                let m = e.metrics;
                HistoryRow {
                    method: r.job.method.name().to_owned(),
                    gamma: gamma(&r.job.method),
                    epochs: r.job.method.epochs(),
                    seed: r.job.seed,
                    replicate: r.job.replicate,
                    epoch: e.epoch,
                    remain_acc: m.map(|m| m.remain),
                    forget_acc: m.map(|m| m.forget),
                    test_acc: m.map(|m| m.test),
                    loss: e.loss,
                    ce: e.ce,
                    mi: e.mi,
                    checkpoint: r.job.key.clone(),
                }
            })
        })
        .collect()
}

/// Writes `runs.csv`, `history.csv`, `summary.csv`, `methods.csv` and `config.toml` into `out` (and for an
/// audit `audit.csv`, `audit_epsilons.csv` and the arrays under `audit/`), each atomically,
/// then the figures they call for; returns the summary and how many figure files were
/// written.
pub fn write(
    out: &Path,
    outcome: &Outcome,
    exp: &Experiment,
) -> anyhow::Result<(Vec<SummaryRow>, usize)> {
    // What killed writers of this folder left (the files they wrote are whole: atomic).
    for dir in [out.to_owned(), out.join("arrays"), out.join("arrays/shadows")] {
        results::fsutil::sweep_temporaries(&dir);
    }
    // The scenario as it ran (with the forget set a memorization population chose).
    let exp = &outcome.experiment(exp);
    if let Some(p) = &outcome.memorization {
        crate::report::memorization::write(out, p)?;
    }
    let audit = match (exp.audit, &outcome.images) {
        (None, _) => None,
        (Some(_), Some(images)) => Some(crate::report::audit::score(
            exp,
            &outcome.results,
            &images.dataset().train.labels,
        )?),
        // Everything came from the cache: nothing loaded the dataset yet.
        (Some(_), None) => {
            let dataset = data::dataset::load(&exp.data_dir, &exp.load)?;
            Some(crate::report::audit::score(exp, &outcome.results, &dataset.train.labels)?)
        }
    };
    // The shadows' runs only feed U-LiRA; their own table is shadows.csv.
    let (results, shadows): (Vec<RunResult>, Vec<RunResult>) =
        outcome.results.iter().cloned().partition(|r| r.job.shadow.is_none());
    let summary = summarize(&results, audit.as_ref());
    if !shadows.is_empty() {
        write_atomic(&out.join("shadows.csv"), &to_csv(&run_rows(&shadows, audit.as_ref()))?)?;
    }
    if let Some(audit) = &audit {
        for (name, bytes) in &audit.arrays {
            let path = out.join(name);
            std::fs::create_dir_all(path.parent().expect("a file in a folder"))?;
            write_atomic(&path, bytes)?;
        }
        write_atomic(&out.join("audit.csv"), &to_csv(&audit.rows)?)?;
        write_atomic(&out.join("audit_epsilons.csv"), &to_csv(&audit.epsilons)?)?;
        write_atomic(&out.join("audit_pairs.csv"), &to_csv(&audit.pairs)?)?;
        write_atomic(&out.join("audit_curve.csv"), &to_csv(&audit.curve)?)?;
    }
    write_atomic(&out.join("runs.csv"), &to_csv(&run_rows(&results, audit.as_ref()))?)?;
    write_atomic(&out.join("history.csv"), &to_csv(&history_rows(&results))?)?;
    write_atomic(&out.join("summary.csv"), &to_csv(&summary)?)?;
    write_atomic(&out.join("methods.csv"), &to_csv(&crate::report::methods::rows(&results))?)?;
    let header = "# The experiment as run, every default written out (written by harness).\n";
    write_atomic(&out.join("config.toml"), format!("{header}{}", exp.resolved).as_bytes())?;
    let figures = results::plot::plot_dir(out)?;
    crate::report::readme::write(out, exp, &summary, &figures)?;
    Ok((summary, figures.len()))
}

/// The summary as a plain-text table: mean ± std over runs (seeds x replicates); an audit's
/// scores after it.
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
        "runs",
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
            r.n_seeds * r.n_replicates,
            pm(r.metric(Metric::RemainAcc)),
            pm(r.metric(Metric::ForgetAcc)),
            pm(r.metric(Metric::TestAcc)),
            pm(r.metric(Metric::ForgetGap)),
            pm(r.metric(Metric::Mia)),
            r.metric(Metric::AvgGap)
                .map(|m| format!("{:.2}", m.mean))
                .unwrap_or_else(|| "-".into()),
            r.metric(Metric::Mi).map(|m| format!("{:.4}", m.mean)).unwrap_or_else(|| "-".into()),
        );
    }
    let audited = [Metric::ForgetQuality, Metric::ForgetQualityRef, Metric::UliraAcc];
    if rows.iter().any(|r| audited.iter().any(|&m| r.metric(m).is_some())) {
        let value = |r: &SummaryRow, m: Metric| {
            r.metric(m).map_or_else(|| "-".to_owned(), |s| format!("{:.3}", s.mean))
        };
        out += &format!(
            "\nforgetting audit:\n{:<12} {:<width$} {:>8} {:>8} {:>8}\n",
            "method", "params", "F", "F_ref", "U-LiRA"
        );
        for r in rows {
            out += &format!(
                "{:<12} {:<width$} {:>8} {:>8} {:>8}\n",
                r.method,
                r.params,
                value(r, Metric::ForgetQuality),
                value(r, Metric::ForgetQualityRef),
                value(r, Metric::UliraAcc)
            );
        }
    }
    out
}
