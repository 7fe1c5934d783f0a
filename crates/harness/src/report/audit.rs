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
use results::rows::{AuditRow, CurveRow, EpsilonRow, Metric, PairRow};
use results::ulira::{Membership, Outcome, attack};

use crate::execution::plan::Job;
use crate::execution::run::RunResult;
use crate::experiment::Experiment;
use crate::report::methods::{gamma, methods_in, reference};
use crate::report::quality::{Difference, Mean, Noise, Population, Quality, curve, quantile};

/// What the audit found, for the results folder.
#[derive(Debug, Default)]
pub struct Audit {
    pub rows: Vec<AuditRow>,
    pub epsilons: Vec<EpsilonRow>,
    pub pairs: Vec<PairRow>,
    pub curve: Vec<CurveRow>,
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
    ) -> anyhow::Result<(Outcome, Vec<u8>)> {
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

/// A method's scored population of one seed, kept for the pairs and the ties.
struct Scored<'a> {
    method: &'a AnyMethod,
    /// F against the reference's first population (the reference's own: its second).
    quality: Option<Quality>,
    /// Per U-LiRA target (`None` without decisions of both kinds): accuracy and AUC.
    targets: Vec<Option<(f64, f64)>>,
}

/// The forgetting quality's noise settings of a seed's audit.
fn noise(seed: u64) -> Noise {
    Noise { seed, ..Noise::default() }
}

