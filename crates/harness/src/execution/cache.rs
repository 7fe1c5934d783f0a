//! The content-addressed model cache, safe to share between processes and machines.
//!
//! ```text
//! <cache>/v2/models/<job key>/model.safetensors   the trained parameters
//!                            /record.json         what was trained, the model file's SHA-256,
//!                                                 how long it took, per-epoch history
//! <cache>/v2/evals/<key>.json                     accuracies of one model on one split
//! <cache>/v2/evals/<key>.f32                      its confidences on the split's population
//!                                                 (audits only; little-endian f32)
//! <cache>/v2/locks/<job key>                      "host pid token" of the process training it
//! <cache>/v2/locks/<job key>.<id>.claim           briefly: who may replace or remove a lock
//! <cache>/v2/tmp/<key>@<host>@<pid>@<n>           entries being written, and by whom
//! ```
//!
//! Keys come from [`crate::execution::plan`]. A model entry is written in full in `tmp/`, fsynced and
//! renamed into place, so an entry that exists is complete; evaluations are single files
//! written the same way. Evaluations are cached apart from models because one original model
//! is evaluated on every split drawn for its seed.
//!
//! An entry is checked whenever it is read: a record that does not parse, or a model file whose
//! SHA-256 is not the one its record names, is reported as [`Entry::Corrupt`] and the caller
//! retrains it. Who may train a job is `execution::lock`'s. Opening the cache sweeps `tmp/`
//! and `evals/` of what dead processes of this host were writing.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use methods::Metrics;
use model::{Classifier, ClassifierSpec};
use serde::{Deserialize, Serialize};

use results::fsutil::write_atomic;

use data::dataset::sha256_hex;

use results::owner;

/// The cache layout version (the folder name); bump to abandon old entries.
/// v2: records carry the model file's SHA-256; lock files.
const LAYOUT: &str = "v2";

/// One epoch of a run's training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    /// NaN when the harness does not see the method's losses (an external method); JSON
    /// writes that as `null`.
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub ce: f64,
    pub mi: Option<f64>,
    /// Accuracies after this epoch, where the method records them.
    pub metrics: Option<Accuracy>,
}

/// A float that JSON may hold as `null` (how serde_json writes NaN), read back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`Metrics`] in a serialisable form.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub remain: f64,
    pub forget: f64,
    pub test: f64,
    /// Membership-inference efficacy on the forget set (%), final models only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mia: Option<f64>,
    /// The attack's held-out accuracy (%), final models only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mia_attack_acc: Option<f64>,
    /// `methods::mia::PROTOCOL` of the attack that gave `mia`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mia_protocol: Option<u32>,
}

impl Record {
    /// Whether the history holds an evaluation after `epoch`.
    pub fn evaluated_at(&self, epoch: usize) -> bool {
        self.history.iter().any(|h| h.epoch == epoch && h.metrics.is_some())
    }
}

impl From<Metrics> for Accuracy {
    fn from(m: Metrics) -> Self {
        Self {
            remain: m.remain,
            forget: m.forget,
            test: m.test,
            mia: None,
            mia_attack_acc: None,
            mia_protocol: None,
        }
    }
}

/// What is stored beside a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub key: String,
    pub label: String,
    /// The text whose SHA-256 is the key.
    pub description: String,
    /// SHA-256 of `model.safetensors`, checked on every read.
    pub model_sha256: String,
    /// Wall-clock seconds the training took when it ran.
    pub seconds: f64,
    pub history: Vec<EpochRecord>,
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// What the cache holds for a key.
#[derive(Debug)]
pub enum Entry {
    Missing,
    /// An entry that exists but cannot be trusted, and why.
    Corrupt(String),
    Found(Record),
}

