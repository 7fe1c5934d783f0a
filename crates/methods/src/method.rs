//! The one interface every method implements ([`Method`]) and what the harness holds of a
//! configured method ([`AnyMethod`]); turning a `[methods.<name>]` TOML section into every
//! parameter set it asks for ([`Registration::expand`]).
//!
//! A method is its parameter struct: serde reads it from its section (`deny_unknown_fields`,
//! every field defaulted), the cache key, the label in tables and the resolved configuration
//! are derived from it, and [`Method::train`] trains a model from a [`Context`]. Adding one is
//! one file under `catalog/` and one line in `catalog/mod.rs` (ARCHITECTURE.md, "Adding a
//! method").

use std::fmt;
use std::sync::Arc;

use data::rng::Rng;
use model::{Classifier, ClassifierSpec};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tch::Device;
use toml::{Table, Value};

use crate::engine::Engine;
use crate::loops::OnEpoch;
pub use crate::params::{Count, MAX_COUNT, Rate};
use crate::tensors::Data;

/// A method: its parameters (the struct itself) and how it trains.
///
/// Its schedule is typed: epoch counts and batch sizes are [`Count`]s, learning rates
/// [`Rate`]s, each checked when read; every other float is checked finite. [`Method::check`]
/// adds the method's own rules.
pub trait Method:
    Serialize + DeserializeOwned + Default + Clone + fmt::Debug + Send + Sync + 'static
{
    /// The name of its `[methods.<NAME>]` section and in every CSV file.
    const NAME: &'static str;
    /// Where it starts: a copy of the original model of the same seed (the default, for an
    /// unlearning method) or a fresh initialisation.
    const START: Start = Start::Original;
    /// Parameters shown in every label (besides `epochs`, always shown, and any parameter off
    /// its default, shown anyway).
    const LABELLED: &'static [&'static str] = &[];
    /// What it is to the other methods of an experiment.
    const ROLE: Role = Role::Unlearner;
    /// The parameter an experiment sweeps to trace the method's trade-off (its figure's
    /// x axis), if it has one: a float field of the struct.
    const SWEPT: Option<Swept> = None;
    /// The number of epochs (`on_epoch` is called after each).
    fn epochs(&self) -> usize;

    /// Fills defaults that depend on other parameters (after reading the section).
    fn complete(&mut self) {}

    /// The method's own rules on its parameters, beyond the conventions above.
    fn check(&self) -> Result<(), Invalid> {
        Ok(())
    }

    /// Every parameter as `(name, value)`, in a fixed order, for the cache key: by default
    /// [`canonical_key`].
    fn key(&self) -> Vec<(String, String)> {
        canonical_key(self)
    }

    /// Trains: from `ctx.original()` or `ctx.fresh(...)`, drawing only from `ctx.stream(...)`,
    /// calling `on_epoch` after each epoch.
    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Classifier;
}

/// Where a method's model starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A copy of the original model of the same seed.
    Original,
    /// A fresh initialisation; `uses_split` says whether training sees the forget / remain
    /// split (false only for the original model itself, which every split of a seed shares).
    Fresh { uses_split: bool },
}

impl Start {
    /// Whether a model trained from here depends on the forget / remain split.
    pub const fn uses_split(self) -> bool {
        !matches!(self, Start::Fresh { uses_split: false })
    }
}

/// What a method is to the others in an experiment: the harness and the results crate know
/// methods by their roles, never by their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The model every unlearning method of a seed starts from, trained on the whole training
    /// set (one per seed, whatever the split).
    Original,
    /// The gold standard every gap is measured against: trained without the forget set.
    Reference,
    /// The plain alternative the unlearners are drawn against: training on the remain set
    /// alone, with no mechanism for forgetting.
    Control,
    /// A method under study.
    Unlearner,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Original => "original",
            Role::Reference => "reference",
            Role::Control => "control",
            Role::Unlearner => "unlearner",
        }
    }
}

/// A method's swept parameter ([`Method::SWEPT`]): its name, what it does, and how figures
/// name the method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub parameter: &'static str,
    /// What the parameter is, for an axis: "weight of the MI penalty".
    pub about: &'static str,
    /// The method as figures title it: "MI-unlearn".
    pub title: &'static str,
}

/// A run that produced no model (an external command that failed, timed out or wrote a
/// malformed model): what happened, for the run's report. The harness caches nothing for it
/// and goes on with the other jobs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

/// A parameter that breaks a rule: its name and what is wrong with its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub key: String,
    pub problem: String,
}

