//! The content-addressed model cache, safe to share between processes and machines.
//!
//! ```text
//! <cache>/v2/models/<job key>/model.safetensors   the trained parameters
//!                            /record.json         what was trained, the model file's SHA-256,
//!                                                 how long it took, per-epoch history
//! <cache>/v2/evals/<key>.json                     accuracies of one model on one split
//! <cache>/v2/locks/<job key>                      "host pid" of the process training that job
//! <cache>/v2/tmp/                                 entries being written
//! ```
//!
//! Keys come from [`crate::plan`]. A model entry is written in full in `tmp/`, fsynced and
//! renamed into place, so an entry that exists is complete; evaluations are single files
//! written the same way. Evaluations are cached apart from models because one original model
//! is evaluated on every split drawn for its seed.
//!
//! An entry is checked whenever it is read: a record that does not parse, or a model file whose
//! SHA-256 is not the one its record names, is reported as [`Entry::Corrupt`] and the caller
//! retrains it. A process that trains a job first takes its lock (a file created exclusively,
//! its modification time refreshed every few seconds while training); a lock whose process is
//! gone (same host, no such pid) or whose heartbeat stopped (any host) is taken over.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use methods::Metrics;
use model::{Mlp, MlpSpec};
use serde::{Deserialize, Serialize};

use crate::fsutil::{temp_sibling, write_atomic};

/// The cache layout version (the folder name); bump to abandon old entries.
/// v2: records carry the model file's SHA-256; lock files.
const LAYOUT: &str = "v2";

/// How often a held lock's modification time is refreshed.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A lock not refreshed for this long belongs to a process that is gone.
const STALE_AFTER: Duration = Duration::from_secs(60);

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

/// Who holds a job's lock.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "process {} on {}", self.pid, self.host)
    }
}

/// The outcome of trying to lock a job.
#[derive(Debug)]
pub enum Lock {
    Acquired(JobLock),
    /// Another live process trains it.
    Busy(Holder),
}

/// A held job lock: refreshed while held, removed when dropped.
#[derive(Debug)]
pub struct JobLock {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Drop for JobLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// This machine's name, for lock files.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
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
    fn dir(&self, sub: &str) -> anyhow::Result<PathBuf> {
        let d = self.root.join(sub);
        std::fs::create_dir_all(&d)
            .with_context(|| format!("cannot create the cache folder {}", d.display()))?;
        Ok(d)
    }

