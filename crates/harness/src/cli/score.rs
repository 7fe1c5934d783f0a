//! `harness score`: the competition's forgetting quality F, with its interval, for
//! populations of models trained anywhere, from their per-example outputs in `.npy` or
//! `.npz` files (numpy's formats).
//!
//! Each population is `[models, examples]` logit-scaled confidences (the competition's
//! layout: `log p_y - log (1 - p_y)` per model and forget example), or `[models, examples,
//! classes]` logits with `--labels` (`[examples]` integers), from which the confidences are
//! computed as the audit computes them. The retrained population is the reference every
//! example's epsilon is measured against; a second, independent retrained population
//! (`--reference`) gives F_ref, the score of retraining itself at this size: the best a
//! method can get at this N.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rayon::prelude::*;

use crate::report::quality::{AtSize, Difference, Noise, Population, Quality, curve, quantile};

/// Where a population's array is: a `.npy` file, or an array of a `.npz` file (`FILE.npz`
/// for the array named after the option, `FILE.npz:NAME` for another).
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub array: Option<String>,
}

impl Source {
    /// Parses `FILE` or `FILE.npz:NAME`; `name` is the array a bare `.npz` stands for.
    pub fn parse(text: &str, name: &str) -> Self {
        match text.rsplit_once(".npz:") {
            Some((file, array)) => {
                Self { path: PathBuf::from(format!("{file}.npz")), array: Some(array.to_string()) }
            }
            None => {
                let path = PathBuf::from(text);
                let npz = path.extension().is_some_and(|e| e == "npz");
                Self { path, array: npz.then(|| name.to_string()) }
            }
        }
    }

    fn describe(&self) -> String {
        match &self.array {
            Some(a) => format!("{}:{a}", self.path.display()),
            None => self.path.display().to_string(),
        }
    }

    /// The array's `.npy` bytes.
    fn bytes(&self) -> anyhow::Result<Vec<u8>> {
        let file = std::fs::read(&self.path)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let Some(array) = &self.array else { return Ok(file) };
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(file))
            .with_context(|| format!("{}: not a .npz (zip) archive", self.path.display()))?;
        let entry = format!("{array}.npy");
        let names: Vec<String> =
            zip.file_names().filter_map(|n| n.strip_suffix(".npy")).map(String::from).collect();
        let mut file = zip.by_name(&entry).map_err(|_| {
            anyhow::anyhow!(
                "{} has no array '{array}' (it has: {}); name one as {}:NAME",
                self.path.display(),
                names.join(", "),
                self.path.display()
            )
        })?;
        let mut bytes = Vec::with_capacity(file.size() as usize);
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .with_context(|| format!("cannot read {}", self.describe()))?;
        Ok(bytes)
    }
}

/// What `harness score` is asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub unlearned: Source,
    pub retrained: Source,
    pub reference: Option<Source>,
    /// A second unlearned population, to compare with the first (paired).
    pub versus: Option<Source>,
    pub labels: Option<Source>,
    pub out: Option<PathBuf>,
    pub noise: Noise,
    pub accuracies: Option<Accuracies>,
    /// Sub-population sizes for F against N (empty: no curve).
    pub sizes: Vec<usize>,
    /// Random draws per size.
    pub draws: usize,
}

/// The populations' mean accuracies, for the competition's final score
/// `F x (remain_u / remain_r) x (test_u / test_r)`: `(unlearned, retrained)` each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracies {
    pub remain: (f64, f64),
    pub test: (f64, f64),
}

impl Accuracies {
    /// Parses `--remain-accuracy` and `--test-accuracy`, each `UNLEARNED,RETRAINED` in [0, 1]
    /// (a retrained accuracy of 0 cannot divide).
    pub fn parse(remain: &str, test: &str) -> anyhow::Result<Self> {
        let pair = |flag: &str, text: &str| -> anyhow::Result<(f64, f64)> {
            let values: Vec<f64> = text
                .split(',')
                .map(|v| v.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| anyhow::anyhow!("{flag} '{text}': two numbers are needed, UNLEARNED,RETRAINED (e.g. 0.99,0.98)"))?;
            match *values.as_slice() {
                [u, r] if (0.0..=1.0).contains(&u) && r > 0.0 && r <= 1.0 => Ok((u, r)),
                [_, _] => bail!(
                    "{flag} '{text}': accuracies are fractions in [0, 1], the retrained one above 0"
                ),
                _ => bail!(
                    "{flag} '{text}': two numbers are needed, UNLEARNED,RETRAINED (e.g. 0.99,0.98)"
                ),
            }
        };
        Ok(Self {
            remain: pair("--remain-accuracy", remain)?,
            test: pair("--test-accuracy", test)?,
        })
    }