/// Runs the audit on `results` (every run of `exp`, with confidences), `labels` being the
/// training set's.
pub fn score(exp: &Experiment, results: &[RunResult], labels: &[u8]) -> anyhow::Result<Audit> {
    let mut audit = Audit::default();
    let pop = population(labels, &exp.forget);
    let settings = exp.audit.context("an experiment with an [audit] section")?;
    if settings.shadows > 0 {
        let ids: Vec<i64> = pop.iter().map(|&i| i as i64).collect();
        let bytes = results::npy::to_bytes(&[ids.len()], &ids);
        audit.arrays.push(("arrays/shadows/population.npy".into(), bytes.clone()));
        audit.arrays.push(("arrays/ulira/population.npy".into(), bytes));
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

        // The reference's runs: its first population (what every method is scored against)
        // and, with replicates, a second of as many (F_ref).
        let all_reference = runs_of(results, reference, seed, false);
        let n = exp.replicates().min(all_reference.len());
        let (reference_runs, second_runs) = all_reference.split_at(n);
        let retrains: Vec<Vec<f64>> =
            reference_runs.iter().map(|r| forget_confidences(r)).collect::<Result<_, _>>()?;
        let second: Vec<Vec<f64>> =
            second_runs.iter().map(|r| forget_confidences(r)).collect::<Result<_, _>>()?;
        let first = Population::from_models(&retrains);
        let second_population =
            (n >= 2 && second.len() == n).then(|| Population::from_models(&second));
        let reference_quality =
            second_population.as_ref().map(|p| Quality::new(p, &first, noise(seed)));
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
        let first_row = audit.rows.len();
        let mut scored: Vec<Scored> = Vec::new();
        let mut decisions_written = false;
        for &method in &methods {
            let runs = if method == reference {
                reference_runs.to_vec()
            } else {
                runs_of(results, method, seed, false)
            };
            let confidences: Vec<Vec<f64>> =
                runs.iter().map(|r| forget_confidences(r)).collect::<Result<_, _>>()?;
            let flat: Vec<f32> = confidences.iter().flatten().map(|&c| c as f32).collect();
            let name = format!("arrays/{}_{}_seed{seed}.npy", method.name(), slug(&method.label()));
            audit
                .arrays
                .push((name, results::npy::to_bytes(&[runs.len(), positions.len()], &flat)));
            if method == reference && !second.is_empty() {
                let flat: Vec<f32> = second.iter().flatten().map(|&c| c as f32).collect();
                let name = format!(
                    "arrays/{}_{}_second_seed{seed}.npy",
                    method.name(),
                    slug(&method.label())
                );
                audit
                    .arrays
                    .push((name, results::npy::to_bytes(&[second.len(), positions.len()], &flat)));
            }
            let mut row = AuditRow {
                method: method.name().to_owned(),
                gamma: gamma(method),
                epochs: method.epochs(),
                params: method.label(),
                seed,
                models: n,
                examples: positions.len(),
                forget_quality_ref: reference_quality.as_ref().map(|q| q.f),
                shadows: settings.shadows,
                ..AuditRow::default()
            };
            let mut entry = Scored { method, quality: None, targets: Vec::new() };
            if let Some(shadows) = &shadows {
                let runs = runs_of(results, method, seed, true);
                let (outcome, array) =
                    shadows.attack(&runs, settings, pop.len()).with_context(|| {
                        format!("U-LiRA of {} {} on seed {seed}", method.name(), method.label())
                    })?;
                let file = format!("{}_{}_seed{seed}.npy", method.name(), slug(&method.label()));
                audit.arrays.push((format!("arrays/shadows/{file}"), array));
                if !decisions_written {
                    audit.arrays.push((
                        format!("arrays/ulira/decisions_seed{seed}.npy"),
                        decisions_npy(&outcome.decisions, pop.len()),
                    ));
                    decisions_written = true;
                }
                let scores: Vec<half::f16> =
                    outcome.decisions.iter().map(|d| score_f16(d.score)).collect();
                audit.arrays.push((
                    format!("arrays/ulira/{file}"),
                    results::npy::to_bytes(&[scores.len()], &scores),
                ));
                let each = |f: fn(&results::ulira::Attack) -> f64| -> Option<Mean> {
                    let v: Vec<f64> = outcome.targets.iter().flatten().map(f).collect();
                    (!v.is_empty()).then(|| Mean::of(&v))
                };
                let split = |m: Option<Mean>| {
                    m.map_or((None, None, None), |m| (Some(m.mean), Some(m.lo), Some(m.hi)))
                };
                (row.ulira_acc, row.ulira_acc_lo, row.ulira_acc_hi) = split(each(|a| a.accuracy));
                (row.ulira_auc, row.ulira_auc_lo, row.ulira_auc_hi) = split(each(|a| a.auc));
                (row.ulira_tpr1, row.ulira_tpr1_lo, row.ulira_tpr1_hi) =
                    split(each(|a| a.tpr_at_1));
                (row.ulira_tpr5, row.ulira_tpr5_lo, row.ulira_tpr5_hi) =
                    split(each(|a| a.tpr_at_5));
                row.ulira_targets = outcome.targets.iter().flatten().count();
                row.ulira_scored = outcome.pooled.scored;
                row.ulira_skipped = outcome.pooled.skipped;
                entry.targets =
                    outcome.targets.iter().map(|t| t.map(|a| (a.accuracy, a.auc))).collect();
            }
            if method == reference {
                if let Some(q) = &reference_quality {
                    fill_quality(&mut row, q);
                    audit.epsilons.extend(epsilon_rows(&mut row, q, method, seed));
                }
                entry.quality = reference_quality.clone();
                audit.rows.push(row);
                scored.push(entry);
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
                scored.push(entry);
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
            let unlearned = Population::from_models(&unlearned);
            let q = Quality::new(&unlearned, &first, noise(seed));
            fill_quality(&mut row, &q);
            if let Some(r) = &reference_quality {
                row.forget_quality_ratio = (r.f > 0.0).then(|| q.f / r.f);
                row.forget_quality_ratio_lo =
                    (r.interval.1 > 0.0).then(|| q.interval.0 / r.interval.1);
                row.forget_quality_ratio_hi =
                    (r.interval.0 > 0.0).then(|| q.interval.1 / r.interval.0);
            }
            let ratio = |acc: fn(&RunResult) -> f64| mean(&runs, acc) / mean(reference_runs, acc);
            row.final_score = Some(q.f * ratio(|r| r.accuracy.remain) * ratio(|r| r.accuracy.test));
            audit.epsilons.extend(epsilon_rows(&mut row, &q, method, seed));
            audit.rows.push(row);
            audit.curve.extend(curve_rows(method, seed, &unlearned, &first));
            entry.quality = Some(q);
            scored.push(entry);
        }
        if let Some(second) = &second_population {
            audit.curve.extend(curve_rows(reference, seed, second, &first));
        }
        let pairs = pairs(&scored, seed);
        ties(&mut audit.rows[first_row..], &scored, &pairs, reference);
        audit.pairs.extend(pairs.into_iter().map(|p| p.row));
    }
    Ok(audit)
}

/// F's columns of `row` from `q`.
fn fill_quality(row: &mut AuditRow, q: &Quality) {
    row.forget_quality = Some(q.f);
    (row.forget_quality_lo, row.forget_quality_hi) = (Some(q.interval.0), Some(q.interval.1));
    (row.f_examples_lo, row.f_examples_hi) =
        (Some(q.examples_interval.0), Some(q.examples_interval.1));
    row.f_halves_sd = (!q.halves.is_empty()).then(|| q.halves_sd());
}

/// The epsilon quantiles of `row` and the epsilons' buckets, from `q`.
fn epsilon_rows(row: &mut AuditRow, q: &Quality, method: &AnyMethod, seed: u64) -> Vec<EpsilonRow> {
    let mut sorted = q.epsilons.clone();
    sorted.sort_by(f64::total_cmp);
    row.eps_median = Some(quantile(&sorted, 0.5));
    row.eps_p90 = Some(quantile(&sorted, 0.9));
    buckets(&sorted)
        .into_iter()
        .map(|(bucket, examples)| EpsilonRow {
            method: method.name().to_owned(),
            params: method.label(),
            seed,
            bucket,
            examples,
        })
        .collect()
}

/// F against N for one population: at a quarter and a half of the models (4 draws each; not
/// below 4 models, where the score has a single bucket) and at all of them.
fn curve_rows(
    method: &AnyMethod,
    seed: u64,
    unlearned: &Population,
    retrained: &Population,
) -> Vec<CurveRow> {
    let n = unlearned.models;
    let sizes: Vec<usize> = [n / 4, n / 2].into_iter().filter(|&k| k >= 4).collect();
    curve(unlearned, retrained, &sizes, CURVE_DRAWS, seed)
        .into_iter()
        .map(|at| CurveRow {
            method: method.name().to_owned(),
            params: method.label(),
            seed,
            models: at.models,
            draws: at.draws.len(),
            forget_quality: at.mean(),
            sd: (at.draws.len() > 1).then(|| at.sd()),
        })
        .collect()
}

/// Random draws per size of F's curve against N.
const CURVE_DRAWS: usize = 4;

/// A pair's row, and which of the seed's scored methods it compares (`a` before `b`).
struct Pair {
    a: usize,
    b: usize,
    row: PairRow,
}

/// Every pair of `scored`'s methods, in order: F's paired difference (retrain's being its
/// second population) and U-LiRA's accuracy and AUC, paired over the same targets.
fn pairs(scored: &[Scored], seed: u64) -> Vec<Pair> {
    let mut out = Vec::new();
    for (i, a) in scored.iter().enumerate() {
        for (j, b) in scored.iter().enumerate().skip(i + 1) {
            let row = |metric, difference: f64, lo: f64, hi: f64| Pair {
                a: i,
                b: j,
                row: PairRow {
                    metric,
                    seed,
                    method_a: a.method.name().to_owned(),
                    params_a: a.method.label(),
                    method_b: b.method.name().to_owned(),
                    params_b: b.method.label(),
                    difference,
                    lo,
                    hi,
                    tied: lo <= 0.0 && 0.0 <= hi,
                },
            };
            if let (Some(qa), Some(qb)) = (&a.quality, &b.quality)
                && let Some(d) = Difference::new(qa, qb, noise(seed))
            {
                out.push(row(Metric::ForgetQuality, d.d, d.interval.0, d.interval.1));
            }
            for (metric, pick) in [
                (Metric::UliraAcc, (|t: (f64, f64)| t.0) as fn((f64, f64)) -> f64),
                (Metric::UliraAuc, |t: (f64, f64)| t.1),
            ] {
                if let Some(m) = paired_targets(a, b, pick) {
                    out.push(row(metric, m.mean, m.lo, m.hi));
                }
            }
        }
    }
    out
}

/// The mean over targets of `a`'s value less `b`'s, where both have one.
fn paired_targets(a: &Scored, b: &Scored, pick: fn((f64, f64)) -> f64) -> Option<Mean> {
    let d: Vec<f64> = a
        .targets
        .iter()
        .zip(&b.targets)
        .filter_map(|(x, y)| Some(pick((*x)?) - pick((*y)?)))
        .collect();
    (!d.is_empty()).then(|| Mean::of(&d))
}

/// Marks the rows (one per scored method, in order) that are the best of the methods under
/// audit (all but the reference) or not told apart from it (`pairs`' verdicts): by F
/// (highest) and by U-LiRA's accuracy (nearest 0.5).
fn ties(rows: &mut [AuditRow], scored: &[Scored], pairs: &[Pair], reference: &AnyMethod) {
    let candidates = || (0..scored.len()).filter(|&i| scored[i].method != reference);
    let tied = |metric: Metric, best: usize, i: usize| {
        let (a, b) = (best.min(i), best.max(i));
        let pair = pairs.iter().find(|p| (p.a, p.b, p.row.metric) == (a, b, metric));
        pair.map(|p| p.row.tied)
    };
    let by_f = candidates()
        .filter_map(|i| Some((i, scored[i].quality.as_ref()?.f)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((best, _)) = by_f {
        for i in candidates() {
            rows[i].f_tied_best =
                if i == best { Some(true) } else { tied(Metric::ForgetQuality, best, i) };
        }
    }
    let by_attack = candidates()
        .filter_map(|i| Some((i, (rows[i].ulira_acc? - 0.5).abs())))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((best, _)) = by_attack {
        for i in candidates() {
            rows[i].ulira_tied_best =
                if i == best { Some(true) } else { tied(Metric::UliraAcc, best, i) };
        }
    }
}

/// A decision's score as float16 (3 significant digits, beyond +-65504 infinite), on the
/// same side of 0 as the score, so that the committed scores give each decision, and so the
/// attack's accuracy, exactly: a positive score too small for float16 becomes its smallest
/// positive value instead of 0.
fn score_f16(score: f64) -> half::f16 {
    let h = half::f16::from_f64(score);
    if score > 0.0 && h.to_f64() <= 0.0 { half::f16::from_bits(1) } else { h }
}

/// U-LiRA's decisions as a `[decisions, 3]` array: target, population position (into
/// `population.npy`), unlearned (1) or never seen (0); int16 when the population allows it.
fn decisions_npy(decisions: &[results::ulira::Decision], population: usize) -> Vec<u8> {
    let rows = |d: &results::ulira::Decision| [d.target, d.example, usize::from(d.unlearned)];
    let shape = [decisions.len(), 3];
    if population <= i16::MAX as usize && decisions.iter().all(|d| d.target <= i16::MAX as usize) {
        let flat: Vec<i16> = decisions.iter().flat_map(rows).map(|v| v as i16).collect();
        results::npy::to_bytes(&shape, &flat)
    } else {
        let flat: Vec<i32> = decisions.iter().flat_map(rows).map(|v| v as i32).collect();
        results::npy::to_bytes(&shape, &flat)
    }
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
    fn float16_scores_keep_their_side_of_zero() {
        assert_eq!(score_f16(1e-9).to_f64(), 2f64.powi(-24));
        assert_eq!(score_f16(-1e-9).to_f64(), 0.0, "below 0 or at it: not unlearned");
        assert_eq!(score_f16(0.0).to_f64(), 0.0);
        assert_eq!(score_f16(1.0 / 3.0).to_f64(), 0.333251953125);
        assert_eq!(score_f16(-1e6).to_f64(), f64::NEG_INFINITY);
    }

    #[test]
    fn quantiles_and_buckets() {
        let v = [0.0, 0.2, 0.6, 1.0, 50.0];
        assert_eq!(quantile(&v, 0.5), 0.6);
        assert!((quantile(&v, 0.9) - (1.0 + 49.0 * 0.6)).abs() < 1e-12);
        assert_eq!(buckets(&v), vec![(0.0, 2), (0.5, 1), (1.0, 1), (50.0, 1)]);
        assert_eq!(slug("gamma=0.5 epochs=5"), "gamma0.5_epochs5");
    }
}
