//! The per-example forgetting audit of an experiment with an `[audit]` section, from its runs'
//! confidences on the scenario's population (`RunResult::confidences`):
//!
//! - per method, parameter set and seed, the NeurIPS 2023 competition's forgetting quality F
//!   of the replicates against retrain's (`results::forget_score`), the final score, the
//!   epsilon quantiles and buckets, and the noise floor (two halves of retrain's replicates
//!   against each other); the identity (`original`, one model per seed) counts as that many
//!   identical models;
//! - per method, parameter set and seed, U-LiRA over the seed's shadows
//!   (`results::ulira`), each shadow's never-seen examples drawn from the stream
//!   `ulira/<shadow>`;
//! - per run, the Kolmogorov-Smirnov test against retrain of the same seed and replicate;
//! - the arrays behind them, as `.npy` files anyone can score again: per method, parameter
//!   set and seed the forget examples' confidences, `[runs, forget examples]` in replicate
//!   order, and the forget set's training-set indices; under `arrays/shadows/`, each method's
//!   shadow confidences on the whole population, `[shadows, population]`, the shadows'
//!   memberships (0 never seen, 1 remained, 2 unlearned) and the population's indices.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use data::split::{population, run_split};
use methods::AnyMethod;
use results::forget_score::forget_score;
use results::rows::{AuditRow, EpsilonRow};
use results::ulira::{Membership, attack};

use crate::execution::plan::Job;
use crate::execution::run::RunResult;
use crate::experiment::Experiment;
use crate::report::methods::{gamma, methods_in, reference};
use crate::report::quality::{Population, epsilons, quantile};

/// What the audit found, for the results folder.
#[derive(Debug, Default)]
pub struct Audit {
    pub rows: Vec<AuditRow>,
    pub epsilons: Vec<EpsilonRow>,
    /// Per run (by cache key): the KS statistic and p-value against retrain.
    pub ks: BTreeMap<String, (f64, f64)>,
    /// `.npy` files: path relative to the results folder, and bytes.
    pub arrays: Vec<(String, Vec<u8>)>,
}

impl Audit {
    /// The KS statistic and p-value of `job`'s run against retrain's, if it has them.
    pub fn ks(&self, job: &Job) -> Option<(f64, f64)> {
        self.ks.get(&job.key).copied()
    }
}

/// The method's runs of one seed: its own (in replicate order) or its shadows' (in shadow
/// order).
fn runs_of<'a>(
    results: &'a [RunResult],
    method: &AnyMethod,
    seed: u64,
    shadows: bool,
) -> Vec<&'a RunResult> {
    let mut runs: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.job.seed == seed && &r.job.method == method)
        .filter(|r| r.job.shadow.is_some() == shadows)
        .collect();
    runs.sort_by_key(|r| (r.job.replicate, r.job.shadow));
    runs
}

/// U-LiRA's view of a seed's shadows: what each did with each population example, and the
/// never-seen examples each is scored on as a target.
struct Shadows {
    membership: Vec<Vec<Membership>>,
    never_seen: Vec<Vec<usize>>,
}

impl Shadows {
    fn new(
        exp: &Experiment,
        labels: &[u8],
        pop: &[usize],
        seed: u64,
        count: usize,
    ) -> anyhow::Result<Self> {
        let (mut membership, mut never_seen) = (Vec::new(), Vec::new());
        for k in 0..count {
            let split = run_split(labels, &exp.forget, seed, Some(k))?;
            let mut of = vec![Membership::Out; labels.len()];
            for &i in &split.remain {
                of[i] = Membership::Remain;
            }
            for &i in &split.forget {
                of[i] = Membership::Forget;
            }
            let row: Vec<Membership> = pop.iter().map(|&i| of[i]).collect();
            let out: Vec<usize> = (0..pop.len()).filter(|&p| row[p] == Membership::Out).collect();
            let rng = &mut data::rng::stream(seed, &format!("ulira/{k}"));
            let chosen: Vec<usize> =
                data::rng::subset(rng, out.len(), split.forget.len().min(out.len()))
                    .into_iter()
                    .map(|j| out[j])
                    .collect();
            membership.push(row);
            never_seen.push(chosen);
        }
        Ok(Self { membership, never_seen })
    }