impl Invalid {
    pub fn new(key: &str, problem: impl Into<String>) -> Self {
        Self { key: key.to_owned(), problem: problem.into() }
    }
}

/// What a run needs besides its method's parameters.
#[derive(Debug)]
pub struct Context<'a> {
    pub data: &'a Data,
    pub spec: &'a ClassifierSpec,
    pub seed: u64,
    /// Which of the seed's replicate runs this is (`[audit] replicates`): every stream of
    /// replicate `k > 0` is its own (`<purpose>/r<k>`), replicate 0's are the seed's.
    pub replicate: usize,
    /// The U-LiRA shadow it belongs to (`[audit] shadows`), if any: a shadow's streams are
    /// its own too (`<purpose>/s<k>`), as LiRA's shadow models are independently trained.
    pub shadow: Option<usize>,
    /// The memorization population's model it is, if any (`data::memorization`): its streams
    /// are its own (`<purpose>/m<k>`).
    pub memorization: Option<usize>,
    pub device: Device,
    /// The engine that computes the steps (see [`AnyMethod::engine`]).
    pub engine: Engine,
    /// The original model of the same seed, for methods that start from it.
    pub original: Option<&'a Classifier>,
}

impl<'a> Context<'a> {
    /// A plain run of `seed` on `engine`: replicate 0, no shadow, not in a memorization
    /// population, with no original (set the fields that differ with `..Context::new(..)`).
    pub fn new(
        data: &'a Data,
        spec: &'a ClassifierSpec,
        seed: u64,
        device: Device,
        engine: Engine,
    ) -> Self {
        let (replicate, shadow, memorization, original) = (0, None, None, None);
        Self { data, spec, seed, replicate, shadow, memorization, device, engine, original }
    }

    /// The run's random stream for `purpose` (e.g. `shuffle/<name>`): the same whichever
    /// thread runs the job and whatever runs beside it, and different for every replicate
    /// and every shadow.
    pub fn stream(&self, purpose: &str) -> Rng {
        let mut purpose = purpose.to_owned();
        if self.replicate > 0 {
            purpose += &format!("/r{}", self.replicate);
        }
        if let Some(s) = self.shadow {
            purpose += &format!("/s{s}");
        }
        if let Some(m) = self.memorization {
            purpose += &format!("/m{m}");
        }
        data::rng::stream(self.seed, &purpose)
    }

    /// A freshly initialised model, its weights drawn from the stream `purpose`.
    pub fn fresh(&self, purpose: &str) -> Classifier {
        Classifier::init(self.spec, &mut self.stream(purpose), self.device)
    }

    /// A copy of the original model.
    ///
    /// # Panics
    /// If there is none (a planning bug: the plan gives one to every method that starts from
    /// it).
    pub fn original(&self) -> Classifier {
        self.original.expect("a method that starts from the original gets it").duplicate()
    }
}

/// A configured method as the harness holds it: one parameter set of one method, used
/// through [`DynMethod`].
#[derive(Clone)]
pub struct AnyMethod(Arc<dyn DynMethod>);

impl AnyMethod {
    pub fn new<M: Method>(method: M) -> Self {
        Self(Arc::new(method))
    }

    /// A method that implements [`DynMethod`] directly (one defined outside this crate, such
    /// as the harness's external commands).
    pub fn from_arc(method: Arc<dyn DynMethod>) -> Self {
        Self(method)
    }
}

impl std::ops::Deref for AnyMethod {
    type Target = dyn DynMethod;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl PartialEq for AnyMethod {
    /// The same method with the same parameters (what its cache key says).
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.key() == other.key()
    }
}

impl fmt::Debug for AnyMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.label())
    }
}

/// [`Method`] as a trait object: what the harness asks of a configured method. Every
/// [`Method`] implements it.
pub trait DynMethod: Send + Sync {
    fn name(&self) -> &str;
    fn epochs(&self) -> usize;
    /// The cache-key encoding of its parameters ([`Method::key`]).
    fn key(&self) -> Vec<(String, String)>;
    /// Its parameters for tables and logs: `gamma=4 epochs=5`, `epochs=2 lr=0.0003`
    /// ([`Method::LABELLED`], `epochs`, and every parameter off its default).
    fn label(&self) -> String;
    fn start(&self) -> Start;
    /// Trains it; see [`Method::train`]. Only a method outside the process (an external
    /// command) can fail.
    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Result<Classifier, Failed>;

    fn role(&self) -> Role {
        Role::Unlearner
    }

