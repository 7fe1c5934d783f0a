//! Experiment files: TOML parsed into the serde-shaped [`raw::RawExperiment`], then validated
//! into a checked [`Suite`] of [`Experiment`] cells (defaults filled, grids expanded) that
//! everything downstream takes. Unknown keys, wrong types and unknown names are rejected by
//! serde with the file, line and key; semantic errors name the file, the key and the value.
//! The method sections are read by the methods themselves ([`sections`]).

pub mod device;
pub mod raw;
pub mod sections;

use std::path::{Path, PathBuf};

use data::dataset::LoadOptions;
use data::split::{Chosen, ForgetSpec};
use methods::{AnyMethod, Engine, Role};
use model::ClassifierSpec;
use results::check::CheckSpec;
use results::rows::Metric;

use crate::experiment::device::Request;
use raw::{Arch, OneOrList, RawExperiment};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}` {problem}{}", line.map(|n| format!(" (line {n})")).unwrap_or_default())]
    Invalid { path: PathBuf, key: String, problem: String, line: Option<usize> },
}

/// The line (from 1) where `text` sets `key` (`section.parameter`, e.g.
/// `methods.mi_unlearn.gamma` or `audit.shadows`, or a section itself), for errors found
/// after parsing, when the key was written in the usual form: under its `[section]` header.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let header = |l: &str| {
        l.trim().strip_prefix('[').and_then(|l| l.split(']').next()).map(|h| h.trim().to_owned())
    };
    let find_header = |name: &str| lines.iter().position(|l| header(l).as_deref() == Some(name));
    if let Some(start) = find_header(key) {
        return Some(start + 1);
    }
    let (section, parameter) = key.rsplit_once('.')?;
    let start = find_header(section)?;
    lines[start + 1..]
        .iter()
        .take_while(|l| header(l).is_none())
        .position(|l| l.split('=').next().is_some_and(|k| k.trim() == parameter))
        .map(|i| start + i + 2)
}

/// A checked experiment: defaults filled in, the grid expanded (seeds apart).
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    /// The file's `description`, if any.
    pub description: Option<String>,
    pub source: PathBuf,
    pub seeds: Vec<u64>,
    pub data_dir: PathBuf,
    pub load: LoadOptions,
    /// The scenario; with `memorization`, its chosen set is filled in by the execution stage
    /// (`execution::run::resolve`), which trains the population.
    pub forget: ForgetSpec,
    /// `[forget] memorization`, if the forget set is chosen by memorization.
    pub memorization: Option<Memorization>,
    pub model: ClassifierSpec,
    /// Every built-in method and parameter set, in the catalog's order (the original first).
    pub methods: Vec<AnyMethod>,
    /// Every external method's parameter sets, run after the built-in ones (the execution
    /// stage finds their programs and hashes their inputs: `execution::plan`).
    pub external: Vec<sections::ExternalSpec>,
    pub engine: Engine,
    /// Per method name, how many epochs apart its runs are evaluated (always after the last
    /// epoch). Not in the cache key: it changes what is recorded, not the model.
    pub eval_every: Vec<(String, usize)>,
    pub check: Option<CheckSpec>,
    /// The leaderboard's ranking metric (see [`RawExperiment::rank_by`]).
    pub rank_by: Metric,
    /// The device asked for (resolved against the machine when the experiment runs).
    pub device: Request,
    /// The `[audit]` section, if any.
    pub audit: Option<Audit>,
    /// The configuration with every default written out, as TOML.
    pub resolved: String,
}

/// A checked `[forget]` choice by memorization (see [`raw::RawForget`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memorization {
    pub level: data::memorization::Level,
    pub size: usize,
    pub models: usize,
}

impl Memorization {
    /// The chosen set's name: `memorization-high-600`.
    pub fn name(&self) -> String {
        format!("memorization-{}-{}", self.level.name(), self.size)
    }
}

/// The memorization population's size when `[forget] models` is left out.
pub const MEMORIZATION_MODELS: usize = 64;

/// The scenario of a `[forget]` table: by `fraction`, or by `memorization` with `size`
/// (`fraction` 1 of the chosen set); an error names the key.
fn forget_spec(
    f: &raw::RawForget,
) -> Result<(ForgetSpec, Option<Memorization>), (&'static str, String)> {
    if let Some(class) = f.class.filter(|&c| c >= data::dataset::CLASSES) {
        return Err((
            "forget.class",
            format!(
                "is {class}; classes are 0 to 9 (leave `class` out to forget a random subset of every class)"
            ),
        ));
    }
    let Some(level) = f.memorization else {
        if f.size.is_some() || f.models.is_some() {
            let key = if f.size.is_some() { "forget.size" } else { "forget.models" };
            return Err((key, "goes with `memorization`; give `fraction` alone, or add `memorization = \"high\"` (or \"mid\", \"low\")".into()));
        }
        let Some(fraction) = f.fraction else {
            return Err((
                "forget.fraction",
                "is missing; give a fraction in (0, 1], or `memorization` with `size`".into(),
            ));
        };
        if !(fraction > 0.0 && fraction <= 1.0) {
            return Err(("forget.fraction", format!("is {fraction}; it must be in (0, 1]")));
        }
        if f.class.is_none() && fraction == 1.0 {
            return Err((
                "forget.fraction",
                format!(
                    "is 1 with no `class`: it forgets the whole training set and leaves nothing to \
                     remain (at least {} samples must); give a fraction below 1, or a `class` to \
                     forget all of",
                    data::split::MIN_REMAIN
                ),
            ));
        }
        return Ok((ForgetSpec { class: f.class, fraction, chosen: None }, None));
    };
    if let Some(fraction) = f.fraction {
        return Err((
            "forget.fraction",
            format!(
                "is {fraction} beside `memorization`, which chooses the set by `size`; give one of them"
            ),
        ));
    }
    let size = match f.size {
        Some(n) if n >= 1 => n,
        Some(n) => return Err(("forget.size", format!("is {n}; it must be at least 1"))),
        None => {
            return Err((
                "forget.size",
                "is missing: `memorization` chooses `size` examples (e.g. 600)".into(),
            ));
        }
    };
    let models = f.models.unwrap_or(MEMORIZATION_MODELS);
    if !(data::memorization::MIN_MODELS..=MAX_POPULATION).contains(&models) {
        return Err((
            "forget.models",
            format!(
                "is {models}; a memorization estimate takes {} to {MAX_POPULATION} models (e.g. 64)",
                data::memorization::MIN_MODELS
            ),
        ));
    }
    let spec = ForgetSpec { class: f.class, fraction: 1.0, chosen: None };
    Ok((spec, Some(Memorization { level, size, models })))
}

