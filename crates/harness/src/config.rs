//! Experiment files: TOML parsed into a raw, serde-shaped [`RawExperiment`], then validated
//! into a checked [`Experiment`] (defaults filled, grid expanded) that everything downstream
//! takes. Unknown keys and wrong types are rejected by serde with the file, line and key;
//! semantic errors name the file, the key and the value.

use std::path::{Path, PathBuf};

use data::mnist::LoadOptions;
use data::split::ForgetSpec;
use methods::{Engine, Method, MiUnlearn, Supervised};
use model::MlpSpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}` {problem}")]
    Invalid { path: PathBuf, key: String, problem: String },
}

/// A value or a list of values: `gamma = 4` or `gamma = [1, 2, 4]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, expecting = "expected a number or a list of numbers, e.g. 5 or [1, 2.5]")]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A value or a list of them for the axes of a suite: `dataset = "mnist"` or
/// `dataset = ["mnist", "fashion-mnist"]`; `[forget]` or several `[[forget]]` tables.
/// Deserialised by hand rather than `untagged`, so that a mistake inside the one value keeps
/// serde's message and line (an untagged enum would only say that nothing matched).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OneOrList<T> {
    One(T),
    List(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrList<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer};
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrList<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("one value (or table) or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(StrDeserializer::<E>::new(v)).map(OneOrList::One)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(OneOrList::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrList::List)
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl<T: Clone> OneOrList<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrList::One(v) => vec![v.clone()],
            OneOrList::List(v) => v.clone(),
        }
    }
}

/// The file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    /// Names the output folder `results/<name>/`; defaults to the file's stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub seeds: Vec<u64>,
    /// How training steps are computed: "native" (the default), "autograd" (the libtorch
    /// reference) or "fused".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    #[serde(default)]
    pub data: RawData,
    /// One scenario, or several (`[[forget]]`): each with each dataset is a cell of a suite.
    pub forget: OneOrList<RawForget>,
    /// `model = "cnn"` or a `[model]` table.
    #[serde(default, deserialize_with = "model_name_or_table")]
    pub model: RawModel,
    pub methods: RawMethods,
    /// What `harness check` compares with a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<RawCheck>,
    /// Where to run: "auto" (the default: CUDA, then MPS, then the CPU), "cpu", "cuda",
    /// "cuda:N" or "mps"; `--device` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What a suite's leaderboard ranks by: "avg_gap" (the default) or "train_gap" (remain
    /// and forget gaps only, for hyper-parameter searches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_by: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// `"mnist"` (the default), `"fashion-mnist"`, or a list of them (a suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<OneOrList<String>>,
    /// Folder of the IDX files; relative paths are relative to the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Keep only the first N training images (quick tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForget {
    /// The class to forget part of (or all of, with fraction 1); left out, the forget set is
    /// drawn from every class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<u8>,
    /// Of the class's training samples, or of the whole training set without `class`.
    pub fraction: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// "mlp" (the default: the notebook's) or "cnn" (LeNet-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The fully connected layers' sizes between the input (or the CNN's 400 features) and
    /// the 10 classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
}