    /// Its swept parameter ([`Method::SWEPT`]) and this parameter set's value of it.
    fn swept(&self) -> Option<(Swept, f64)> {
        None
    }

    /// Whether it starts from the original model of the same seed.
    fn needs_original(&self) -> bool {
        self.start() == Start::Original
    }

    /// Whether the trained model depends on the forget / remain split.
    fn uses_split(&self) -> bool {
        self.start().uses_split()
    }

    /// Whether it shows its model after every epoch (`on_epoch` gets one), so that any epoch can
    /// be evaluated; one that hands back only its final model (an external command) is
    /// evaluated after its last epoch alone.
    fn models_each_epoch(&self) -> bool {
        true
    }

    /// Whether its trained bits depend on the class of CPU it runs on whatever the engine
    /// (a program outside the process: PyTorch's CPU kernels differ on Intel and AMD). Its
    /// keys then carry the CPU's class, as autograd's do.
    fn cpu_dependent(&self) -> bool {
        false
    }

    /// The engine that trains (and evaluates) it on a `spec` model when `asked` is asked
    /// for: every method runs on any engine on the plain MLP, on libtorch's autograd with a
    /// convolutional stem (the native engine is the MLP's).
    fn engine(&self, spec: &ClassifierSpec, asked: Engine) -> Engine {
        if spec.is_mlp() { asked } else { Engine::Autograd }
    }
}

impl<M: Method> DynMethod for M {
    fn name(&self) -> &str {
        M::NAME
    }
    fn epochs(&self) -> usize {
        Method::epochs(self)
    }
    fn key(&self) -> Vec<(String, String)> {
        Method::key(self)
    }
    fn label(&self) -> String {
        let mut default = M::default();
        default.complete();
        let base = Method::key(&default);
        let key = Method::key(self);
        let value = |k: &str| key.iter().find(|(n, _)| n == k).map(|(_, v)| short(v));
        let mut parts: Vec<String> =
            M::LABELLED.iter().filter_map(|k| Some(format!("{k}={}", value(k)?))).collect();
        parts.push(format!("epochs={}", Method::epochs(self)));
        for (k, v) in &key {
            let shown = k == "epochs" || M::LABELLED.contains(&k.as_str());
            if !shown && base.iter().find(|(n, _)| n == k).is_none_or(|(_, b)| b != v) {
                parts.push(format!("{k}={}", short(v)));
            }
        }
        parts.join(" ")
    }
    fn start(&self) -> Start {
        M::START
    }
    fn train(&self, ctx: &Context<'_>, on_epoch: &mut OnEpoch<'_>) -> Result<Classifier, Failed> {
        Ok(Method::train(self, ctx, on_epoch))
    }
    fn role(&self) -> Role {
        M::ROLE
    }
    fn swept(&self) -> Option<(Swept, f64)> {
        let swept = M::SWEPT?;
        let fields = Table::try_from(self).expect("a method's parameters serialise to a table");
        let value = match fields.get(swept.parameter) {
            Some(Value::Float(x)) => *x,
            _ => panic!("{}'s swept parameter {} is a float field", M::NAME, swept.parameter),
        };
        Some((swept, value))
    }
}

/// A key value as labels show it: without a trailing `.0`.
fn short(v: &str) -> String {
    v.strip_suffix(".0").unwrap_or(v).to_owned()
}

/// The struct's fields in order as `(name, value)`, floats in shortest round-trip form.
fn fields<M: Serialize>(m: &M) -> Vec<(String, String)> {
    let table = Table::try_from(m).expect("a method's parameters serialise to a table");
    table
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Float(f) => format!("{f:?}"),
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect()
}

/// The default cache-key encoding: the method's own parameters in field order, then its
/// schedule (`epochs`, `max_epochs`, the batch sizes, `lr`), then `optimizer = adam`; floats
/// in Rust's shortest round-trip form (`0.001`, `4.0`).
pub fn canonical_key<M: Serialize>(m: &M) -> Vec<(String, String)> {
    let rank = |k: &str| match k {
        "epochs" => 1,
        "max_epochs" => 2,
        "lr" => 4,
        k if k.ends_with("batch_size") => 3,
        _ => 0,
    };
    let mut key = fields(m);
    key.sort_by_key(|(k, _)| rank(k));
    key.push(("optimizer".into(), "adam".into()));
    key
}

/// `Ok` if `value` is at least 0 (a weight, a penalty), else an [`Invalid`] for `key`.
pub fn non_negative(key: &str, value: f64) -> Result<(), Invalid> {
    if value >= 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, format!("is {value}; it must be >= 0")))
    }
}