/// A scenario's name before any set is chosen: `class3-0.75`, `memorization-high-600`.
/// (A table in error gets a placeholder: checking the cell reports the error.)
fn scenario_name(f: &raw::RawForget) -> String {
    match forget_spec(f) {
        Ok((spec, None)) => spec.name(),
        Ok((spec, Some(m))) => {
            let chosen = Chosen { name: m.name(), key: String::new(), indices: Vec::new().into() };
            ForgetSpec { chosen: Some(chosen), ..spec }.name()
        }
        Err(_) => "invalid".to_owned(),
    }
}

/// The largest population an audit may ask for (the competition's is 512): a bigger value is
/// a typo.
pub const MAX_POPULATION: usize = 100_000;

/// A checked `[audit]` section (see [`raw::RawAudit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    pub replicates: usize,
    pub shadows: usize,
    pub min_members: usize,
}

impl Audit {
    /// U-LiRA's expected number of other shadows that unlearned a given example of the
    /// scenario's population: each of the `shadows - 1` others trained on it with probability
    /// 1/2 and drew it into its forget set with probability `fraction`.
    pub fn expected_in(&self, fraction: f64) -> f64 {
        self.shadows.saturating_sub(1) as f64 * fraction / 2.0
    }
}

impl Experiment {
    /// Runs of every method per seed (the `[audit]` section's `replicates`, else 1).
    pub fn replicates(&self) -> usize {
        self.audit.map_or(1, |a| a.replicates)
    }

