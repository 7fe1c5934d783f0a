//! The content-addressed model cache.
//!
//! ```text
//! <cache>/v1/models/<job key>/model.safetensors   the trained parameters
//!                            /record.json         what was trained, how long it took, per-epoch history
//! <cache>/v1/evals/<key>.json                     accuracies of one model on one split
//! ```
//!
//! Keys come from [`crate::plan`]. A model entry is written in full in a temporary folder and
//! renamed into place, so an entry that exists is complete; evaluations are single files
//! written atomically. Evaluations are cached apart from models because one original model is
//! evaluated on every split drawn for its seed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use methods::Metrics;
use model::{Mlp, MlpSpec};
use serde::{Deserialize, Serialize};

use crate::fsutil::{temp_sibling, write_atomic};

/// The cache layout version (the folder name); bump to abandon old entries.
const LAYOUT: &str = "v1";

/// One epoch of a run's training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub ce: f64,
    pub mi: Option<f64>,
    /// Accuracies after this epoch, where the method records them.
    pub metrics: Option<Accuracy>,
}

/// [`Metrics`] in a serialisable form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub remain: f64,
    pub forget: f64,
    pub test: f64,
}

impl From<Metrics> for Accuracy {
    fn from(m: Metrics) -> Self {
        Self { remain: m.remain, forget: m.forget, test: m.test }
    }
}

/// What is stored beside a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub label: String,
    /// The text whose SHA-256 is the key.
    pub description: String,
    /// Wall-clock seconds the training took when it ran.
    pub seconds: f64,
    pub history: Vec<EpochRecord>,
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let root = dir.join(LAYOUT);
        for sub in ["models", "evals", "tmp"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create the cache folder {}", d.display()))?;
        }
        Ok(Self { root })
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.root.join("models").join(key)
    }

    pub fn model_path(&self, key: &str) -> PathBuf {
        self.entry(key).join("model.safetensors")
    }

    /// The record of a cached model, if there is one.
    pub fn record(&self, key: &str) -> anyhow::Result<Option<Record>> {
        let path = self.entry(key).join("record.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!(
                    "{}: unreadable cache record; delete {} to retrain it",
                    path.display(),
                    self.entry(key).display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn load_model(&self, key: &str, spec: &MlpSpec) -> anyhow::Result<Mlp> {
        Ok(Mlp::load(spec, &self.model_path(key), tch::Device::Cpu)?)
    }

    /// Stores a model and its record under `record.key`, atomically. If another process stored
    /// the same key meanwhile, its entry is kept (it is the same model).
    pub fn store(&self, model: &Mlp, record: &Record) -> anyhow::Result<()> {
        let entry = self.entry(&record.key);
        let tmp = temp_sibling(&self.root.join("tmp").join(&record.key));
        let result = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&tmp)?;
            model.save(&tmp.join("model.safetensors"))?;
            std::fs::File::open(tmp.join("model.safetensors"))?.sync_all()?;
            write_atomic(&tmp.join("record.json"), &serde_json::to_vec_pretty(record)?)?;
            match std::fs::rename(&tmp, &entry) {
                Ok(()) => Ok(()),
                Err(_) if entry.join("record.json").exists() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result.with_context(|| format!("cannot store {} in the cache", entry.display()))
    }

    fn eval_path(&self, model_key: &str, split_key: &str) -> PathBuf {
        let key = crate::plan::sha256_hex(&format!("{model_key}\n{split_key}\n"));
        self.root.join("evals").join(format!("{key}.json"))
    }

    pub fn eval(&self, model_key: &str, split_key: &str) -> Option<Accuracy> {
        let bytes = std::fs::read(self.eval_path(model_key, split_key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn store_eval(
        &self,
        model_key: &str,
        split_key: &str,
        acc: &Accuracy,
    ) -> anyhow::Result<()> {
        write_atomic(&self.eval_path(model_key, split_key), &serde_json::to_vec(acc)?)
    }
}
