//! The forgetting quality F of one population of models against another, with what a reader
//! needs to decide on it: its 95% interval, made of the two kinds of noise F has.
//!
//! - **Examples.** F is a mean over forget examples of each one's points; resampling the
//!   examples with replacement (each example's points fixed) gives a percentile interval.
//!   This noise is small: thousands of examples.
//! - **Models.** Each example's epsilon is estimated from N models per population, and
//!   another N would give other epsilons. F is recomputed on a random half of each
//!   population (the unlearned half against the retrained half), several times: the spread
//!   of those scores (at N/2 models each) is the model noise at N/2, and a variance that
//!   goes as 1/N makes it 1/sqrt(2) of that at N. This noise is the large one at N = 64.
//!
//! The interval reported is F +- sqrt(e^2 + m^2), `e` the bootstrap's half-width and `m`
//! 1.96 times the halves' standard deviation over sqrt(2): two independent sources of
//! error whose variances add. Clipped to [0, 1].

use rayon::prelude::*;
use results::forget_score::{epsilon, epsilon_sorted, points};

/// Confidences of a population of models on the same examples, stored by example.
#[derive(Debug, Clone)]
pub struct Population {
    pub models: usize,
    pub examples: usize,
    /// `by_example[e * models + m]`.
    by_example: Vec<f64>,
}

impl Population {
    /// From `value(m, e)` for model `m` and example `e`.
    pub fn new(models: usize, examples: usize, value: impl Fn(usize, usize) -> f64) -> Self {
        let by_example =
            (0..examples).flat_map(|e| (0..models).map(move |m| (e, m))).map(|(e, m)| value(m, e));
        Self { models, examples, by_example: by_example.collect() }
    }

    /// From each model's confidences (`[model][example]`, every model the same length).
    pub fn from_models(models: &[Vec<f64>]) -> Self {
        let examples = models.first().map_or(0, Vec::len);
        Self::new(models.len(), examples, |m, e| models[m][e])
    }

    /// Example `e`'s confidences, one per model.
    pub fn example(&self, e: usize) -> &[f64] {
        &self.by_example[e * self.models..(e + 1) * self.models]
    }

    /// The population of models `chosen` alone (the tests' plain way to a subset; scoring
    /// filters sorted examples by masks instead).
    #[cfg(test)]
    pub fn subset(&self, chosen: &[usize]) -> Self {
        Self::new(chosen.len(), self.examples, |m, e| self.example(e)[chosen[m]])
    }
}

/// Each example's epsilon for `unlearned` against `retrained` (the competition's, per
/// example; in parallel over examples).
pub fn epsilons(unlearned: &Population, retrained: &Population) -> Vec<f64> {
    (0..unlearned.examples)
        .into_par_iter()
        .map(|e| epsilon(unlearned.example(e), retrained.example(e)))
        .collect()
}

/// Each example's epsilon for all of `unlearned` against all of `retrained`, and for each
/// pair of subsets in `halves` (`(unlearned models, retrained models)`, as masks), in one
/// pass over the examples: each example's confidences are sorted once, and a subset of them
/// is a filter of the sorted models.
fn epsilons_with_subsets(
    unlearned: &Population,
    retrained: &Population,
    halves: &[(Vec<bool>, Vec<bool>)],
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let sorted = |values: &[f64]| {
        let mut v: Vec<(f64, usize)> = values.iter().copied().zip(0..).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let pick = |v: &[(f64, usize)], keep: Option<&[bool]>| -> Vec<f64> {
        v.iter().filter(|(_, m)| keep.is_none_or(|k| k[*m])).map(|(c, _)| *c).collect()
    };
    let per_example: Vec<(f64, Vec<f64>)> = (0..unlearned.examples)
        .into_par_iter()
        .map(|e| {
            let (u, r) = (sorted(unlearned.example(e)), sorted(retrained.example(e)));
            let all = epsilon_sorted(&pick(&u, None), &pick(&r, None));
            let halves = halves
                .iter()
                .map(|(ku, kr)| epsilon_sorted(&pick(&u, Some(ku)), &pick(&r, Some(kr))))
                .collect();
            (all, halves)
        })
        .collect();
    let mut by_half = vec![Vec::with_capacity(per_example.len()); halves.len()];
    let all = per_example
        .into_iter()
        .map(|(all, halves)| {
            for (h, eps) in by_half.iter_mut().zip(halves) {
                h.push(eps);
            }
            all
        })
        .collect();
    (all, by_half)
}

/// How much resampling goes into an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noise {
    /// Bootstrap resamples of the examples.
    pub resamples: usize,
    /// Times F is recomputed on a random half of each population.
    pub splits: usize,
    /// The seed of the resampling's random streams.
    pub seed: u64,
}