    /// Whether a run of `method` is evaluated after `epoch` for its history (the original,
    /// whose key leaves out the split, never is; a method that hands back only its final
    /// model, after its last epoch alone).
    pub fn evaluates_after(&self, method: &AnyMethod, epoch: usize) -> bool {
        let every = self.eval_every.iter().find(|(m, _)| m == method.name()).map_or(1, |e| e.1);
        let last = epoch == method.epochs();
        method.uses_split() && (last || (epoch.is_multiple_of(every) && method.models_each_epoch()))
    }

    /// The one cell of `suite` (read from `path`), for the commands that take a file of one
    /// dataset and one scenario.
    pub fn single(mut suite: Suite, path: &Path) -> Result<Self, ConfigError> {
        if suite.cells.len() != 1 {
            return Err(ConfigError::Invalid {
                line: None,
                path: path.to_owned(),
                key: "data.dataset".into(),
                problem: format!(
                    "and `forget` make {} cells; this command takes a file of one dataset and one scenario",
                    suite.cells.len()
                ),
            });
        }
        Ok(suite.cells.remove(0))
    }

    /// Parses `text` as a file of one cell; `path` is used in messages and for the default name.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut suite = Suite::parse(text, path)?;
        assert_eq!(suite.cells.len(), 1, "a one-cell file");
        Ok(suite.cells.remove(0))
    }
}

/// An experiment file: one experiment per dataset and scenario ("cell"). A file with one
/// dataset and one `[forget]` is a suite of one cell named like the file; with several, each
/// cell is named `<dataset>-<scenario>` (e.g. `mnist-class3-0.75`) and its results go to
/// `<suite>/<cell>/`.
#[derive(Debug, Clone)]
pub struct Suite {
    pub name: String,
    pub cells: Vec<Experiment>,
}

impl Suite {
    pub fn is_single(&self) -> bool {
        self.cells.len() == 1
    }