    /// U-LiRA on one method's shadow `runs` (in shadow order), and their confidences as a
    /// `[shadows, population]` float32 array.
    fn attack(
        &self,
        runs: &[&RunResult],
        settings: crate::experiment::Audit,
        population: usize,
    ) -> anyhow::Result<(results::ulira::Attack, Vec<u8>)> {
        if runs.len() != settings.shadows {
            bail!("{} shadow runs where {} were planned", runs.len(), settings.shadows);
        }
        let confidences: Vec<&[f32]> =
            runs.iter().map(|r| confidences(r, population)).collect::<anyhow::Result<_>>()?;
        let flat: Vec<f32> = confidences.concat();
        let array = results::npy::to_bytes(&[runs.len(), population], &flat);
        let a = attack(&confidences, &self.membership, &self.never_seen, settings.min_members);
        Ok((a, array))
    }

    /// The memberships as a `[shadows, population]` int8 array.
    fn npy(&self) -> Vec<u8> {
        let code = |m: &Membership| match m {
            Membership::Out => 0i8,
            Membership::Remain => 1,
            Membership::Forget => 2,
        };
        let flat: Vec<i8> = self.membership.iter().flatten().map(code).collect();
        results::npy::to_bytes(&[self.membership.len(), self.membership[0].len()], &flat)
    }
}

/// `r`'s confidences on the population of `len` examples (an error naming the run if it has
/// none, or another number of them).
fn confidences(r: &RunResult, len: usize) -> anyhow::Result<&[f32]> {
    let c =
        r.confidences.as_ref().with_context(|| format!("{} has no confidences", r.job.label()))?;
    if c.len() != len {
        bail!(
            "{}: {} cached confidences for a population of {len}; remove its evaluation from the cache",
            r.job.label(),
            c.len()
        );
    }
    Ok(c)
}

/// A file-name form of a parameter label: `gamma=0.5 epochs=5` -> `gamma0.5_epochs5`.
pub fn slug(label: &str) -> String {
    label.replace('=', "").replace(' ', "_")
}