impl Cache {
    /// The cache in `dir`. Creates nothing: folders are made by the first write, so a run
    /// that fails before training leaves no trace.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let cache = Self { root: dir.join(LAYOUT) };
        cache.sweep_tmp();
        Ok(cache)
    }

    /// `root/<sub>`, created if needed.
    pub(crate) fn dir(&self, sub: &str) -> anyhow::Result<PathBuf> {
        let d = self.root.join(sub);
        std::fs::create_dir_all(&d)
            .with_context(|| format!("cannot create the cache folder {}", d.display()))?;
        Ok(d)
    }

    /// A new name in `tmp/` for something being written for `key`, naming this host and
    /// process so that [`Cache::sweep_tmp`] can tell when its writer is gone.
    pub(crate) fn temp_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        Ok(self.dir("tmp")?.join(owner::temp_name(key)))
    }

    /// Removes what killed processes left in `tmp/` and `evals/` (see [`owner::sweep`]).
    fn sweep_tmp(&self) {
        owner::sweep(&self.root.join("tmp"), "");
        results::fsutil::sweep_temporaries(&self.root.join("evals"));
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.root.join("models").join(key)
    }

    pub fn model_path(&self, key: &str) -> PathBuf {
        self.entry(key).join("model.safetensors")
    }

    /// The cached entry for `key`, checked: its record parses and its model file has the
    /// SHA-256 the record names.
    pub fn lookup(&self, key: &str) -> anyhow::Result<Entry> {
        let path = self.entry(key).join("record.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entry::Missing),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let record: Record = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => return Ok(Entry::Corrupt(format!("{}: {e}", path.display()))),
        };
        let model = self.model_path(key);
        match std::fs::read(&model) {
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                if actual != record.model_sha256 {
                    return Ok(Entry::Corrupt(format!(
                        "{} has SHA-256 {actual}, its record says {}",
                        model.display(),
                        record.model_sha256
                    )));
                }
            }
            Err(e) => return Ok(Entry::Corrupt(format!("{}: {e}", model.display()))),
        }
        Ok(Entry::Found(record))
    }

    /// Whether an entry for `key` exists, unchecked (see [`Cache::lookup`]).
    pub fn has_record(&self, key: &str) -> bool {
        self.entry(key).join("record.json").exists()
    }

    /// Removes an entry (a corrupt one, before retraining it).
    pub fn discard(&self, key: &str) -> anyhow::Result<()> {
        let entry = self.entry(key);
        // Renamed away first, so that no reader sees a half-deleted entry.
        let gone = self.temp_path(key)?;
        match std::fs::rename(&entry, &gone) {
            Ok(()) => std::fs::remove_dir_all(&gone)
                .with_context(|| format!("cannot remove {}", gone.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", entry.display())),
        }
    }

    /// Loads a model found by [`Cache::lookup`].
    pub fn load_model(
        &self,
        key: &str,
        spec: &ClassifierSpec,
        device: tch::Device,
    ) -> anyhow::Result<Classifier> {
        Classifier::load(spec, &self.model_path(key), device).with_context(|| {
            format!(
                "the cache entry {} matches its record's SHA-256 but cannot be read as a model: \
                 delete that folder and run again (it will be retrained)",
                self.entry(key).display()
            )
        })
    }

    /// Stores a model and its record under `record.key`, atomically, filling in the model
    /// file's SHA-256. If another process stored the same key meanwhile, its entry is kept (it
    /// is the same model).
    pub fn store(&self, model: &Classifier, record: Record) -> anyhow::Result<Record> {
        self.write_entry(model, record, false)
    }

    /// [`Cache::store`], replacing an existing entry of the same key (one whose record lacks
    /// evaluations a later experiment asked for).
    pub fn replace(&self, model: &Classifier, record: Record) -> anyhow::Result<Record> {
        self.write_entry(model, record, true)
    }

    fn write_entry(
        &self,
        model: &Classifier,
        mut record: Record,
        replace: bool,
    ) -> anyhow::Result<Record> {
        let entry = self.entry(&record.key);
        self.dir("models")?;
        let tmp = self.temp_path(&record.key)?;
        let result = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&tmp)?;
            let model_file = tmp.join("model.safetensors");
            model.save(&model_file)?;
            std::fs::File::open(&model_file)?.sync_all()?;
            record.model_sha256 = sha256_hex(&std::fs::read(&model_file)?);
            write_atomic(&tmp.join("record.json"), &serde_json::to_vec_pretty(&record)?)?;
            match std::fs::rename(&tmp, &entry) {
                Ok(()) => results::fsutil::sync_dir(&self.root.join("models")),
                Err(_) if entry.join("record.json").exists() && !replace => Ok(()),
                Err(_) if entry.exists() => {
                    // Out of the way first (a reader sees it missing, never half-replaced).
                    self.discard(&record.key)?;
                    std::fs::rename(&tmp, &entry)?;
                    results::fsutil::sync_dir(&self.root.join("models"))
                }
                Err(e) => Err(e.into()),
            }
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result.with_context(|| format!("cannot store {} in the cache", entry.display()))?;
        Ok(record)
    }

    fn eval_path(&self, model_key: &str, split_key: &str) -> PathBuf {
        let key = sha256_hex(format!("{model_key}\n{split_key}\n").as_bytes());
        self.root.join("evals").join(format!("{key}.json"))
    }

    /// The stored confidences of a model on its split's population (the forget class, or the
    /// whole training set; the caller checks their number).
    pub fn confidences(&self, model_key: &str, split_key: &str) -> Option<Vec<f32>> {
        let path = self.eval_path(model_key, split_key).with_extension("f32");
        let bytes = std::fs::read(path).ok()?;
        (bytes.len() % 4 == 0).then(|| {
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        })
    }

    pub fn store_confidences(
        &self,
        model_key: &str,
        split_key: &str,
        confidences: &[f32],
    ) -> anyhow::Result<()> {
        let bytes: Vec<u8> = confidences.iter().flat_map(|c| c.to_le_bytes()).collect();
        write_atomic(&self.eval_path(model_key, split_key).with_extension("f32"), &bytes)
    }

    /// The stored final evaluation of a model on a split; one stored before the current MIA
    /// protocol counts as missing (it is redone and replaced).
    pub fn eval(&self, model_key: &str, split_key: &str) -> Option<Accuracy> {
        let bytes = std::fs::read(self.eval_path(model_key, split_key)).ok()?;
        // (A memorization population's model has no MIA; it records the protocol all the same.)
        serde_json::from_slice(&bytes)
            .ok()
            .filter(|a: &Accuracy| a.mia_protocol == Some(methods::mia::PROTOCOL))
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

#[cfg(test)]
mod tests {
    use super::*;
    use results::owner::hostname;

    #[test]
    fn lookup_reports_missing_found_and_corrupt_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert!(matches!(cache.lookup("k").unwrap(), Entry::Missing));
        let spec = ClassifierSpec { input: 4, hidden: vec![3], classes: 2, ..Default::default() };
        let model = Classifier::init(&spec, &mut data::rng::stream(0, "t"), tch::Device::Cpu);
        let record = Record {
            key: "k".into(),
            label: "t".into(),
            description: String::new(),
            model_sha256: String::new(),
            seconds: 1.0,
            history: Vec::new(),
        };
        let stored = cache.store(&model, record).unwrap();
        assert_eq!(stored.model_sha256.len(), 64);
        assert!(matches!(cache.lookup("k").unwrap(), Entry::Found(r) if r == stored));
        let file = cache.model_path("k");
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        assert!(
            matches!(cache.lookup("k").unwrap(), Entry::Corrupt(why) if why.contains("SHA-256"))
        );
        cache.discard("k").unwrap();
        assert!(matches!(cache.lookup("k").unwrap(), Entry::Missing));
    }

    #[test]
    fn opening_the_cache_sweeps_what_dead_processes_of_this_host_were_writing() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("v2/tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let name = |host: &str, pid: u32| format!("abc@{host}@{pid}@0");
        let dead = name(hostname(), i32::MAX as u32 - 7);
        let live = name(hostname(), std::process::id());
        let elsewhere = name("far-host", i32::MAX as u32 - 7);
        for n in [&dead, &live, &elsewhere] {
            std::fs::create_dir_all(tmp.join(n)).unwrap();
            std::fs::write(tmp.join(n).join("model.safetensors"), b"partial").unwrap();
        }
        let _cache = Cache::open(dir.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected = vec![live, elsewhere];
        expected.sort();
        assert_eq!(left, expected, "only the dead writer's entry is gone");
    }
}