    /// Each cell's output folder under `out`.
    pub fn cell_out(&self, out: &Path, cell: &Experiment) -> PathBuf {
        if self.is_single() { out.to_owned() } else { out.join(&cell.name) }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawExperiment = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            line: None,
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let datasets = raw.data.dataset.as_ref().map_or(vec![Default::default()], |d| d.to_vec());
        let scenarios = raw.forget.to_vec();
        if datasets.is_empty() || scenarios.is_empty() {
            let key = if datasets.is_empty() { "data.dataset" } else { "forget" };
            return Err(invalid(key, "is an empty list; give at least one".into()));
        }
        check_unique(&datasets, |d| format!("{:?}", d.name()))
            .map_err(|d| invalid("data.dataset", format!("lists {d} twice")))?;
        let single = datasets.len() == 1 && scenarios.len() == 1;
        if !single && raw.data.dir.is_some() {
            return Err(invalid(
                "data.dir",
                "cannot be one folder for several cells; leave it out (each dataset has its own, from scripts/setup)".into(),
            ));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("experiment");
        let name = raw.name.clone().unwrap_or_else(|| stem.to_owned());
        let mut cells = Vec::new();
        for dataset in &datasets {
            for scenario in &scenarios {
                let mut cell = raw.clone();
                cell.data.dataset = Some(OneOrList::One(*dataset));
                cell.forget = OneOrList::One(scenario.clone());
                if !single {
                    cell.name = Some(format!("{}-{}", dataset.name(), scenario_name(scenario)));
                }
                let exp = validate(cell, path, text)?;
                if cells.iter().any(|c: &Experiment| c.name == exp.name) {
                    return Err(invalid(
                        "forget",
                        format!("lists the scenario {} twice", exp.name),
                    ));
                }
                cells.push(exp);
            }
        }
        Ok(Self { name, cells })
    }
}

/// The largest epoch count, batch size or evaluation interval an experiment may ask for
/// (`methods::method::MAX_COUNT`).
pub use methods::method::MAX_COUNT;

/// The most hidden layers, and units per hidden layer, a model may have (far beyond what
/// MNIST calls for; larger sizes are typos that would exhaust memory).
pub const MAX_LAYERS: usize = 32;
pub const MAX_WIDTH: usize = 65_536;

fn validate(mut raw: RawExperiment, path: &Path, text: &str) -> Result<Experiment, ConfigError> {
    let invalid = |key: &str, problem: String| ConfigError::Invalid {
        line: line_of(text, key),
        path: path.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("experiment");
    let name = raw.name.clone().unwrap_or_else(|| stem.to_owned());
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || name.starts_with('.')
    {
        return Err(invalid(
            "name",
            format!(
                "is {name:?}; use letters, digits, '-', '_' and '.' (it names the results folder)"
            ),
        ));
    }
    raw.name = Some(name.clone());

    if raw.seeds.is_empty() {
        return Err(invalid(
            "seeds",
            "is empty; list at least one seed, e.g. seeds = [0, 1, 2]".into(),
        ));
    }
    check_unique(&raw.seeds, |s| s.to_string())
        .map_err(|dup| invalid("seeds", format!("lists {dup} twice")))?;

    let engine: Engine = *raw.engine.get_or_insert_default();

    let data = &mut raw.data;
    let kind = match data.dataset.get_or_insert_with(|| OneOrList::One(Default::default())) {
        OneOrList::One(kind) => *kind,
        OneOrList::List(_) => unreachable!("a suite's cells have one dataset each"),
    };
    let data_dir = data.dir.get_or_insert_with(|| PathBuf::from(kind.default_dir())).clone();
    // A limit beyond the set would train the same model as no limit under a key of its own.
    // The test set needs two images: the membership-inference attack fits on one half of
    // them and measures on the other.
    for (key, limit, least, most, set) in [
        ("data.train_limit", data.train_limit, 1, data::dataset::TRAIN_SAMPLES, "training"),
        ("data.test_limit", data.test_limit, 2, data::dataset::TEST_SAMPLES, "test"),
    ] {
        if let Some(n) = limit.filter(|n| !(least..=most).contains(n)) {
            return Err(invalid(
                key,
                format!(
                    "is {n}; the {set} set has {most} images: give {least} to {most}, or leave \
                     it out to use them all"
                ),
            ));
        }
    }
    let load = LoadOptions { kind, train_limit: data.train_limit, test_limit: data.test_limit };

    let OneOrList::One(raw_forget) = &raw.forget else {
        unreachable!("a suite's cells have one scenario each")
    };
    let (forget, memorization) = forget_spec(raw_forget).map_err(|(k, p)| invalid(k, p))?;

    let base = match raw.model.arch.get_or_insert_default() {
        Arch::Mlp => ClassifierSpec::default(),
        Arch::Cnn => ClassifierSpec::lenet5(),
    };
    let hidden = raw.model.hidden.get_or_insert_with(|| base.hidden.clone()).clone();
    if hidden.contains(&0) {
        return Err(invalid(
            "model.hidden",
            format!("is {hidden:?}; layer sizes must be positive"),
        ));
    }
    if hidden.len() > MAX_LAYERS || hidden.iter().any(|&h| h > MAX_WIDTH) {
        return Err(invalid(
            "model.hidden",
            format!(
                "is {hidden:?}; use at most {MAX_LAYERS} hidden layers of at most {MAX_WIDTH} units"
            ),
        ));
    }
    let model = ClassifierSpec { hidden, ..base };

    let sections = sections::read(&raw.methods).map_err(|(key, problem)| invalid(&key, problem))?;
    raw.methods = sections.resolved;
    let check = match &raw.check {
        Some(c) => Some(c.validate().map_err(|(key, problem)| invalid(&key, problem))?),
        None => None,
    };
    if memorization.is_some() && !sections.methods.iter().any(|m| m.role() == Role::Original) {
        return Err(invalid(
            "forget.memorization",
            "needs the original's section ([methods.original]): its protocol trains the \
             memorization population"
                .into(),
        ));
    }
    let audit = match raw.audit.as_mut() {
        Some(a) => Some(validate_audit(a, &sections.methods, &forget, &invalid)?),
        None => None,
    };
    if let Some(check) = &check {
        check_producible(check, audit, &sections.methods)
            .map_err(|p| invalid("check.metrics", p))?;
    }
    let device = *raw.device.get_or_insert_default();
    let rank_by = raw.rank_by.get_or_insert_default().metric();

    let resolved = toml::to_string_pretty(&raw).expect("a parsed experiment serialises");
    Ok(Experiment {
        name,
        description: raw.description.clone(),
        source: path.to_owned(),
        seeds: raw.seeds,
        data_dir,
        load,
        eval_every: sections.eval_every,
        forget,
        memorization,
        model,
        methods: sections.methods,
        external: sections.external,
        engine,
        check,
        rank_by,
        device,
        audit,
        resolved,
    })
}

/// Fills the `[audit]` section's defaults and checks it against the experiment's methods
/// and scenario.
fn validate_audit(
    a: &mut raw::RawAudit,
    methods: &[AnyMethod],
    forget: &ForgetSpec,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Audit, ConfigError> {
    let audit = Audit {
        replicates: *a.replicates.get_or_insert(1),
        shadows: *a.shadows.get_or_insert(0),
        min_members: *a.min_members.get_or_insert(4),
    };
    for (key, n, least) in [
        ("audit.replicates", audit.replicates, 1),
        ("audit.shadows", audit.shadows, 0),
        ("audit.min_members", audit.min_members, 2),
    ] {
        if n < least || n > MAX_POPULATION {
            return Err(invalid(key, format!("is {n}; it must be {least} to {MAX_POPULATION}")));
        }
    }
    if audit.shadows == 1 {
        return Err(invalid(
            "audit.shadows",
            "is 1; U-LiRA scores each shadow against the others: give at least 2 (e.g. 64), or 0 for none".into(),
        ));
    }
    if !methods.iter().any(|m| m.role() == Role::Reference) {
        return Err(invalid(
            "audit",
            format!(
                "needs a [methods.{}] section: its models are the population every method is \
                 scored against",
                reference_name()
            ),
        ));
    }
    let expected = audit.expected_in(forget.fraction);
    if audit.shadows > 0 && expected < audit.min_members as f64 {
        let needed = (2.0 * audit.min_members as f64 / forget.fraction).ceil() as usize + 1;
        return Err(invalid(
            "audit.shadows",
            format!(
                "is {}: with a forget fraction of {} a forget example is unlearned by {expected:.1} \
                 other shadows on average, fewer than `audit.min_members` = {}; use at least \
                 {needed} shadows",
                audit.shadows, forget.fraction, audit.min_members
            ),
        ));
    }
    Ok(audit)
}

/// That every metric `[check]` names is one the experiment computes: a metric without a value
/// would drop out of the baseline, and its check pass forever.
fn check_producible(
    check: &CheckSpec,
    audit: Option<Audit>,
    methods: &[AnyMethod],
) -> Result<(), String> {
    use results::rows::Needs;
    for &(metric, _) in &check.metrics {
        let missing = match metric.needs() {
            Needs::Nothing | Needs::MiEstimate => None,
            Needs::Reference => (!methods.iter().any(|m| m.role() == Role::Reference)).then(|| {
                format!(
                    "a [methods.{0}] section (it is the difference from {0} on the same seed)",
                    reference_name()
                )
            }),
            Needs::Audit => audit.is_none().then(|| {
                "an [audit] section (it compares each run's confidences with retrain's)".to_owned()
            }),
            Needs::Replicates(least) => (audit.map_or(0, |a| a.replicates) < least).then(|| {
                format!(
                    "an [audit] section with replicates >= {least} (it scores a population of \
                     each method's models against retrain's)"
                )
            }),
            Needs::Shadows => (audit.map_or(0, |a| a.shadows) == 0).then(|| {
                "an [audit] section with shadows (U-LiRA attacks with the shadow models)".to_owned()
            }),
        };
        if let Some(what) = missing {
            return Err(format!(
                "lists {metric}, which this experiment cannot compute: it needs {what}; add it, \
                 or take {metric} out of check.metrics"
            ));
        }
    }
    Ok(())
}

/// The name of the catalog's reference method, for messages.
fn reference_name() -> &'static str {
    methods::catalog::ALL.iter().find(|r| r.role == Role::Reference).expect("a reference").name
}

fn check_unique<T: PartialEq>(values: &[T], show: impl Fn(&T) -> String) -> Result<(), String> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(show(v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