impl Default for Noise {
    fn default() -> Self {
        Self { resamples: 1000, splits: 8, seed: 0 }
    }
}

/// F with its interval and the pieces it is made of.
#[derive(Debug, Clone)]
pub struct Quality {
    pub f: f64,
    /// Models per population F was scored at (the unlearned population's).
    pub models: usize,
    pub epsilons: Vec<f64>,
    /// The 95% percentile interval over bootstrap resamples of the examples.
    pub examples_interval: (f64, f64),
    /// F of each random half against a random half (`models / 2` of each population);
    /// empty below 4 models.
    pub halves: Vec<f64>,
    /// The 95% interval with both kinds of noise (see the module's notes).
    pub interval: (f64, f64),
}

impl Quality {
    /// Scores `unlearned` against `retrained`.
    pub fn new(unlearned: &Population, retrained: &Population, noise: Noise) -> Self {
        let models = unlearned.models;
        // A random half of each population, `noise.splits` times (none below 4 models).
        let halves: Vec<(Vec<bool>, Vec<bool>)> = if models.min(retrained.models) >= 4 {
            (0..noise.splits)
                .map(|s| {
                    let rng = &mut data::rng::stream(noise.seed, &format!("quality/halves/{s}"));
                    (half(rng, unlearned.models), half(rng, retrained.models))
                })
                .collect()
        } else {
            Vec::new()
        };
        let (epsilons, by_half) = epsilons_with_subsets(unlearned, retrained, &halves);
        let each = points(&epsilons, models);
        let f = mean(&each);
        let examples_interval = bootstrap(&each, noise.resamples, noise.seed);
        let halves: Vec<f64> = by_half.iter().map(|eps| mean(&points(eps, models / 2))).collect();
        let h = half_width(examples_interval, &halves);
        let interval = ((f - h).max(0.0), (f + h).min(1.0));
        Self { f, models, epsilons, examples_interval, halves, interval }
    }

    /// The standard deviation of the halves' F (0 with fewer than two).
    pub fn halves_sd(&self) -> f64 {
        standard_deviation(&self.halves)
    }
}

/// The difference in F between two unlearned populations scored against the same retrained
/// one, paired: over the same examples (the bootstrap resamples examples, each with both
/// populations' points) and the same halves of the retrained models (a split's halves come
/// from one stream, so two populations of the same size get the same retrained half).
#[derive(Debug, Clone)]
pub struct Difference {
    /// F of the first less F of the second.
    pub d: f64,
    /// The 95% percentile interval over bootstrap resamples of the examples.
    pub examples_interval: (f64, f64),
    /// The difference at each split into halves.
    pub halves: Vec<f64>,
    /// The 95% interval with both kinds of noise, combined as for F (not clipped).
    pub interval: (f64, f64),
}

impl Difference {
    /// `a` less `b`, both scored by [`Quality::new`] with `noise` against the same retrained
    /// population; `None` if they differ in models or examples (nothing to pair).
    pub fn new(a: &Quality, b: &Quality, noise: Noise) -> Option<Self> {
        if a.models != b.models || a.epsilons.len() != b.epsilons.len() {
            return None;
        }
        let (pa, pb) = (points(&a.epsilons, a.models), points(&b.epsilons, b.models));
        let each: Vec<f64> = pa.iter().zip(&pb).map(|(x, y)| x - y).collect();
        let d = a.f - b.f;
        let examples_interval = bootstrap(&each, noise.resamples, noise.seed);
        let halves: Vec<f64> = a.halves.iter().zip(&b.halves).map(|(x, y)| x - y).collect();
        let h = half_width(examples_interval, &halves);
        Some(Self { d, examples_interval, halves, interval: (d - h, d + h) })
    }