/// `model = "cnn"` as short for `[model] arch = "cnn"`.
fn model_name_or_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RawModel, D::Error> {
    use serde::de::value::MapAccessDeserializer;
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = RawModel;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a model name (\"mlp\" or \"cnn\") or a [model] table")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawModel, E> {
            Ok(RawModel { arch: Some(v.to_owned()), hidden: None })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawModel, A::Error> {
            RawModel::deserialize(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(Visitor)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMethods {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<RawOriginal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain: Option<RawSupervised>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<RawSupervised>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mi_unlearn: Option<RawMiUnlearn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_ascent: Option<RawBaseline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neggrad_plus: Option<RawBaseline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_label: Option<RawBaseline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrub: Option<RawBaseline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1_sparse: Option<RawBaseline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salun: Option<RawBaseline>,
}

/// A baseline's section: every key optional (its paper's defaults, adapted; see
/// `methods::baselines`); `epochs`, `lr`, `alpha`, `lambda` and `sparsity` take lists, which
/// expand into every combination; a key the method does not have is an error.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBaseline {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<OneOrMany<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<OneOrMany<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remain_batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_batch_size: Option<usize>,
    /// neggrad_plus: the forget CE's weight; scrub: the remain KL's weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<OneOrMany<f64>>,
    /// scrub
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// scrub: epochs that start with a max-step pass over the forget set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_epochs: Option<usize>,
    /// l1_sparse
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<OneOrMany<f64>>,
    /// salun: the fraction of weights that may change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<OneOrMany<f64>>,
    /// Evaluate every N epochs (and after the last) for history.csv; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<usize>,
}

/// The original model: one parameter set, shared by every method that starts from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOriginal {
    pub epochs: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSupervised {
    pub epochs: OneOrMany<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Evaluate every N epochs (and after the last) for history.csv; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMiUnlearn {
    pub gamma: OneOrMany<f64>,
    pub epochs: OneOrMany<usize>,
    /// How the `gamma` and `epochs` lists combine: every pair (`product`, the default) or
    /// element by element (`zip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remain_batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Evaluate every N epochs (and after the last) for history.csv; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// Summary metrics to compare, e.g. `["forget_gap", "test_gap"]`.
    pub metrics: Vec<String>,
    /// Absolute tolerance for every metric, in its unit (percentage points for accuracies and
    /// gaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Per-metric absolute tolerances, overriding `tolerance`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tolerances: std::collections::BTreeMap<String, f64>,
    /// Tolerance in standard errors of the difference of the two means over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard_errors: Option<f64>,
}

/// A checked `[check]` section: a metric passes when `|now - baseline|` is at most the larger
/// of its absolute tolerance and `standard_errors * sqrt(s_now^2 / n_now + s_base^2 / n_base)`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Each checked metric with its absolute tolerance, if any.
    pub metrics: Vec<(&'static str, Option<f64>)>,
    pub standard_errors: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GridMode {
    #[default]
    Product,
    Zip,
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
    pub model: MlpSpec,
    /// Every method and parameter set, `original` first when present.
    pub methods: Vec<Method>,
    pub engine: Engine,
    /// Per method name, how many epochs apart its runs are evaluated (always after the last
    /// epoch). Not in the cache key: it changes what is recorded, not the model.
    pub eval_every: Vec<(&'static str, usize)>,
    pub check: Option<CheckSpec>,
    /// The leaderboard's ranking metric (see [`RawExperiment::rank_by`]).
    pub rank_by: &'static str,
    /// The device asked for (resolved against the machine when the experiment runs).
    pub device: crate::device::Request,
    /// The configuration with every default written out, as TOML.
    pub resolved: String,
}

impl Experiment {
    /// Whether a run of `method` is evaluated after `epoch` for its history (the original,
    /// whose key leaves out the split, never is).
    pub fn evaluates_after(&self, method: &Method, epoch: usize) -> bool {
        let every = self.eval_every.iter().find(|(m, _)| *m == method.name()).map_or(1, |e| e.1);
        method.uses_split() && (epoch.is_multiple_of(every) || epoch == method.epochs())
    }

    /// Loads a file of one cell (one dataset, one scenario); see [`Suite::load`] for more.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let mut suite = Suite::load(path)?;
        if suite.cells.len() != 1 {
            return Err(ConfigError::Invalid {
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
            path: path.to_owned(),
            key: key.to_owned(),
            problem,
        };
        let datasets = raw.data.dataset.as_ref().map_or(vec!["mnist".to_owned()], |d| d.to_vec());
        let scenarios = raw.forget.to_vec();
        if datasets.is_empty() || scenarios.is_empty() {
            let key = if datasets.is_empty() { "data.dataset" } else { "forget" };
            return Err(invalid(key, "is an empty list; give at least one".into()));
        }
        check_unique(&datasets, |d| format!("{d:?}"))
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
                cell.data.dataset = Some(OneOrList::One(dataset.clone()));
                cell.forget = OneOrList::One(scenario.clone());
                if !single {
                    let spec = ForgetSpec { class: scenario.class, fraction: scenario.fraction };
                    cell.name = Some(format!("{dataset}-{}", spec.name()));
                }
                let exp = validate(cell, path)?;
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

/// The largest epoch count, batch size or evaluation interval an experiment may ask for: far
/// beyond any real run (a million MNIST epochs is months of computing), so a bigger value is
/// a typo, caught before anything is loaded or allocated.
pub const MAX_COUNT: usize = 1_000_000;

/// The most hidden layers, and units per hidden layer, a model may have (far beyond what
/// MNIST calls for; larger sizes are typos that would exhaust memory).
pub const MAX_LAYERS: usize = 32;
pub const MAX_WIDTH: usize = 65_536;

/// `v` if it is a usable count (1 to [`MAX_COUNT`]), else what is wrong with it.
fn count(v: usize) -> Result<usize, String> {
    match v {
        0 => Err("is 0; it must be at least 1".into()),
        v if v > MAX_COUNT => Err(format!("is {v}; it must be at most {MAX_COUNT}")),
        v => Ok(v),
    }
}

fn validate(mut raw: RawExperiment, path: &Path) -> Result<Experiment, ConfigError> {
    let invalid = |key: &str, problem: String| ConfigError::Invalid {
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

    let engine_name = raw.engine.get_or_insert_with(|| Engine::default().name().to_owned());
    let engine = Engine::from_name(engine_name).ok_or_else(|| {
        let names: Vec<_> = Engine::ALL.iter().map(|e| format!("{:?}", e.name())).collect();
        invalid("engine", format!("is {engine_name:?}; use one of {}", names.join(", ")))
    })?;

    let data = &mut raw.data;
    let dataset = match data.dataset.get_or_insert_with(|| OneOrList::One("mnist".into())) {
        OneOrList::One(d) => d.clone(),
        OneOrList::List(_) => unreachable!("a suite's cells have one dataset each"),
    };
    let kind = data::mnist::Kind::from_name(&dataset).ok_or_else(|| {
        let names: Vec<_> =
            data::mnist::Kind::ALL.iter().map(|k| format!("{:?}", k.name())).collect();
        invalid("data.dataset", format!("is {dataset:?}; use one of {}", names.join(", ")))
    })?;
    let data_dir = data.dir.get_or_insert_with(|| PathBuf::from(kind.default_dir())).clone();
    for (key, limit) in
        [("data.train_limit", data.train_limit), ("data.test_limit", data.test_limit)]
    {
        if limit == Some(0) {
            return Err(invalid(key, "is 0; leave it out to use every sample".into()));
        }
    }
    let load = LoadOptions { kind, train_limit: data.train_limit, test_limit: data.test_limit };

    let OneOrList::One(raw_forget) = &raw.forget else {
        unreachable!("a suite's cells have one scenario each")
    };
    let forget = ForgetSpec { class: raw_forget.class, fraction: raw_forget.fraction };
    if let Some(class) = forget.class.filter(|&c| c >= data::mnist::CLASSES) {
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

    let base = match raw.model.arch.get_or_insert_with(|| "mlp".into()).as_str() {
        "mlp" => MlpSpec::default(),
        "cnn" => MlpSpec::lenet5(),
        other => {
            return Err(invalid(
                "model",
                format!("is {other:?}; use \"mlp\" (784-128-64-10) or \"cnn\" (LeNet-5)"),
            ));
        }
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
    let model = MlpSpec { hidden, ..base };

    let mut methods = Vec::new();
    let m = &mut raw.methods;
    let defaults = Supervised::default();
    let positive = |key: &str, v: usize| count(v).map_err(|problem| invalid(key, problem));
    let rate = |key: &str, lr: f64| {
        if lr.is_finite() && lr > 0.0 {
            Ok(lr)
        } else {
            Err(invalid(key, format!("is {lr}; a learning rate must be positive")))
        }
    };
    if let Some(o) = &mut m.original {
        let s = Supervised {
            epochs: positive("methods.original.epochs", o.epochs)?,
            batch_size: positive(
                "methods.original.batch_size",
                *o.batch_size.get_or_insert(defaults.batch_size),
            )?,
            lr: rate("methods.original.lr", *o.lr.get_or_insert(defaults.lr))?,
        };
        methods.push(Method::Original(s));
    }
    let mut eval_every = Vec::new();
    for (name, section, wrap) in [
        ("retrain", &mut m.retrain, Method::Retrain as fn(Supervised) -> Method),
        ("finetune", &mut m.finetune, Method::Finetune),
    ] {
        let Some(s) = section else { continue };
        let key = |k: &str| format!("methods.{name}.{k}");
        eval_every.push((name, positive(&key("eval_every"), *s.eval_every.get_or_insert(1))?));
        let batch_size =
            positive(&key("batch_size"), *s.batch_size.get_or_insert(defaults.batch_size))?;
        let lr = rate(&key("lr"), *s.lr.get_or_insert(defaults.lr))?;
        for epochs in grid(&s.epochs, &key("epochs"), &invalid)? {
            methods.push(wrap(Supervised {
                epochs: positive(&key("epochs"), epochs)?,
                batch_size,
                lr,
            }));
        }
    }
    if let Some(s) = &mut m.mi_unlearn {
        let d = MiUnlearn::default();
        let remain_batch_size = positive(
            "methods.mi_unlearn.remain_batch_size",
            *s.remain_batch_size.get_or_insert(d.remain_batch_size),
        )?;
        let forget_batch_size = positive(
            "methods.mi_unlearn.forget_batch_size",
            *s.forget_batch_size.get_or_insert(d.forget_batch_size),
        )?;
        let lr = rate("methods.mi_unlearn.lr", *s.lr.get_or_insert(d.lr))?;
        let key = |k: &str| format!("methods.mi_unlearn.{k}");
        eval_every
            .push(("mi_unlearn", positive(&key("eval_every"), *s.eval_every.get_or_insert(1))?));
        let gammas = s.gamma.to_vec();
        let epochs_list = s.epochs.to_vec();
        for (k, n) in [("gamma", gammas.len()), ("epochs", epochs_list.len())] {
            if n == 0 {
                return Err(invalid(&key(k), "is an empty list; give at least one value".into()));
            }
        }
        if let Some(g) = gammas.iter().find(|g| !(g.is_finite() && **g >= 0.0)) {
            return Err(invalid(
                &key("gamma"),
                format!("contains {g}; gamma must be a finite number >= 0"),
            ));
        }
        for &e in &epochs_list {
            positive(&key("epochs"), e)?;
        }
        let pairs: Vec<(f64, usize)> = match *s.grid.get_or_insert_default() {
            GridMode::Product => {
                check_unique(&gammas, |v| v.to_string())
                    .map_err(|d| invalid(&key("gamma"), format!("lists {d} twice")))?;
                check_unique(&epochs_list, |v| v.to_string())
                    .map_err(|d| invalid(&key("epochs"), format!("lists {d} twice")))?;
                epochs_list.iter().flat_map(|&e| gammas.iter().map(move |&g| (g, e))).collect()
            }
            GridMode::Zip => {
                if gammas.len() != epochs_list.len() {
                    return Err(invalid(
                        &key("grid"),
                        format!(
                            "is \"zip\", which pairs gamma and epochs element by element, but gamma has {} values and epochs {}",
                            gammas.len(),
                            epochs_list.len()
                        ),
                    ));
                }
                let pairs: Vec<_> =
                    gammas.iter().copied().zip(epochs_list.iter().copied()).collect();
                check_unique(&pairs, |(g, e)| format!("(gamma {g}, epochs {e})"))
                    .map_err(|d| invalid(&key("grid"), format!("pairs {d} twice")))?;
                pairs
            }
        };
        for (gamma, epochs) in pairs {
            methods.push(Method::MiUnlearn(MiUnlearn {
                gamma,
                epochs,
                remain_batch_size,
                forget_batch_size,
                lr,
            }));
        }
    }
    for (name, section) in [
        ("grad_ascent", &mut m.grad_ascent),
        ("neggrad_plus", &mut m.neggrad_plus),
        ("random_label", &mut m.random_label),
        ("scrub", &mut m.scrub),
        ("l1_sparse", &mut m.l1_sparse),
        ("salun", &mut m.salun),
    ] {
        let Some(raw) = section else { continue };
        let key = |k: &str| format!("methods.{name}.{k}");
        eval_every.push((name, positive(&key("eval_every"), *raw.eval_every.get_or_insert(1))?));
        methods.extend(baselines(name, raw, &key, &invalid)?);
    }
    if methods.is_empty() {
        let sections: Vec<String> =
            Method::NAMES.iter().map(|n| format!("[methods.{n}]")).collect();
        return Err(invalid(
            "methods",
            format!("is empty; add at least one of {}", sections.join(", ")),
        ));
    }
    if let Some(needs) = methods.iter().find(|m| m.needs_original())
        && m.original.is_none()
    {
        return Err(invalid(
            &format!("methods.{}", needs.name()),
            "starts from the original model; add a [methods.original] section with its epochs"
                .into(),
        ));
    }
    methods.sort_by_key(|m| Method::NAMES.iter().position(|n| *n == m.name()));

    let check = raw.check.as_ref().map(|c| validate_check(c, &invalid)).transpose()?;
    let device_name = raw.device.get_or_insert_with(|| "auto".into());
    let device = crate::device::Request::parse(device_name).map_err(|e| invalid("device", e))?;
    let rank_by = match raw.rank_by.get_or_insert_with(|| "avg_gap".into()).as_str() {
        "avg_gap" => "avg_gap",
        "train_gap" => "train_gap",
        other => {
            return Err(invalid(
                "rank_by",
                format!("is {other:?}; use \"avg_gap\" or \"train_gap\""),
            ));
        }
    };

    let resolved = toml::to_string_pretty(&raw).expect("a parsed experiment serialises");
    Ok(Experiment {
        name,
        source: path.to_owned(),
        seeds: raw.seeds,
        data_dir,
        load,
        eval_every,
        forget,
        model,
        methods,
        engine,
        check,
        rank_by,
        device,
        resolved,
    })
}

/// One point of a baseline's grid: the values of its list-capable keys (`None`: default).
#[derive(Debug, Clone, Copy)]
struct Point {
    epochs: Option<usize>,
    lr: Option<f64>,
    alpha: Option<f64>,
    lambda: Option<f64>,
    sparsity: Option<f64>,
}

/// A baseline's section, checked and expanded: every combination of the values its list keys
/// (`epochs`, `lr`, `alpha`, `lambda`, `sparsity`) give, defaults filled in; a key its method
/// does not have is an error.
fn baselines(
    name: &str,
    raw: &mut RawBaseline,
    key: &dyn Fn(&str) -> String,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Vec<Method>, ConfigError> {
    fn list<T: Clone + ToString>(
        v: &Option<OneOrMany<T>>,
        k: &str,
        key: &dyn Fn(&str) -> String,
        invalid: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<Vec<Option<T>>, ConfigError> {
        let Some(v) = v else { return Ok(vec![None]) };
        let values = v.to_vec();
        if values.is_empty() {
            return Err(invalid(&key(k), "is an empty list; give at least one value".into()));
        }
        check_unique(&values.iter().map(T::to_string).collect::<Vec<_>>(), Clone::clone)
            .map_err(|d| invalid(&key(k), format!("lists {d} twice")))?;
        Ok(values.into_iter().map(Some).collect())
    }
    // Every combination, the earlier keys varying slowest.
    let epochs = list(&raw.epochs, "epochs", key, invalid)?;
    let (lrs, alphas) =
        (list(&raw.lr, "lr", key, invalid)?, list(&raw.alpha, "alpha", key, invalid)?);
    let lambdas = list(&raw.lambda, "lambda", key, invalid)?;
    let sparsities = list(&raw.sparsity, "sparsity", key, invalid)?;
    let mut points = Vec::new();
    for &epochs in &epochs {
        for &lr in &lrs {
            for &alpha in &alphas {
                for &lambda in &lambdas {
                    for &sparsity in &sparsities {
                        points.push(Point { epochs, lr, alpha, lambda, sparsity });
                    }
                }
            }
        }
    }
    let methods = points
        .iter()
        .map(|p| baseline(name, raw, p, key, invalid))
        .collect::<Result<Vec<_>, _>>()?;
    // Write the defaults into the resolved configuration.
    let first = &methods[0];
    let value = |k: &str| first.params().into_iter().find(|(n, _)| *n == k).map(|(_, v)| v);
    let float = |k: &str| value(k).and_then(|v| v.parse::<f64>().ok()).map(OneOrMany::One);
    raw.epochs.get_or_insert(OneOrMany::One(first.epochs()));
    if raw.lr.is_none() {
        raw.lr = float("lr");
    }
    for (k, slot) in
        [("alpha", &mut raw.alpha), ("lambda", &mut raw.lambda), ("sparsity", &mut raw.sparsity)]
    {
        if slot.is_none() {
            *slot = float(k);
        }
    }
    Ok(methods)
}

/// One point of a baseline's grid, checked.
fn baseline(
    name: &str,
    raw: &mut RawBaseline,
    p: &Point,
    key: &dyn Fn(&str) -> String,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Method, ConfigError> {
    use methods::{GradAscent, L1Sparse, NegGradPlus, RandomLabel, Salun, Scrub};
    let positive = |k: &str, v: usize| count(v).map_err(|problem| invalid(&key(k), problem));
    let real = |k: &str, v: f64, ok: bool, need: &str| {
        if v.is_finite() && ok { Ok(v) } else { Err(invalid(&key(k), format!("is {v}; {need}"))) }
    };
    let lr = |d: f64| {
        let v = p.lr.unwrap_or(d);
        real("lr", v, v > 0.0, "a learning rate must be positive")
    };
    let size = |slot: &mut Option<usize>, k: &str, d: usize| positive(k, *slot.get_or_insert(d));
    let epochs = |d: usize| positive("epochs", p.epochs.unwrap_or(d));
    let method = match name {
        "grad_ascent" => {
            let d = GradAscent::default();
            Method::GradAscent(GradAscent {
                epochs: epochs(d.epochs)?,
                batch_size: size(&mut raw.batch_size, "batch_size", d.batch_size)?,
                lr: lr(d.lr)?,
            })
        }
        "neggrad_plus" => {
            let d = NegGradPlus::default();
            let alpha = p.alpha.unwrap_or(d.alpha);
            Method::NegGradPlus(NegGradPlus {
                alpha: real("alpha", alpha, alpha >= 0.0, "it must be >= 0")?,
                epochs: epochs(d.epochs)?,
                remain_batch_size: size(
                    &mut raw.remain_batch_size,
                    "remain_batch_size",
                    d.remain_batch_size,
                )?,
                forget_batch_size: size(
                    &mut raw.forget_batch_size,
                    "forget_batch_size",
                    d.forget_batch_size,
                )?,
                lr: lr(d.lr)?,
            })
        }
        "random_label" => {
            let d = RandomLabel::default();
            Method::RandomLabel(RandomLabel {
                epochs: epochs(d.epochs)?,
                batch_size: size(&mut raw.batch_size, "batch_size", d.batch_size)?,
                lr: lr(d.lr)?,
            })
        }
        "scrub" => {
            let d = Scrub::default();
            let alpha = p.alpha.unwrap_or(d.alpha);
            let temperature = *raw.temperature.get_or_insert(d.temperature);
            let epochs = epochs(d.epochs)?;
            let max_epochs = raw.max_epochs.unwrap_or(d.max_epochs.min(epochs));
            if max_epochs > epochs {
                return Err(invalid(
                    &key("max_epochs"),
                    format!("is {max_epochs}, more than the {epochs} epochs"),
                ));
            }
            Method::Scrub(Scrub {
                alpha: real("alpha", alpha, alpha >= 0.0, "it must be >= 0")?,
                temperature: real("temperature", temperature, temperature > 0.0, "it must be > 0")?,
                epochs,
                max_epochs,
                remain_batch_size: size(
                    &mut raw.remain_batch_size,
                    "remain_batch_size",
                    d.remain_batch_size,
                )?,
                forget_batch_size: size(
                    &mut raw.forget_batch_size,
                    "forget_batch_size",
                    d.forget_batch_size,
                )?,
                lr: lr(d.lr)?,
            })
        }
        "l1_sparse" => {
            let d = L1Sparse::default();
            let lambda = p.lambda.unwrap_or(d.lambda);
            Method::L1Sparse(L1Sparse {
                lambda: real("lambda", lambda, lambda >= 0.0, "it must be >= 0")?,
                epochs: epochs(d.epochs)?,
                batch_size: size(&mut raw.batch_size, "batch_size", d.batch_size)?,
                lr: lr(d.lr)?,
            })
        }
        "salun" => {
            let d = Salun::default();
            let sparsity = p.sparsity.unwrap_or(d.sparsity);
            Method::Salun(Salun {
                sparsity: real(
                    "sparsity",
                    sparsity,
                    sparsity > 0.0 && sparsity <= 1.0,
                    "it must be in (0, 1]",
                )?,
                epochs: epochs(d.epochs)?,
                batch_size: size(&mut raw.batch_size, "batch_size", d.batch_size)?,
                lr: lr(d.lr)?,
            })
        }
        _ => unreachable!("{name} is not a baseline"),
    };
    // Keys the method does not read, set anyway, are mistakes.
    let used: Vec<&str> = method.params().iter().map(|(k, _)| *k).collect();
    let set = [
        ("batch_size", raw.batch_size.is_some()),
        ("remain_batch_size", raw.remain_batch_size.is_some()),
        ("forget_batch_size", raw.forget_batch_size.is_some()),
        ("alpha", raw.alpha.is_some()),
        ("temperature", raw.temperature.is_some()),
        ("max_epochs", raw.max_epochs.is_some()),
        ("lambda", raw.lambda.is_some()),
        ("sparsity", raw.sparsity.is_some()),
    ];
    if let Some((k, _)) = set.iter().find(|(k, is_set)| *is_set && !used.contains(k)) {
        return Err(invalid(
            &key(k),
            format!("is not a parameter of {name}; its parameters are {}", used.join(", ")),
        ));
    }
    if let Method::Scrub(scrub) = &method {
        raw.max_epochs.get_or_insert(scrub.max_epochs);
    }
    Ok(method)
}

fn validate_check(
    c: &RawCheck,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<CheckSpec, ConfigError> {
    use crate::report::METRICS;
    let known = || METRICS.join(", ");
    let tolerance_ok = |key: &str, t: f64| {
        if t.is_finite() && t >= 0.0 {
            Ok(t)
        } else {
            Err(invalid(key, format!("is {t}; a tolerance must be a finite number >= 0")))
        }
    };
    if c.metrics.is_empty() {
        return Err(invalid("check.metrics", format!("is empty; name some of: {}", known())));
    }
    check_unique(&c.metrics, Clone::clone)
        .map_err(|d| invalid("check.metrics", format!("lists {d} twice")))?;
    if let Some(t) = c.tolerance {
        tolerance_ok("check.tolerance", t)?;
    }
    if let Some(k) = c.standard_errors {
        tolerance_ok("check.standard_errors", k)?;
    }
    for (metric, &t) in &c.tolerances {
        let key = format!("check.tolerances.{metric}");
        tolerance_ok(&key, t)?;
        if !c.metrics.contains(metric) {
            return Err(invalid(&key, "names a metric that check.metrics does not list".into()));
        }
    }
    let metrics = c
        .metrics
        .iter()
        .map(|m| {
            let name = METRICS.iter().find(|k| **k == m).ok_or_else(|| {
                invalid("check.metrics", format!("has {m:?}; the metrics are: {}", known()))
            })?;
            let abs = c.tolerances.get(m).copied().or(c.tolerance);
            if abs.is_none() && c.standard_errors.is_none() {
                return Err(invalid(
                    "check",
                    format!(
                        "gives {m} no tolerance; set tolerance, tolerances.{m} or standard_errors"
                    ),
                ));
            }
            Ok((*name, abs))
        })
        .collect::<Result<_, _>>()?;
    Ok(CheckSpec { metrics, standard_errors: c.standard_errors })
}

fn grid<T: Clone + PartialEq + std::fmt::Display>(
    values: &OneOrMany<T>,
    key: &str,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Vec<T>, ConfigError> {
    let values = values.to_vec();
    if values.is_empty() {
        return Err(invalid(key, "is an empty list; give at least one value".into()));
    }
    check_unique(&values, |v| v.to_string())
        .map_err(|dup| invalid(key, format!("lists {dup} twice")))?;
    Ok(values)
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
        assert_eq!(exp.methods[6], Method::MiUnlearn(MiUnlearn::default()));
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
    fn check_sections() {
        let with = |section: &str| format!("{MINIMAL}\n[check]\n{section}\n");
        let exp = parse(&with("metrics = [\"forget_gap\", \"test_acc\"]\ntolerance = 0.5\nstandard_errors = 3\ntolerances.forget_gap = 2.0")).unwrap();
        assert_eq!(
            exp.check,
            Some(CheckSpec {
                metrics: vec![("forget_gap", Some(2.0)), ("test_acc", Some(0.5))],
                standard_errors: Some(3.0)
            })
        );
        assert!(parse(MINIMAL).unwrap().check.is_none());
        check_err(
            &with("metrics = [\"forget\"]\ntolerance = 1"),
            &["`check.metrics` has \"forget\"; the metrics are: remain_acc"],
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
            &["experiments/x.toml", "line 13", "unknown field `gama`"],
        );
        check_err(
            &MINIMAL.replace("class = 3", "class = \"three\""),
            &["experiments/x.toml", "line 4", "class"],
        );
        check_err(
            &MINIMAL.replace("epochs = 5", "epochs = \"5\""),
            &["line 14", "expected a number or a list of numbers"],
        );
        check_err(&format!("{MINIMAL}\n[methods.sisa]\nshards = 4\n"), &["unknown field `sisa`"]);
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
            &MINIMAL.replace("epochs = 5", "epochs = 5\ngrid = \"zip\""),
            &["`methods.mi_unlearn.grid` is \"zip\"", "gamma has 3 values and epochs 1"],
        );
        check_err(
            &MINIMAL.replace("epochs = 5", "epochs = 5\ngrid = \"pairs\""),
            &["line 15", "unknown variant `pairs`"],
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
            &["`engine` is \"jit\"; use one of \"autograd\", \"fused\", \"native\""],
        );
        assert_eq!(parse(&format!("engine = \"fused\"\n{MINIMAL}")).unwrap().engine, Engine::Fused);
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
        let names: Vec<_> = exp.methods.iter().map(Method::name).collect();
        assert_eq!(
            names[names.len() - 3..],
            ["grad_ascent", "scrub", "salun"],
            "in the order of Method::NAMES"
        );
        let scrub = exp.methods.iter().find(|m| m.name() == "scrub").unwrap();
        assert_eq!(scrub, &Method::Scrub(methods::Scrub { epochs: 4, ..Default::default() }));
        let salun = exp.methods.iter().find(|m| m.name() == "salun").unwrap();
        assert_eq!(salun, &Method::Salun(methods::Salun { sparsity: 0.3, ..Default::default() }));
        assert!(
            exp.resolved.contains("[methods.scrub]\nepochs = 4\nlr = 0.00001"),
            "{}",
            exp.resolved
        );

        check_err(
            &format!("{MINIMAL}[methods.grad_ascent]\nalpha = 0.5\n"),
            &[
                "`methods.grad_ascent.alpha` is not a parameter of grad_ascent",
                "epochs, batch_size, lr",
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
        check_err(&format!("{MINIMAL}[methods.scrub]\nbeta = 1\n"), &["unknown field `beta`"]);

        // Lists expand into every combination, for a search.
        let grid = parse(&format!(
            "{MINIMAL}[methods.l1_sparse]\nlr = [1e-4, 1e-3]\nlambda = [0, 2e-4]\n"
        ))
        .unwrap();
        let labels: Vec<String> =
            grid.methods.iter().filter(|m| m.name() == "l1_sparse").map(Method::label).collect();
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
        assert_eq!(fashion.load.kind, data::mnist::Kind::FashionMnist);
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
        check_err(&format!("device = \"gpu\"\n{MINIMAL}"), &["`device` is \"gpu\"; use \"auto\""]);
        let cnn = parse(&format!("model = \"cnn\"\n{MINIMAL}")).unwrap();
        assert_eq!(cnn.model, model::MlpSpec::lenet5());
        let table = parse(&format!("{MINIMAL}[model]\narch = \"cnn\"\nhidden = [50]\n")).unwrap();
        assert_eq!(table.model.hidden, [50]);
        assert!(!table.model.is_mlp());
        check_err(
            &format!("model = \"resnet\"\n{MINIMAL}"),
            &["`model` is \"resnet\"; use \"mlp\""],
        );
        check_err(
            &MINIMAL.replace("[forget]", "[data]\ndataset = \"cifar\"\n[forget]"),
            &["`data.dataset` is \"cifar\"; use one of \"mnist\", \"fashion-mnist\""],
        );
    }
}