    /// The competition's final score for forgetting quality `f`.
    pub fn final_score(&self, f: f64) -> f64 {
        f * (self.remain.0 / self.remain.1) * (self.test.0 / self.test.1)
    }
}

/// One population read and checked: its confidences.
fn population(source: &Source, labels: Option<&[usize]>) -> anyhow::Result<Population> {
    let name = source.describe();
    let bytes = source.bytes()?;
    let array = results::npy::read(&bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    if !matches!(array.descr.as_str(), "<f4" | "<f8") {
        bail!("{name}: elements of type '{}' where float32 or float64 are needed", array.descr);
    }
    let population = match (array.shape.as_slice(), labels) {
        (&[models, examples], None) => {
            let values = array.floats().expect("a float type");
            Population::new(models, examples, |m, e| values[m * examples + e])
        }
        (&[_, _], Some(_)) => bail!(
            "{name}: shape {:?} is confidences [models, examples], but --labels was given (labels go with logits [models, examples, classes])",
            array.shape
        ),
        (&[models, examples, classes], Some(labels)) => {
            if labels.len() != examples {
                bail!("{name}: {examples} examples, but the labels have {}", labels.len());
            }
            if let Some(&y) = labels.iter().find(|&&y| y >= classes) {
                bail!("the labels: label {y} where {name} has {classes} classes");
            }
            let logits = array.floats().expect("a float type");
            // Logits are read as f32, as the audit's are; every one must stay finite.
            if let Some(at) = logits.par_iter().position_first(|&v| !(v as f32).is_finite()) {
                let k = at / classes;
                bail!(
                    "{name}: model {}, example {} has a logit {} (not finite as float32)",
                    k / examples,
                    k % examples,
                    logits[at]
                );
            }
            let values: Vec<f64> = (0..models * examples)
                .into_par_iter()
                .map_init(
                    || vec![0.0f32; classes],
                    |row, k| {
                        for (r, &v) in row.iter_mut().zip(&logits[k * classes..(k + 1) * classes]) {
                            *r = v as f32;
                        }
                        methods::eval::confidence(row, labels[k % examples])
                    },
                )
                .collect();
            Population::new(models, examples, |m, e| values[m * examples + e])
        }
        (&[_, _, _], None) => bail!(
            "{name}: shape {:?} is logits [models, examples, classes]: give the examples' labels with --labels",
            array.shape
        ),
        _ => bail!(
            "{name}: shape {:?}; [models, examples] confidences or [models, examples, classes] logits are needed",
            array.shape
        ),
    };
    if population.models < 2 {
        bail!("{name}: {} model(s); a population needs at least 2", population.models);
    }
    if population.examples == 0 {
        bail!("{name}: no examples");
    }
    for e in 0..population.examples {
        if let Some(m) = population.example(e).iter().position(|v| !v.is_finite()) {
            bail!("{name}: model {m}, example {e} is {}", population.example(e)[m]);
        }
    }
    Ok(population)
}

fn labels(source: &Source) -> anyhow::Result<Vec<usize>> {
    let name = source.describe();
    let bytes = source.bytes()?;
    let array = results::npy::read(&bytes).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let Some(values) = array.integers() else {
        bail!("{name}: elements of type '{}' where integer labels are needed", array.descr);
    };
    if array.shape.len() != 1 {
        bail!("{name}: shape {:?}; labels are one integer per example", array.shape);
    }
    values
        .into_iter()
        .enumerate()
        .map(|(e, y)| usize::try_from(y).map_err(|_| anyhow::anyhow!("{name}: label {y} at {e}")))
        .collect()
}

/// What was scored: F of the unlearned population, and F_ref if a reference was given.
#[derive(Debug)]
pub struct Scores {
    pub unlearned: Quality,
    pub reference: Option<Quality>,
    pub examples: usize,
    /// The competition's final score, with accuracies.
    pub final_score: Option<f64>,
    /// F against N, and F_ref's (with a reference): empty without `sizes`.
    pub curve: Vec<AtSize>,
    pub reference_curve: Vec<AtSize>,
    /// The `--versus` population's F and the paired difference of the first's less its.
    pub versus: Option<(Quality, Difference)>,
}

/// Reads, checks and scores (writes nothing).
pub fn compute(request: &Request) -> anyhow::Result<Scores> {
    let labels = request.labels.as_ref().map(labels).transpose()?;
    let unlearned = population(&request.unlearned, labels.as_deref())?;
    let retrained = population(&request.retrained, labels.as_deref())?;
    let reference =
        request.reference.as_ref().map(|s| population(s, labels.as_deref())).transpose()?;
    let versus = request.versus.as_ref().map(|s| population(s, labels.as_deref())).transpose()?;
    if let Some((source, v)) = request.versus.as_ref().zip(versus.as_ref())
        && v.models != unlearned.models
    {
        bail!(
            "{}: {} models, but {} has {}; a paired difference needs populations of the same size",
            source.describe(),
            v.models,
            request.unlearned.describe(),
            unlearned.models
        );
    }
    let others = std::iter::once((&request.retrained, &retrained))
        .chain(request.reference.as_ref().zip(reference.as_ref()))
        .chain(request.versus.as_ref().zip(versus.as_ref()));
    for (source, p) in others {
        if p.examples != unlearned.examples {
            bail!(
                "{}: {} examples, but {} has {}; both must hold the same examples in the same order",
                source.describe(),
                p.examples,
                request.unlearned.describe(),
                unlearned.examples
            );
        }
    }
    let smallest = unlearned.models.min(retrained.models);
    let smallest = reference.as_ref().map_or(smallest, |r| smallest.min(r.models));
    if let Some(&n) = request.sizes.iter().find(|&&n| n < 2 || n >= smallest) {
        bail!(
            "--sizes {n}: each size must be at least 2 and below the populations' {smallest} models"
        );
    }
    let curve_of = |u: &Population| {
        if request.sizes.is_empty() {
            Vec::new()
        } else {
            curve(u, &retrained, &request.sizes, request.draws, request.noise.seed)
        }
    };
    let quality = Quality::new(&unlearned, &retrained, request.noise);
    let versus = versus.map(|v| {
        let q = Quality::new(&v, &retrained, request.noise);
        let d = Difference::new(&quality, &q, request.noise).expect("the same models and examples");
        (q, d)
    });
    Ok(Scores {
        versus,
        final_score: request.accuracies.map(|a| a.final_score(quality.f)),
        unlearned: quality,
        curve: curve_of(&unlearned),
        reference_curve: reference.as_ref().map_or(Vec::new(), curve_of),
        reference: reference.map(|r| Quality::new(&r, &retrained, request.noise)),
        examples: unlearned.examples,
    })
}

/// The CSV columns of `score.csv`, one row per scored population.
pub const COLUMNS: &str = "population,models,examples,forget_quality,lo,hi,examples_lo,examples_hi,halves,halves_sd,eps_median,eps_p90,relative_to_reference,final_score";

fn row(
    what: &str,
    q: &Quality,
    examples: usize,
    reference: Option<&Quality>,
    final_score: Option<f64>,
) -> String {
    let mut sorted = q.epsilons.clone();
    sorted.sort_by(f64::total_cmp);
    let relative = reference.map_or(String::new(), |r| (q.f / r.f).to_string());
    let final_score = final_score.map_or(String::new(), |s| s.to_string());
    format!(
        "{what},{},{examples},{},{},{},{},{},{},{},{},{},{relative},{final_score}",
        q.models,
        q.f,
        q.interval.0,
        q.interval.1,
        q.examples_interval.0,
        q.examples_interval.1,
        q.halves.len(),
        q.halves_sd(),
        quantile(&sorted, 0.5),
        quantile(&sorted, 0.9),
    )
}

/// `harness score`: prints F with its interval (and F_ref), and with `--out` writes
/// `score.csv` and the per-example epsilons as `.npy`.
pub fn score(request: &Request) -> anyhow::Result<std::process::ExitCode> {
    if let Some(out) = &request.out {
        results::fsutil::ensure_writable(out, results::fsutil::Folder::Results)?;
    }
    let t0 = std::time::Instant::now();
    let scores = compute(request)?;
    let seconds = t0.elapsed().as_secs_f64();
    let print = |what: &str, q: &Quality| {
        println!(
            "{what}: F = {:.4}, 95% interval [{:.4}, {:.4}] (examples alone [{:.4}, {:.4}]; {} splits into halves, sd {:.4}) at N = {}",
            q.f,
            q.interval.0,
            q.interval.1,
            q.examples_interval.0,
            q.examples_interval.1,
            q.halves.len(),
            q.halves_sd(),
            q.models
        );
    };
    print("unlearned", &scores.unlearned);
    if let Some(r) = &scores.reference {
        print("reference (F_ref: retrained against retrained, the best at this N)", r);
        println!("F / F_ref = {:.3}", scores.unlearned.f / r.f);
    }
    if let Some((q, d)) = &scores.versus {
        print("versus", q);
        println!(
            "F(unlearned) - F(versus) = {:.4}, 95% interval [{:.4}, {:.4}] (paired over the same examples and halves; examples alone [{:.4}, {:.4}]): {}",
            d.d,
            d.interval.0,
            d.interval.1,
            d.examples_interval.0,
            d.examples_interval.1,
            if d.tied() { "not told apart (the interval covers 0)" } else { "told apart" }
        );
    }
    if let Some(s) = scores.final_score {
        println!("final score (F x remain and test accuracy ratios) = {s:.4}");
    }
    let reference_curve = scores.reference_curve.iter().map(Some).chain(std::iter::repeat(None));
    for (at, r) in scores.curve.iter().zip(reference_curve) {
        let with_reference =
            r.map_or(String::new(), |r| format!("; F_ref {:.4} (sd {:.4})", r.mean(), r.sd()));
        println!(
            "at N = {:>4}: F {:.4} (sd {:.4} over {} draw(s)){with_reference}",
            at.models,
            at.mean(),
            at.sd(),
            at.draws.len()
        );
    }
    println!("{} examples scored in {seconds:.1} s", scores.examples);
    if let Some(out) = &request.out {
        write(out, &scores)?;
        println!("wrote {}", out.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn write(out: &Path, scores: &Scores) -> anyhow::Result<()> {
    let mut csv = format!("{COLUMNS}\n");
    let reference = scores.reference.as_ref();
    csv += &row("unlearned", &scores.unlearned, scores.examples, reference, scores.final_score);
    csv.push('\n');
    let epsilons = |q: &Quality| results::npy::to_bytes(&[q.epsilons.len()], &q.epsilons);
    results::fsutil::write_atomic(&out.join("epsilons.npy"), &epsilons(&scores.unlearned))?;
    if let Some(r) = reference {
        csv += &row("reference", r, scores.examples, None, None);
        csv.push('\n');
        results::fsutil::write_atomic(&out.join("reference_epsilons.npy"), &epsilons(r))?;
    }
    if let Some((q, d)) = &scores.versus {
        csv += &row("versus", q, scores.examples, reference, None);
        csv.push('\n');
        let text = format!(
            "{DIFFERENCE_COLUMNS}\n{},{},{},{},{},{},{}\n",
            d.d,
            d.interval.0,
            d.interval.1,
            d.examples_interval.0,
            d.examples_interval.1,
            crate::report::quality::standard_deviation(&d.halves),
            d.tied()
        );
        results::fsutil::write_atomic(&out.join("difference.csv"), text.as_bytes())?;
    }
    if !scores.curve.is_empty() {
        let mut text = format!("{CURVE_COLUMNS}\n");
        let both = [("unlearned", &scores.curve), ("reference", &scores.reference_curve)];
        for (what, curve) in both {
            for at in curve.iter() {
                let (lo, hi) =
                    at.draws.iter().fold((f64::MAX, f64::MIN), |(a, b), &f| (a.min(f), b.max(f)));
                text += &format!(
                    "{what},{},{},{},{},{lo},{hi}\n",
                    at.models,
                    at.draws.len(),
                    at.mean(),
                    at.sd()
                );
            }
        }
        results::fsutil::write_atomic(&out.join("curve.csv"), text.as_bytes())?;
    }
    results::fsutil::write_atomic(&out.join("score.csv"), csv.as_bytes())
}

/// The CSV columns of `difference.csv`: F of `--unlearned` less F of `--versus`, paired.
pub const DIFFERENCE_COLUMNS: &str =
    "forget_quality_difference,lo,hi,examples_lo,examples_hi,halves_sd,tied";

/// The CSV columns of `curve.csv`: F against N, one row per population and size.
pub const CURVE_COLUMNS: &str = "population,models,draws,forget_quality_mean,forget_quality_sd,forget_quality_min,forget_quality_max";