    /// Whether the interval covers 0: the two are not told apart.
    pub fn tied(&self) -> bool {
        self.interval.0 <= 0.0 && 0.0 <= self.interval.1
    }
}

/// The 95% interval's half-width from both kinds of noise (see the module's notes): the
/// examples' bootstrap interval and the spread of the score over halves, scaled to N.
fn half_width(examples_interval: (f64, f64), halves: &[f64]) -> f64 {
    let e = (examples_interval.1 - examples_interval.0) / 2.0;
    let m = 1.96 * standard_deviation(halves) / std::f64::consts::SQRT_2;
    e.hypot(m)
}

/// A random half (rounded down) of `0..n`, as a mask.
fn half(rng: &mut data::rng::Rng, n: usize) -> Vec<bool> {
    some(rng, n, n / 2)
}

/// `k` random members of `0..n`, as a mask.
fn some(rng: &mut data::rng::Rng, n: usize, k: usize) -> Vec<bool> {
    let mut mask = vec![false; n];
    for m in data::rng::subset(rng, n, k) {
        mask[m] = true;
    }
    mask
}

/// F at one population size: over random draws of `models` models from each population.
#[derive(Debug, Clone, PartialEq)]
pub struct AtSize {
    pub models: usize,
    /// F of each draw (one, the whole populations, at their full size).
    pub draws: Vec<f64>,
}

impl AtSize {
    pub fn mean(&self) -> f64 {
        mean(&self.draws)
    }

    /// The sample standard deviation over draws (0 with one).
    pub fn sd(&self) -> f64 {
        standard_deviation(&self.draws)
    }
}

/// F against N: at each of `sizes` (each at least 2 and below both populations' sizes), F of
/// `draws` random draws of that many models from each population (streams
/// `quality/curve/{size}/{draw}` of `seed`), and at the full size F itself. Scores at
/// different N are not comparable (the buckets go up to ceil(ln(N - 1))), so a curve, with a
/// reference's curve beside it, is what says how a score would move at another N.
pub fn curve(
    unlearned: &Population,
    retrained: &Population,
    sizes: &[usize],
    draws: usize,
    seed: u64,
) -> Vec<AtSize> {
    let full = unlearned.models.min(retrained.models);
    let sizes: Vec<usize> = sizes.iter().copied().filter(|&n| n >= 2 && n < full).collect();
    let masks: Vec<(Vec<bool>, Vec<bool>)> = sizes
        .iter()
        .flat_map(|&n| (0..draws).map(move |d| (n, d)))
        .map(|(n, d)| {
            let rng = &mut data::rng::stream(seed, &format!("quality/curve/{n}/{d}"));
            (some(rng, unlearned.models, n), some(rng, retrained.models, n))
        })
        .collect();
    let (all, by_draw) = epsilons_with_subsets(unlearned, retrained, &masks);
    let mut out: Vec<AtSize> = sizes
        .iter()
        .zip(by_draw.chunks(draws.max(1)))
        .map(|(&n, eps)| AtSize {
            models: n,
            draws: eps.iter().map(|e| results::forget_score::forget_score(e, n)).collect(),
        })
        .collect();
    out.push(AtSize {
        models: unlearned.models,
        draws: vec![results::forget_score::forget_score(&all, unlearned.models)],
    });
    out
}

/// A mean with its 95% interval over independent values (Student's t).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mean {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Mean {
    /// Of `values` (at least one; a single value gets a zero-width interval).
    pub fn of(values: &[f64]) -> Self {
        let m = mean(values);
        let n = values.len();
        let h =
            if n < 2 { 0.0 } else { t_975(n - 1) * standard_deviation(values) / (n as f64).sqrt() };
        Self { mean: m, lo: m - h, hi: m + h }
    }

    /// Whether the interval covers 0.
    pub fn covers_zero(&self) -> bool {
        self.lo <= 0.0 && 0.0 <= self.hi
    }
}

