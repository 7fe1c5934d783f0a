//! An experiment file as written: serde types whose unknown keys and wrong types serde rejects
//! with the file, line and key. Names with a fixed set of values (engine, dataset,
//! architecture, ranking, device) are enums here, so a typo is a parse error naming the
//! values there are. The method sections stay TOML tables: each method reads its own
//! (`methods::Registration::expand`).

use std::path::PathBuf;

use data::dataset::Kind;
use methods::Engine;
use results::check::CheckSection;
use results::rows::Metric;
use serde::{Deserialize, Serialize};

use crate::experiment::device::Request;

/// The file as written (and, with every default filled in, as `config.toml` records it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    /// Names the output folder `results/<name>/`; defaults to the file's stem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub seeds: Vec<u64>,
    /// How training steps are computed: "native" (the default) or "autograd" (the libtorch
    /// reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<Engine>,
    #[serde(default)]
    pub data: RawData,
    /// One scenario, or several (`[[forget]]`): each with each dataset is a cell of a suite.
    pub forget: OneOrList<RawForget>,
    /// `model = "cnn"` or a `[model]` table.
    #[serde(default, deserialize_with = "model_name_or_table")]
    pub model: RawModel,
    /// `[methods.<name>]` sections, each read by its method.
    pub methods: toml::Table,
    /// What `harness check` compares with a baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckSection>,
    /// Where to run: "auto" (the default: CUDA, then MPS, then the CPU), "cpu", "cuda",
    /// "cuda:N" or "mps"; `--device` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Request>,
    /// What a suite's leaderboard ranks by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank_by: Option<RankBy>,
    /// Populations of models for the per-example forgetting audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<RawAudit>,
}

/// The `[audit]` section: how many models of each method to train for the per-example
/// forgetting audit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// Runs of every method per seed that differ only in the method's own randomness (from
    /// the same split and original model): the populations the forgetting-quality score
    /// compares. Default 1 (no score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates: Option<usize>,
    /// U-LiRA's population: originals each trained on a random half of the training set,
    /// each unlearning its own forget set with every method. Default 0 (no U-LiRA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadows: Option<usize>,
    /// U-LiRA scores an example only with at least this many other shadows that unlearned
    /// it (IN) and that never saw it (OUT). Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_members: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// `"mnist"` (the default), `"fashion-mnist"`, or a list of them (a suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<OneOrList<Kind>>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// Instead of `fraction`: the `size` examples (of `class`, or of every class) that a
    /// population of `models` originals trained on random halves memorized most (`high`),
    /// least (`low`), or nearest the median (`mid`); see `data::memorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memorization: Option<data::memorization::Level>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// The memorization population's size (default 64, at least 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    /// The fully connected layers' sizes between the input (or the CNN's 400 features) and
    /// the 10 classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<usize>>,
}

/// The classifier's architecture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The notebook's MLP, 784-128-64-10.
    #[default]
    Mlp,
    /// LeNet-5's convolutions before the fully connected layers.
    Cnn,
}

/// What a suite's leaderboard ranks by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// The mean absolute gap to retrain over remain, forget and test accuracy and MIA.
    #[default]
    AvgGap,
    /// The remain and forget gaps only (no test sample: for hyper-parameter searches).
    TrainGap,
}

impl RankBy {
    pub fn metric(self) -> Metric {
        match self {
            RankBy::AvgGap => Metric::AvgGap,
            RankBy::TrainGap => Metric::TrainGap,
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
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrList::One(v) => vec![v.clone()],
            OneOrList::List(v) => v.clone(),
        }
    }
}

/// `model = "cnn"` as short for `[model] arch = "cnn"`.
fn model_name_or_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<RawModel, D::Error> {
    use serde::de::value::{MapAccessDeserializer, StrDeserializer};
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = RawModel;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a model name (\"mlp\" or \"cnn\") or a [model] table")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawModel, E> {
            let arch = Arch::deserialize(StrDeserializer::<E>::new(v))?;
            Ok(RawModel { arch: Some(arch), hidden: None })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawModel, A::Error> {
            RawModel::deserialize(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(Visitor)
}
