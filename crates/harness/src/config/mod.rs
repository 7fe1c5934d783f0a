//! Experiment files: TOML parsed into the serde-shaped [`raw::RawExperiment`], then validated
//! into a checked [`Suite`] of [`Experiment`] cells (defaults filled, grids expanded) that
//! everything downstream takes. Unknown keys, wrong types and unknown names are rejected by
//! serde with the file, line and key; semantic errors name the file, the key and the value.
//! The method sections are read by the methods themselves ([`sections`]).

pub mod raw;
pub mod sections;

use std::path::{Path, PathBuf};

use data::dataset::LoadOptions;
use data::split::ForgetSpec;
use methods::{AnyMethod, Engine};
use model::ClassifierSpec;
use results::check::CheckSpec;
use results::rows::Metric;

use crate::device::Request;
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
    pub source: PathBuf,
    pub seeds: Vec<u64>,
    pub data_dir: PathBuf,
    pub load: LoadOptions,
    pub forget: ForgetSpec,
    pub model: ClassifierSpec,
    /// Every method and parameter set, in the catalog's order (`original` first).
    pub methods: Vec<AnyMethod>,
    pub engine: Engine,
    /// Per method name, how many epochs apart its runs are evaluated (always after the last
    /// epoch). Not in the cache key: it changes what is recorded, not the model.
    pub eval_every: Vec<(&'static str, usize)>,
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
    /// whose key leaves out the split, never is).
    pub fn evaluates_after(&self, method: &AnyMethod, epoch: usize) -> bool {
        let every = self.eval_every.iter().find(|(m, _)| *m == method.name()).map_or(1, |e| e.1);
        method.uses_split() && (epoch.is_multiple_of(every) || epoch == method.epochs())
    }

    /// Loads a file of one cell (one dataset, one scenario); see [`Suite::load`] for more.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut suite = Suite::load(path)?;
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

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Io { path: path.to_owned(), source })?;
        Self::parse(&text, path)
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
                    let spec = ForgetSpec { class: scenario.class, fraction: scenario.fraction };
                    cell.name = Some(format!("{}-{}", dataset.name(), spec.name()));
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
    let forget = ForgetSpec { class: raw_forget.class, fraction: raw_forget.fraction };
    if let Some(class) = forget.class.filter(|&c| c >= data::dataset::CLASSES) {
        return Err(invalid(
            "forget.class",
            format!(
                "is {class}; classes are 0 to 9 (leave `class` out to forget a random subset of every class)"
            ),
        ));
    }
    if !(forget.fraction > 0.0 && forget.fraction <= 1.0) {
        return Err(invalid(
            "forget.fraction",
            format!("is {}; it must be in (0, 1]", forget.fraction),
        ));
    }
    if forget.class.is_none() && forget.fraction == 1.0 {
        return Err(invalid(
            "forget.fraction",
            format!(
                "is 1 with no `class`: it forgets the whole training set and leaves nothing to \
                 remain (at least {} samples must); give a fraction below 1, or a `class` to \
                 forget all of",
                data::split::MIN_REMAIN
            ),
        ));
    }

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

    let files = crate::external::DataFiles { dir: data_dir.clone(), load: load.clone() };
    let sections =
        sections::read(&raw.methods, &files).map_err(|(key, problem)| invalid(&key, problem))?;
    raw.methods = sections.resolved;
    let check = match &raw.check {
        Some(c) => Some(c.validate().map_err(|(key, problem)| invalid(&key, problem))?),
        None => None,
    };
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
        source: path.to_owned(),
        seeds: raw.seeds,
        data_dir,
        load,
        eval_every: sections.eval_every,
        forget,
        model,
        methods: sections.methods,
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
    if !methods.iter().any(|m| m.name() == "retrain") {
        return Err(invalid(
            "audit",
            "needs a [methods.retrain] section: retrain's models are the population every method is scored against".into(),
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
            Needs::Reference => (!methods.iter().any(|m| m.name() == "retrain")).then(|| {
                "a [methods.retrain] section (it is the difference from retrain on the same seed)"
                    .to_owned()
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

fn check_unique<T: PartialEq>(values: &[T], show: impl Fn(&T) -> String) -> Result<(), String> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(show(v));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use methods::catalog::mi_unlearn::MiUnlearn;
    use methods::catalog::salun::Salun;
    use methods::catalog::scrub::Scrub;

    const MINIMAL: &str = r#"
seeds = [0, 1]
[forget]
class = 3
fraction = 0.75
[methods.original]
epochs = 100
[methods.retrain]
epochs = 100
[methods.finetune]
epochs = [10, 100]
[methods.mi_unlearn]
gamma = [1, 2.5, 4]
epochs = 5
"#;

    fn parse(text: &str) -> Result<Experiment, String> {
        Experiment::parse(text, Path::new("experiments/x.toml")).map_err(|e| e.to_string())
    }

    #[track_caller]
    fn check_err(text: &str, expected: &[&str]) {
        let err = parse(text).expect_err("expected an error");
        for e in expected {
            assert!(err.contains(e), "{err}\n--- lacks: {e}");
        }
    }

    #[test]
    fn expands_the_grid_with_defaults() {
        let exp = parse(MINIMAL).unwrap();
        assert_eq!(exp.name, "x");
        assert_eq!(exp.data_dir, PathBuf::from("data/MNIST/raw"));
        let names: Vec<_> = exp.methods.iter().map(|m| (m.name(), m.gamma(), m.epochs())).collect();
        assert_eq!(
            names,
            vec![
                ("original", None, 100),
                ("retrain", None, 100),
                ("finetune", None, 10),
                ("finetune", None, 100),
                ("mi_unlearn", Some(1.0), 5),
                ("mi_unlearn", Some(2.5), 5),
                ("mi_unlearn", Some(4.0), 5),
            ]
        );
        assert_eq!(exp.methods[6], AnyMethod::new(MiUnlearn::default()));
        assert!(
            exp.resolved.contains("forget_batch_size = 16")
                && exp.resolved.contains("name = \"x\""),
            "{}",
            exp.resolved
        );
        // The resolved configuration is itself a valid experiment with the same plan.
        assert_eq!(parse(&exp.resolved).unwrap().methods, exp.methods);
    }

    #[test]
    fn audit_sections() {
        let with = |section: &str| format!("{MINIMAL}\n[audit]\n{section}\n");
        assert_eq!(parse(MINIMAL).unwrap().replicates(), 1);
        let exp = parse(&with("replicates = 8\nshadows = 16")).unwrap();
        assert_eq!(exp.audit, Some(Audit { replicates: 8, shadows: 16, min_members: 4 }));
        assert!(exp.resolved.contains("[audit]\nreplicates = 8\nshadows = 16\nmin_members = 4"));
        check_err(&with("replicates = 0"), &["x.toml: `audit.replicates` is 0", "(line 17)"]);
        check_err(&with("shadows = 1"), &["`audit.shadows` is 1; U-LiRA", "(line 17)"]);
        check_err(
            &with("shadows = 8"),
            &[
                "`audit.shadows` is 8: with a forget fraction of 0.75 a forget example is unlearned by 2.6 other shadows",
                "use at least 12 shadows",
            ],
        );
        check_err(&with("replicated = 2"), &["unknown field `replicated`"]);
        let no_retrain = MINIMAL.replace("[methods.retrain]\nepochs = 100\n", "");
        check_err(
            &format!("{no_retrain}[audit]\nreplicates = 4\n"),
            &["`audit` needs a [methods.retrain] section"],
        );
    }

    #[test]
    fn check_sections() {
        let with = |section: &str| format!("{MINIMAL}\n[check]\n{section}\n");
        let exp = parse(&with("metrics = [\"forget_gap\", \"test_acc\"]\ntolerance = 0.5\nstandard_errors = 3\ntolerances.forget_gap = 2.0")).unwrap();
        assert_eq!(
            exp.check,
            Some(CheckSpec {
                metrics: vec![(Metric::ForgetGap, Some(2.0)), (Metric::TestAcc, Some(0.5))],
                standard_errors: Some(3.0)
            })
        );
        assert!(parse(MINIMAL).unwrap().check.is_none());
        check_err(
            &with("metrics = [\"forget\"]\ntolerance = 1"),
            &["line 17", "unknown variant `forget`, expected one of `remain_acc`"],
        );
        check_err(&with("metrics = [\"forget_gap\"]"), &["`check` gives forget_gap no tolerance"]);
        check_err(
            &with("metrics = [\"forget_gap\"]\ntolerance = -1"),
            &["`check.tolerance` is -1"],
        );
        check_err(
            &with("metrics = [\"forget_gap\"]\ntolerance = 1\ntolerances.test_gap = 1"),
            &["`check.tolerances.test_gap` names a metric"],
        );
        check_err(
            &with("metrics = [\"forget_gap\"]\ntolerance = 1\nk = 2"),
            &["unknown field `k`"],
        );
    }

    #[test]
    fn zip_pairs_gammas_with_epochs() {
        let text = MINIMAL.replace(
            "gamma = [1, 2.5, 4]\nepochs = 5",
            "gamma = [1.5, 3.5, 3.5, 5]\nepochs = [20, 5, 20, 2]\ngrid = \"zip\"",
        );
        let exp = parse(&text).unwrap();
        let mi: Vec<_> =
            exp.methods.iter().filter_map(|m| Some((m.gamma()?, m.epochs()))).collect();
        assert_eq!(mi, vec![(1.5, 20), (3.5, 5), (3.5, 20), (5.0, 2)]);
        let dup = text.replace("[20, 5, 20, 2]", "[20, 5, 5, 2]");
        check_err(&dup, &["`methods.mi_unlearn.grid` pairs (gamma 3.5, epochs 5) twice"]);
    }

    #[test]
    fn rejects_unknown_keys_and_wrong_types_with_line_and_file() {
        check_err(
            &MINIMAL.replace("gamma =", "gama ="),
            &[
                "experiments/x.toml",
                "line 13",
                "`methods.mi_unlearn.gama` is not a parameter of mi_unlearn",
            ],
        );
        check_err(
            &MINIMAL.replace("class = 3", "class = \"three\""),
            &["experiments/x.toml", "line 4", "class"],
        );
        check_err(
            &MINIMAL.replace("epochs = 5", "epochs = \"5\""),
            &["`methods.mi_unlearn.epochs` invalid type: string \"5\", expected usize (line 14)"],
        );
        check_err(
            &format!("{MINIMAL}\n[methods.sisa]\nshards = 4\n"),
            &["`methods.sisa` is not a method; the methods are original, retrain"],
        );
        check_err("seeds = [0]", &["missing field `forget`"]);
    }

    #[test]
    fn rejects_bad_values_naming_the_key() {
        check_err(
            &MINIMAL.replace("fraction = 0.75", "fraction = 1.5"),
            &["experiments/x.toml: `forget.fraction` is 1.5"],
        );
        check_err(&MINIMAL.replace("class = 3", "class = 12"), &["`forget.class` is 12"]);
        check_err(
            &MINIMAL.replace("[1, 2.5, 4]", "[1, -2]"),
            &["`methods.mi_unlearn.gamma` contains -2"],
        );
        check_err(
            &MINIMAL.replace("[1, 2.5, 4]", "[1, 1]"),
            &["`methods.mi_unlearn.gamma` lists 1 twice"],
        );
        check_err(
            &MINIMAL.replace("epochs = 5", "epochs = [5, 6]\ngrid = \"zip\""),
            &["`methods.mi_unlearn.grid` is \"zip\"", "gamma has 3 values and epochs 2"],
        );
        // Zipped with no other list, a list is its own grid; single values go with every point.
        let zip_one = parse(&MINIMAL.replace("epochs = 5", "epochs = 5\ngrid = \"zip\"")).unwrap();
        assert_eq!(zip_one.methods, parse(MINIMAL).unwrap().methods);
        check_err(
            &MINIMAL.replace("epochs = 5", "epochs = 5\ngrid = \"pairs\""),
            &[
                "`methods.mi_unlearn.grid` unknown variant `pairs`, expected `product` or `zip`",
                "line 15",
            ],
        );
        check_err(
            &MINIMAL.replace("[1, 2.5, 4]", "[]"),
            &["`methods.mi_unlearn.gamma` is an empty list"],
        );
        check_err(&MINIMAL.replace("seeds = [0, 1]", "seeds = []"), &["`seeds` is empty"]);
        check_err(&MINIMAL.replace("[10, 100]", "[0]"), &["`methods.finetune.epochs` is 0"]);
        check_err(
            &MINIMAL.replace("[methods.original]\nepochs = 100\n", ""),
            &["`methods.finetune` starts from the original model"],
        );
        check_err(&format!("name = \"../x\"\n{MINIMAL}"), &["`name` is \"../x\""]);
        check_err(
            &format!("engine = \"jit\"\n{MINIMAL}"),
            &["line 1", "unknown variant `jit`, expected `autograd` or `native`"],
        );
        let autograd = parse(&format!("engine = \"autograd\"\n{MINIMAL}")).unwrap();
        assert_eq!(autograd.engine, Engine::Autograd);
    }

    #[test]
    fn eval_every_thins_the_history_but_keeps_the_last_epoch() {
        let text = "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.75\n\
            [methods.original]\nepochs = 25\n[methods.retrain]\nepochs = 25\neval_every = 10\n\
            [methods.mi_unlearn]\ngamma = 4\nepochs = 3\n";
        let exp = parse(text).unwrap();
        let evaluated = |name: &str| -> Vec<usize> {
            let m = exp.methods.iter().find(|m| m.name() == name).unwrap();
            (1..=m.epochs()).filter(|&e| exp.evaluates_after(m, e)).collect()
        };
        assert_eq!(evaluated("retrain"), [10, 20, 25]);
        assert_eq!(evaluated("mi_unlearn"), [1, 2, 3], "every epoch by default");
        assert_eq!(evaluated("original"), [] as [usize; 0], "never: its key has no split");
        assert!(exp.resolved.contains("eval_every = 1"), "defaults are written out");
        check_err(
            &text.replace("eval_every = 10", "eval_every = 0"),
            &["methods.retrain.eval_every", "is 0"],
        );
    }
    #[test]
    fn baselines_take_their_papers_defaults_and_reject_keys_they_do_not_have() {
        let text = format!(
            "{MINIMAL}[methods.scrub]\nepochs = 4\n[methods.salun]\nsparsity = 0.3\n[methods.grad_ascent]\n"
        );
        let exp = parse(&text).unwrap();
        let names: Vec<_> = exp.methods.iter().map(|m| m.name()).collect();
        assert_eq!(
            names[names.len() - 3..],
            ["grad_ascent", "scrub", "salun"],
            "in the catalog's order"
        );
        let scrub = exp.methods.iter().find(|m| m.name() == "scrub").unwrap();
        let four = Scrub { epochs: 4, max_epochs: Some(2), ..Default::default() };
        assert_eq!(scrub, &AnyMethod::new(four));
        let salun = exp.methods.iter().find(|m| m.name() == "salun").unwrap();
        assert_eq!(salun, &AnyMethod::new(Salun { sparsity: 0.3, ..Default::default() }));
        assert!(
            exp.resolved.contains("[methods.scrub]\nepochs = 4\nlr = 0.00001"),
            "{}",
            exp.resolved
        );

        check_err(
            &format!("{MINIMAL}[methods.grad_ascent]\nalpha = 0.5\n"),
            &[
                "`methods.grad_ascent.alpha` is not a parameter of grad_ascent",
                "its parameters are epochs, lr, batch_size",
            ],
        );
        check_err(
            &format!("{MINIMAL}[methods.salun]\nsparsity = 1.5\n"),
            &["`methods.salun.sparsity` is 1.5"],
        );
        check_err(
            &format!("{MINIMAL}[methods.scrub]\nepochs = 2\nmax_epochs = 3\n"),
            &["`methods.scrub.max_epochs` is 3, more than the 2 epochs"],
        );
        check_err(
            &format!("{MINIMAL}[methods.l1_sparse]\nlambda = -1\n"),
            &["`methods.l1_sparse.lambda` is -1"],
        );
        check_err(
            &format!("{MINIMAL}[methods.scrub]\nbeta = 1\n"),
            &["`methods.scrub.beta` is not a parameter of scrub"],
        );

        // Lists expand into every combination, for a search.
        let grid = parse(&format!(
            "{MINIMAL}[methods.l1_sparse]\nlr = [1e-4, 1e-3]\nlambda = [0, 2e-4]\n"
        ))
        .unwrap();
        let labels: Vec<String> =
            grid.methods.iter().filter(|m| m.name() == "l1_sparse").map(|m| m.label()).collect();
        assert_eq!(
            labels,
            [
                "epochs=5 lambda=0 lr=0.0001",
                "epochs=5 lambda=0.0002 lr=0.0001",
                "epochs=5 lambda=0",
                "epochs=5 lambda=0.0002"
            ]
        );
        check_err(
            &format!("{MINIMAL}[methods.salun]\nlr = [1e-4, 1e-4]\n"),
            &["`methods.salun.lr` lists 0.0001 twice"],
        );
        check_err(
            "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.5\n[methods.scrub]\n",
            &["`methods.scrub` starts from the original model"],
        );
    }
    #[test]
    fn a_file_with_several_datasets_or_scenarios_is_a_suite_of_cells() {
        let text = MINIMAL.replace(
            "[forget]\nclass = 3\nfraction = 0.75\n",
            "[data]\ndataset = [\"mnist\", \"fashion-mnist\"]\n[[forget]]\nclass = 3\nfraction = 0.75\n[[forget]]\nclass = 3\nfraction = 1\n[[forget]]\nfraction = 0.1\n",
        );
        let suite = Suite::parse(&text, Path::new("experiments/bench.toml")).unwrap();
        assert_eq!(suite.name, "bench");
        let names: Vec<_> = suite.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mnist-class3-0.75",
                "mnist-class3-all",
                "mnist-random-0.1",
                "fashion-mnist-class3-0.75",
                "fashion-mnist-class3-all",
                "fashion-mnist-random-0.1"
            ]
        );
        let fashion = &suite.cells[3];
        assert_eq!(fashion.data_dir, PathBuf::from("data/FashionMNIST/raw"));
        assert_eq!(fashion.load.kind, data::dataset::Kind::FashionMnist);
        assert!(fashion.resolved.contains("dataset = \"fashion-mnist\""), "{}", fashion.resolved);
        assert_eq!(
            suite.cell_out(Path::new("results/bench"), fashion),
            PathBuf::from("results/bench/fashion-mnist-class3-0.75")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bench.toml"), &text).unwrap();
        let err = Experiment::load(&dir.path().join("bench.toml")).unwrap_err().to_string();
        assert!(err.contains("make 6 cells; this command takes a file of one dataset"), "{err}");

        let with_dir = text.replace("[data]\n", "[data]\ndir = \"x\"\n");
        let err = Suite::parse(&with_dir, Path::new("b.toml")).unwrap_err().to_string();
        assert!(err.contains("`data.dir` cannot be one folder for several cells"), "{err}");
        let twice = text.replace("\"fashion-mnist\"]", "\"mnist\"]");
        let err = Suite::parse(&twice, Path::new("b.toml")).unwrap_err().to_string();
        assert!(err.contains("`data.dataset` lists \"mnist\" twice"), "{err}");
        assert_eq!(parse(MINIMAL).unwrap().device, crate::device::Request::Auto);
        let on = parse(&format!("device = \"cuda:1\"\n{MINIMAL}")).unwrap();
        assert_eq!(on.device, crate::device::Request::Cuda(Some(1)));
        check_err(&format!("device = \"gpu\"\n{MINIMAL}"), &["line 1", "is \"gpu\"; use \"auto\""]);
        let cnn = parse(&format!("model = \"cnn\"\n{MINIMAL}")).unwrap();
        assert_eq!(cnn.model, model::ClassifierSpec::lenet5());
        let table = parse(&format!("{MINIMAL}[model]\narch = \"cnn\"\nhidden = [50]\n")).unwrap();
        assert_eq!(table.model.hidden, [50]);
        assert!(!table.model.is_mlp());
        check_err(
            &format!("model = \"resnet\"\n{MINIMAL}"),
            &["line 1", "unknown variant `resnet`, expected `mlp` or `cnn`"],
        );
        check_err(
            &MINIMAL.replace("[forget]", "[data]\ndataset = \"cifar\"\n[forget]"),
            &["line 4", "unknown variant `cifar`, expected `mnist` or `fashion-mnist`"],
        );
    }
}