/// Student's t distribution's 97.5% quantile with `df` degrees of freedom: to 4 decimals
/// from the table up to 10, then the Cornish-Fisher expansion about the normal's 1.96
/// (within 2e-4 of the exact value from 11 on).
fn t_975(df: usize) -> f64 {
    const SMALL: [f64; 10] =
        [12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281];
    if let Some(&t) = SMALL.get(df.wrapping_sub(1)) {
        return t;
    }
    let (z, d): (f64, f64) = (1.959_963_984_540_054, df as f64);
    let (z3, z5, z7) = (z.powi(3), z.powi(5), z.powi(7));
    z + (z3 + z) / (4.0 * d)
        + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * d * d)
        + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * d.powi(3))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The sample standard deviation (n - 1), 0 with fewer than two values.
pub fn standard_deviation(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// The 2.5% and 97.5% quantiles of the mean of `points` over `resamples` resamples with
/// replacement.
fn bootstrap(points: &[f64], resamples: usize, seed: u64) -> (f64, f64) {
    use rand::Rng as _;
    let rng = &mut data::rng::stream(seed, "quality/bootstrap");
    let n = points.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| points[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    (quantile(&means, 0.025), quantile(&means, 0.975))
}

/// numpy's default (linear) quantile of ascending `sorted` values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_and_means_with_intervals() {
        // scipy.stats.t.ppf(0.975, df) for df 5, 7, 11, 30, 63, 1000.
        for (df, exact) in [(5, 2.570_582), (7, 2.364_624), (11, 2.200_985), (30, 2.042_272)]
            .into_iter()
            .chain([(63, 1.998_341), (1000, 1.962_339)])
        {
            assert!((t_975(df) - exact).abs() < 2e-4, "df {df}: {} against {exact}", t_975(df));
        }
        assert_eq!(t_975(1), 12.7062);
        // Mean 2, sd 1 (1, 2, 3), 3 values: 2 +- 4.3027 / sqrt 3.
        let m = Mean::of(&[1.0, 2.0, 3.0]);
        assert_eq!(m.mean, 2.0);
        assert!((m.hi - 2.0 - 4.3027 / 3f64.sqrt()).abs() < 1e-12 && m.covers_zero());
        let one = Mean::of(&[0.5]);
        assert_eq!((one.lo, one.hi, one.covers_zero()), (0.5, 0.5, false));
    }

    /// `models` x `examples` confidences: example e's mean is `e % 7` plus `shift`, with
    /// a model's own noise.
    fn population(models: usize, examples: usize, shift: f64, seed: u64) -> Population {
        use rand::Rng as _;
        let rng = &mut data::rng::stream(seed, "population");
        let noise: Vec<f64> = (0..models * examples).map(|_| rng.random_range(-1.0..1.0)).collect();
        Population::new(models, examples, |m, e| (e % 7) as f64 + shift + noise[m * examples + e])
    }

    #[test]
    fn a_population_is_stored_by_example_and_subsets_keep_the_models_chosen() {
        let p = Population::new(3, 2, |m, e| (10 * m + e) as f64);
        assert_eq!(p.example(1), &[1.0, 11.0, 21.0]);
        assert_eq!(p.subset(&[2, 0]).example(0), &[20.0, 0.0]);
    }

    #[test]
    fn f_matches_the_scorer_and_its_interval_holds_both_noises() {
        let (u, r) = (population(16, 300, 0.0, 1), population(16, 300, 0.0, 2));
        let q = Quality::new(&u, &r, Noise::default());
        let eps = epsilons(&u, &r);
        assert_eq!(q.f, results::forget_score::forget_score(&eps, 16));
        assert_eq!(q.epsilons, eps);
        let (lo, hi) = q.examples_interval;
        assert!(lo < q.f && q.f < hi, "{lo} {} {hi}", q.f);
        assert_eq!(q.halves.len(), 8);
        // Each half scored from the sorted full populations, filtered, as from its subsets.
        for (s, &h) in q.halves.iter().enumerate() {
            let rng = &mut data::rng::stream(0, &format!("quality/halves/{s}"));
            let (hu, hr) = (data::rng::subset(rng, 16, 8), data::rng::subset(rng, 16, 8));
            let eps = epsilons(&u.subset(&hu), &r.subset(&hr));
            assert_eq!(h, results::forget_score::forget_score(&eps, 8), "split {s}");
        }
        // Halves of 8 models score on fewer buckets, so differently from F: their spread
        // is the model noise, and it widens the interval beyond the examples' alone.
        assert!(q.halves_sd() > 0.0);
        let (a, b) = q.interval;
        assert!(a <= lo && b >= hi && (b - a) > (hi - lo), "{a} {b} against {lo} {hi}");
        let e = (hi - lo) / 2.0;
        let m = 1.96 * q.halves_sd() / 2f64.sqrt();
        assert!((b - q.f - e.hypot(m)).abs() < 1e-12 || b == 1.0);
        // The same seed, the same numbers; another seed, other resamples.
        let again = Quality::new(&u, &r, Noise::default());
        assert_eq!((again.interval, again.halves.clone()), (q.interval, q.halves.clone()));
        let other = Quality::new(&u, &r, Noise { seed: 1, ..Noise::default() });
        assert_ne!(other.halves, q.halves);
    }

    #[test]
    fn populations_that_differ_score_lower_with_intervals_that_do_not_overlap() {
        let r = population(16, 300, 0.0, 2);
        let same = Quality::new(&population(16, 300, 0.0, 1), &r, Noise::default());
        let shifted = Quality::new(&population(16, 300, 1.5, 1), &r, Noise::default());
        assert!(shifted.interval.1 < same.interval.0, "{:?} {:?}", shifted.interval, same.interval);
    }

    #[test]
    fn the_curve_scores_draws_of_each_size_and_the_whole_at_its_own() {
        let (u, r) = (population(16, 200, 0.0, 1), population(16, 200, 0.0, 2));
        let c = curve(&u, &r, &[4, 8, 16, 40], 3, 0);
        // 16 and 40 are not below the populations' size: the whole is the last point.
        assert_eq!(
            c.iter().map(|a| (a.models, a.draws.len())).collect::<Vec<_>>(),
            [(4, 3), (8, 3), (16, 1)]
        );
        assert_eq!(c[2].draws[0], Quality::new(&u, &r, Noise::default()).f);
        // Each draw as from its subsets.
        let rng = &mut data::rng::stream(0, "quality/curve/8/1");
        let (du, dr) = (data::rng::subset(rng, 16, 8), data::rng::subset(rng, 16, 8));
        let eps = epsilons(&u.subset(&du), &r.subset(&dr));
        assert_eq!(c[1].draws[1], results::forget_score::forget_score(&eps, 8));
        assert!(c[0].sd() > 0.0 && c[2].sd() == 0.0);
    }

    #[test]
    fn a_paired_difference_is_tighter_than_either_score_and_ties_the_same_population() {
        let r = population(16, 300, 0.0, 2);
        let (a, b) = (population(16, 300, 0.0, 1), population(16, 300, 0.6, 3));
        let (qa, qb) =
            (Quality::new(&a, &r, Noise::default()), Quality::new(&b, &r, Noise::default()));
        let d = Difference::new(&qa, &qb, Noise::default()).unwrap();
        assert_eq!(d.d, qa.f - qb.f);
        assert!(d.d > 0.0 && !d.tied(), "{:?}", d.interval);
        // Paired over the same examples: tighter than the two examples' intervals side by side.
        let width = |i: (f64, f64)| i.1 - i.0;
        assert!(
            width(d.examples_interval) < width(qa.examples_interval) + width(qb.examples_interval)
        );
        assert_eq!(
            d.halves,
            qa.halves.iter().zip(&qb.halves).map(|(x, y)| x - y).collect::<Vec<_>>()
        );
        // A population against itself: difference 0 exactly, and a tie.
        let same = Difference::new(&qa, &qa, Noise::default()).unwrap();
        assert_eq!((same.d, same.interval), (0.0, (0.0, 0.0)));
        assert!(same.tied());
        // Different sizes do not pair.
        let small = Quality::new(&population(8, 300, 0.0, 4), &r, Noise::default());
        assert!(Difference::new(&qa, &small, Noise::default()).is_none());
    }

    #[test]
    fn below_four_models_there_are_no_halves_and_the_examples_give_the_interval() {
        let q =
            Quality::new(&population(3, 50, 0.0, 1), &population(3, 50, 0.0, 2), Noise::default());
        assert!(q.halves.is_empty());
        let (lo, hi) = q.examples_interval;
        let h = (hi - lo) / 2.0;
        assert!((q.interval.1 - (q.f + h).min(1.0)).abs() < 1e-12);
    }
}