/// Runs the audit on `results` (every run of `exp`, with confidences), `labels` being the
/// training set's.
pub fn score(exp: &Experiment, results: &[RunResult], labels: &[u8]) -> anyhow::Result<Audit> {
    let mut audit = Audit::default();
    let pop = population(labels, &exp.forget);
    let settings = exp.audit.context("an experiment with an [audit] section")?;
    if settings.shadows > 0 {
        let ids: Vec<i64> = pop.iter().map(|&i| i as i64).collect();
        audit.arrays.push((
            "arrays/shadows/population.npy".into(),
            results::npy::to_bytes(&[ids.len()], &ids),
        ));
    }
    let methods = methods_in(results);
    let reference = reference(results).context("an audit needs retrain's runs")?;
    for &seed in &exp.seeds {
        let split = run_split(labels, &exp.forget, seed, None)?;
        let positions: Vec<usize> = split
            .forget
            .iter()
            .map(|i| pop.binary_search(i).expect("the forget set is drawn from the population"))
            .collect();
        let forget_confidences = |r: &RunResult| -> anyhow::Result<Vec<f64>> {
            let c = confidences(r, pop.len())?;
            Ok(positions.iter().map(|&p| f64::from(c[p])).collect())
        };
        let ids: Vec<i64> = split.forget.iter().map(|&i| i as i64).collect();
        audit.arrays.push((
            format!("arrays/forget_seed{seed}.npy"),
            results::npy::to_bytes(&[ids.len()], &ids),
        ));

        let reference_runs = runs_of(results, reference, seed, false);
        let retrains: Vec<Vec<f64>> =
            reference_runs.iter().map(|r| forget_confidences(r)).collect::<Result<_, _>>()?;
        let n = retrains.len();
        let floor = (n >= 4).then(|| {
            let (a, b) = retrains.split_at(n / 2);
            let b = &b[..a.len()];
            forget_score(
                &epsilons(&Population::from_models(a), &Population::from_models(b)),
                a.len(),
            )
        });
        let mean = |runs: &[&RunResult], acc: fn(&RunResult) -> f64| {
            runs.iter().map(|r| acc(r)).sum::<f64>() / runs.len() as f64
        };
        let shadows = match settings.shadows {
            0 => None,
            count => {
                let shadows = Shadows::new(exp, labels, &pop, seed, count)?;
                audit
                    .arrays
                    .push((format!("arrays/shadows/membership_seed{seed}.npy"), shadows.npy()));
                Some(shadows)
            }
        };
        for &method in &methods {
            let runs = runs_of(results, method, seed, false);
            let confidences: Vec<Vec<f64>> =
                runs.iter().map(|r| forget_confidences(r)).collect::<Result<_, _>>()?;
            let flat: Vec<f32> = confidences.iter().flatten().map(|&c| c as f32).collect();
            let name = format!("arrays/{}_{}_seed{seed}.npy", method.name(), slug(&method.label()));
            audit
                .arrays
                .push((name, results::npy::to_bytes(&[runs.len(), positions.len()], &flat)));
            let mut row = AuditRow {
                method: method.name().to_owned(),
                gamma: gamma(method),
                epochs: method.epochs(),
                params: method.label(),
                seed,
                models: n,
                examples: positions.len(),
                forget_quality_floor: floor,
                shadows: settings.shadows,
                ..AuditRow::default()
            };
            if let Some(shadows) = &shadows {
                let runs = runs_of(results, method, seed, true);
                let (a, array) = shadows.attack(&runs, settings, pop.len()).with_context(|| {
                    format!("U-LiRA of {} {} on seed {seed}", method.name(), method.label())
                })?;
                let name = format!(
                    "arrays/shadows/{}_{}_seed{seed}.npy",
                    method.name(),
                    slug(&method.label())
                );
                audit.arrays.push((name, array));
                row.ulira_acc = Some(a.accuracy);
                row.ulira_auc = Some(a.auc);
                row.ulira_tpr1 = Some(a.tpr_at_1);
                row.ulira_tpr5 = Some(a.tpr_at_5);
                row.ulira_scored = a.scored;
                row.ulira_skipped = a.skipped;
            }
            if method == reference {
                audit.rows.push(row);
                continue;
            }
            // KS per run, against retrain of the same replicate.
            for (r, c) in runs.iter().zip(&confidences) {
                let same = reference_runs.iter().position(|g| g.job.replicate == r.job.replicate);
                if let Some(ks) = same.and_then(|j| results::ks::two_sample(c, &retrains[j])) {
                    audit.ks.insert(r.job.key.clone(), ks);
                }
            }
            if n < 2 {
                audit.rows.push(row);
                continue;
            }
            // The identity: one model per seed, which its replicates would all equal.
            let unlearned: Vec<Vec<f64>> = if runs.len() == 1 && !method.uses_split() {
                vec![confidences[0].clone(); n]
            } else if runs.len() == n {
                confidences
            } else {
                bail!("{} has {} runs on seed {seed}, retrain {n}", method.name(), runs.len());
            };
            let eps =
                epsilons(&Population::from_models(&unlearned), &Population::from_models(&retrains));
            let f = forget_score(&eps, n);
            let ratio = |acc: fn(&RunResult) -> f64| mean(&runs, acc) / mean(&reference_runs, acc);
            row.forget_quality = Some(f);
            row.final_score = Some(f * ratio(|r| r.accuracy.remain) * ratio(|r| r.accuracy.test));
            let mut sorted = eps.clone();
            sorted.sort_by(f64::total_cmp);
            row.eps_median = Some(quantile(&sorted, 0.5));
            row.eps_p90 = Some(quantile(&sorted, 0.9));
            audit.rows.push(row);
            audit.epsilons.extend(buckets(&sorted).into_iter().map(|(bucket, examples)| {
                EpsilonRow {
                    method: method.name().to_owned(),
                    params: method.label(),
                    seed,
                    bucket,
                    examples,
                }
            }));
        }
    }
    Ok(audit)
}

/// How many of ascending `sorted` epsilons fall in each `[0.5 k, 0.5 k + 0.5)` that holds any.
fn buckets(sorted: &[f64]) -> Vec<(f64, usize)> {
    let mut out: Vec<(f64, usize)> = Vec::new();
    for &e in sorted {
        let bucket = (e * 2.0).floor() / 2.0;
        match out.last_mut() {
            Some((b, n)) if *b == bucket => *n += 1,
            _ => out.push((bucket, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_buckets() {
        let v = [0.0, 0.2, 0.6, 1.0, 50.0];
        assert_eq!(quantile(&v, 0.5), 0.6);
        assert!((quantile(&v, 0.9) - (1.0 + 49.0 * 0.6)).abs() < 1e-12);
        assert_eq!(buckets(&v), vec![(0.0, 2), (0.5, 1), (1.0, 1), (50.0, 1)]);
        assert_eq!(slug("gamma=0.5 epochs=5"), "gamma0.5_epochs5");
    }
}