    /// Removes what killed processes left in `tmp/` (anything a day old: a live writer
    /// finishes an entry in seconds).
    fn sweep_tmp(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("tmp")) else { return };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(24 * 3600));
            if old {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
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
                let actual = crate::plan::sha256_hex_bytes(&bytes);
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
        let gone = temp_sibling(&self.dir("tmp")?.join(key));
        match std::fs::rename(&entry, &gone) {
            Ok(()) => std::fs::remove_dir_all(&gone)
                .with_context(|| format!("cannot remove {}", gone.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot remove {}", entry.display())),
        }
    }

    /// Tries to take the lock of job `key`, taking over a stale one.
    pub fn lock(&self, key: &str) -> anyhow::Result<Lock> {
        let path = self.dir("locks")?.join(key);
        let me = Holder { host: hostname(), pid: std::process::id() };
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    writeln!(f, "{} {}", me.host, me.pid)
                        .and_then(|()| f.sync_all())
                        .with_context(|| format!("cannot write the lock {}", path.display()))?;
                    let stop = Arc::new(AtomicBool::new(false));
                    let flag = stop.clone();
                    let heartbeat = std::thread::spawn(move || {
                        while !flag.load(Ordering::Relaxed) {
                            std::thread::park_timeout(HEARTBEAT);
                            let _ = f.set_modified(SystemTime::now());
                        }
                    });
                    return Ok(Lock::Acquired(JobLock { path, stop, heartbeat: Some(heartbeat) }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create the lock {}", path.display()));
                }
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = text.split_once(' ').and_then(|(host, pid)| {
                Some(Holder { host: host.to_owned(), pid: pid.trim().parse().ok()? })
            });
            let age = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let Some(age) = age else { continue }; // released meanwhile: try again
            let dead = holder.as_ref().is_some_and(|h| {
                h.host == me.host && !Path::new(&format!("/proc/{}", h.pid)).exists()
            });
            // A holder still writing its first line is younger than a second.
            let unreadable = holder.is_none() && age > Duration::from_secs(2);
            if dead || unreadable || age > STALE_AFTER {
                // Renaming is atomic: of several processes taking over, one succeeds.
                let _ = std::fs::rename(&path, temp_sibling(&self.dir("tmp")?.join(key)));
                continue;
            }
            return Ok(Lock::Busy(holder.expect("a live lock names its holder")));
        }
    }

    /// Loads a model found by [`Cache::lookup`].
    pub fn load_model(
        &self,
        key: &str,
        spec: &MlpSpec,
        device: tch::Device,
    ) -> anyhow::Result<Mlp> {
        Ok(Mlp::load(spec, &self.model_path(key), device)?)
    }

    /// Stores a model and its record under `record.key`, atomically, filling in the model
    /// file's SHA-256. If another process stored the same key meanwhile, its entry is kept (it
    /// is the same model).
    pub fn store(&self, model: &Mlp, mut record: Record) -> anyhow::Result<Record> {
        let entry = self.entry(&record.key);
        self.dir("models")?;
        let tmp = temp_sibling(&self.dir("tmp")?.join(&record.key));
        let result = (|| -> anyhow::Result<()> {
            std::fs::create_dir_all(&tmp)?;
            let model_file = tmp.join("model.safetensors");
            model.save(&model_file)?;
            std::fs::File::open(&model_file)?.sync_all()?;
            record.model_sha256 = crate::plan::sha256_hex_bytes(&std::fs::read(&model_file)?);
            write_atomic(&tmp.join("record.json"), &serde_json::to_vec_pretty(&record)?)?;
            match std::fs::rename(&tmp, &entry) {
                Ok(()) => crate::fsutil::sync_dir(&self.root.join("models")),
                Err(_) if entry.join("record.json").exists() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })();
        let _ = std::fs::remove_dir_all(&tmp);
        result.with_context(|| format!("cannot store {} in the cache", entry.display()))?;
        Ok(record)
    }

    fn eval_path(&self, model_key: &str, split_key: &str) -> PathBuf {
        let key = crate::plan::sha256_hex(&format!("{model_key}\n{split_key}\n"));
        self.root.join("evals").join(format!("{key}.json"))
    }

    /// The stored final evaluation of a model on a split; one stored before the current MIA
    /// protocol counts as missing (it is redone and replaced).
    pub fn eval(&self, model_key: &str, split_key: &str) -> Option<Accuracy> {
        let bytes = std::fs::read(self.eval_path(model_key, split_key)).ok()?;
        serde_json::from_slice(&bytes).ok().filter(|a: &Accuracy| {
            a.mia.is_some() && a.mia_protocol == Some(methods::mia::PROTOCOL)
        })
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

    fn lock_file(cache: &Cache, key: &str, text: &str, age: Duration) -> PathBuf {
        let path = cache.dir("locks").unwrap().join(key);
        std::fs::write(&path, text).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn a_lock_is_exclusive_released_on_drop_and_taken_over_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert!(!dir.path().join("v2").exists(), "opening creates nothing");

        let Lock::Acquired(held) = cache.lock("a").unwrap() else { panic!("free") };
        let me = Holder { host: hostname(), pid: std::process::id() };
        match cache.lock("a").unwrap() {
            Lock::Busy(h) => assert_eq!(h, me),
            Lock::Acquired(_) => panic!("held twice"),
        }
        drop(held);
        assert!(matches!(cache.lock("a").unwrap(), Lock::Acquired(_)), "released on drop");

        // A live process elsewhere, recently refreshed: busy.
        lock_file(&cache, "b", "other-host 1\n", Duration::from_secs(5));
        assert!(matches!(cache.lock("b").unwrap(), Lock::Busy(h) if h.host == "other-host"));
        // The same lock, silent for longer than STALE_AFTER: taken over.
        lock_file(&cache, "b", "other-host 1\n", STALE_AFTER + Duration::from_secs(5));
        assert!(matches!(cache.lock("b").unwrap(), Lock::Acquired(_)));
        // This host, a pid that does not exist: taken over at once.
        lock_file(&cache, "c", &format!("{} {}\n", hostname(), u32::MAX - 1), Duration::ZERO);
        assert!(matches!(cache.lock("c").unwrap(), Lock::Acquired(_)));
    }

    #[test]
    fn lookup_reports_missing_found_and_corrupt_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert!(matches!(cache.lookup("k").unwrap(), Entry::Missing));
        let spec = MlpSpec { input: 4, hidden: vec![3], classes: 2, ..Default::default() };
        let model = Mlp::init(&spec, &mut data::rng::stream(0, "t"), tch::Device::Cpu);
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
}
