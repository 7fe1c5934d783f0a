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
//! retrains it. A process that trains a job first takes its lock (a file created exclusively,
//! its modification time refreshed every few seconds while training); a lock whose process is
//! gone (same host, no such process: `kill(pid, 0)`) or whose heartbeat stopped (any host) is
//! taken over. A lock file's text is unique to one acquisition; replacing it (a takeover: a
//! complete new lock file renamed over it, one atomic step) or removing it (its holder's
//! release) needs that instance's claim file, created exclusively, so of several processes
//! that judge a lock stale one takes it, and a holder whose lock was taken over leaves its
//! successor's alone. Opening the cache sweeps `tmp/` of what dead processes of this host
//! were writing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use methods::Metrics;
use model::{Classifier, ClassifierSpec};
use serde::{Deserialize, Serialize};

use results::fsutil::{unique_number, write_atomic};

use data::dataset::sha256_hex;

use crate::execution::owner::{self, alive, hostname};

/// The cache layout version (the folder name); bump to abandon old entries.
/// v2: records carry the model file's SHA-256; lock files.
const LAYOUT: &str = "v2";

/// How often a held lock's modification time is refreshed.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A lock not refreshed for this long belongs to a process that is gone.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// How long a process that found a lock changing under it waits before it looks again.
const RETRY: Duration = Duration::from_millis(20);

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

/// A held job lock: refreshed while held, removed when dropped if it is still this one.
#[derive(Debug)]
pub struct JobLock {
    path: PathBuf,
    /// The lock file's text, unique to this acquisition: how a holder knows its lock from the
    /// one of a process that took it over.
    text: String,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
    /// Releases it if the process is interrupted (SIGINT, SIGTERM).
    _on_interrupt: crate::execution::interrupt::Registered,
}

impl JobLock {
    /// Holds the lock whose file `file` (at `path`) contains `text`, refreshing its
    /// modification time until dropped. The refresh goes through the open file, so once the
    /// lock has been taken over (another file renamed over `path`) it touches only the old one.
    fn hold(path: PathBuf, file: std::fs::File, text: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let heartbeat = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::thread::park_timeout(HEARTBEAT);
                let _ = file.set_modified(SystemTime::now());
            }
        });
        let (lock, token) = (path.clone(), text.clone());
        let _on_interrupt =
            crate::execution::interrupt::registry().cleanup(move || release(&lock, &token));
        Self { path, text, stop, heartbeat: Some(heartbeat), _on_interrupt }
    }
}

impl Drop for JobLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        release(&self.path, &self.text);
    }
}

/// Removes the lock at `path` if it is still the instance whose text is `text`. Removing a
/// lock is a change of its instance like a takeover: only the holder of the instance's claim
/// may do it, so a lock taken over meanwhile is left to its new holder.
fn release(path: &Path, text: &str) {
    let _ = with_claim(path, text.as_bytes(), || {
        let _ = std::fs::remove_file(path);
    });
}

/// A text for a new lock file: who holds it, and a token no other acquisition has.
fn lock_text(me: &Holder) -> String {
    let nanos =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{} {} {nanos:x}-{:x}\n", me.host, me.pid, unique_number())
}

fn parse_holder(text: &str) -> Option<Holder> {
    let mut words = text.split_whitespace();
    let host = words.next()?.to_owned();
    let pid = words.next()?.parse().ok()?;
    Some(Holder { host, pid })
}

/// Runs `change` (a takeover or a release of the lock at `path`) if its file still holds
/// `text`, as the only process allowed to change that instance of the lock: first it creates
/// the instance's claim file (`<lock>.<hash of text>.claim`) exclusively, which one process
/// alone can do. So two processes that both judge a lock stale cannot both take it, and a
/// holder whose lock was taken over cannot remove its successor's. `None` if another process
/// holds the claim or the lock has changed.
fn with_claim<T>(path: &Path, text: &[u8], change: impl FnOnce() -> T) -> Option<T> {
    let id = &sha256_hex(text)[..16];
    let name = path.file_name()?.to_str()?;
    let claim = path.with_file_name(format!("{name}.{id}.claim"));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&claim) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A claim outlives its step only if its maker died during it.
            let age = std::fs::metadata(&claim).and_then(|m| m.modified()).ok();
            if age.and_then(|t| t.elapsed().ok()).is_some_and(|a| a > STALE_AFTER) {
                let _ = std::fs::remove_file(&claim);
            }
            return None;
        }
        Err(_) => return None,
    }
    let result = (std::fs::read(path).ok().as_deref() == Some(text)).then(change);
    let _ = std::fs::remove_file(&claim);
    result
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

    /// A new name in `tmp/` for something being written for `key`, naming this host and
    /// process so that [`Cache::sweep_tmp`] can tell when its writer is gone.
    fn temp_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        Ok(self.dir("tmp")?.join(owner::temp_name(key)))
    }

    /// Removes what killed processes left in `tmp/` (see [`owner::sweep`]).
    fn sweep_tmp(&self) {
        owner::sweep(&self.root.join("tmp"), "");
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

    /// Tries to take the lock of job `key`, taking over a stale one: one whose holder is a
    /// process of this host that no longer exists, or whose heartbeat stopped (any host).
    pub fn lock(&self, key: &str) -> anyhow::Result<Lock> {
        let dir = self.dir("locks")?;
        let path = dir.join(key);
        let me = Holder { host: hostname().to_owned(), pid: std::process::id() };
        loop {
            let text = lock_text(&me);
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(text.as_bytes())
                        .and_then(|()| f.sync_all())
                        .with_context(|| format!("cannot write the lock {}", path.display()))?;
                    return Ok(Lock::Acquired(JobLock::hold(path, f, text)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot create the lock {}", path.display()));
                }
            }
            // Held, or held a moment ago. Only a regular file is a lock: anything else at its
            // path (a folder, a link, a pipe, whose reading could block) is not this tool's.
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::thread::sleep(RETRY);
                    continue;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read the lock {}", path.display()));
                }
            };
            anyhow::ensure!(
                meta.file_type().is_file(),
                "{}: not a lock file but a {}; no process of this tool made it: remove it and \
                 run again",
                path.display(),
                if meta.is_dir() { "folder" } else { "link or special file" }
            );
            let held = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot read the lock {}: remove it if no process is training this \
                             job",
                            path.display()
                        )
                    });
                }
            };
            // A time in the future (another host's clock) counts as just refreshed.
            let age = meta.modified().ok().and_then(|t| t.elapsed().ok()).unwrap_or_default();
            // Bytes that are not "host pid token" (not even text) name no holder.
            let holder = std::str::from_utf8(&held).ok().and_then(parse_holder);
            let dead = holder.as_ref().is_some_and(|h| h.host == me.host && !alive(h.pid));
            // A holder still writing its first line is younger than a second.
            let unreadable = holder.is_none() && age > Duration::from_secs(2);
            if !(dead || unreadable || age > STALE_AFTER) {
                match holder {
                    Some(holder) => return Ok(Lock::Busy(holder)),
                    None => {
                        std::thread::sleep(RETRY);
                        continue;
                    }
                }
            }
            // Stale: replace that very instance, in one atomic step (a complete lock file
            // renamed over it), if no other process is replacing it.
            let tmp = self.temp_path(key)?;
            let taken = with_claim(&path, &held, || -> std::io::Result<std::fs::File> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
                Ok(f)
            });
            match taken {
                Some(Ok(f)) => return Ok(Lock::Acquired(JobLock::hold(path, f, text))),
                Some(Err(e)) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e)
                        .with_context(|| format!("cannot take over the lock {}", path.display()));
                }
                // Another process is taking it over or releasing it: see who holds it next.
                None => std::thread::sleep(RETRY),
            }
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
        let me = Holder { host: hostname().to_owned(), pid: std::process::id() };
        match cache.lock("a").unwrap() {
            Lock::Busy(h) => assert_eq!(h, me),
            Lock::Acquired(_) => panic!("held twice"),
        }
        drop(held);
        assert!(matches!(cache.lock("a").unwrap(), Lock::Acquired(_)), "released on drop");

        // A live process elsewhere, recently refreshed: busy.
        lock_file(&cache, "b", "other-host 1 t\n", Duration::from_secs(5));
        assert!(matches!(cache.lock("b").unwrap(), Lock::Busy(h) if h.host == "other-host"));
        // The same lock, silent for longer than STALE_AFTER: taken over.
        lock_file(&cache, "b", "other-host 1 t\n", STALE_AFTER + Duration::from_secs(5));
        assert!(matches!(cache.lock("b").unwrap(), Lock::Acquired(_)));
        // This host, a pid that does not exist: taken over at once.
        lock_file(&cache, "c", &format!("{} {}\n", hostname(), u32::MAX - 1), Duration::ZERO);
        assert!(matches!(cache.lock("c").unwrap(), Lock::Acquired(_)));
    }

    /// `cache.lock(key)` on another thread, failing the test if it has not returned within ten
    /// seconds (a lock that cannot be read once made it spin forever).
    fn lock_within_seconds(cache: &Cache, key: &str) -> anyhow::Result<Lock> {
        let (send, receive) = std::sync::mpsc::channel();
        let (cache, key) = (cache.clone(), key.to_owned());
        std::thread::spawn(move || send.send(cache.lock(&key)));
        receive.recv_timeout(Duration::from_secs(10)).expect("lock() hung")
    }

    #[test]
    fn a_lock_that_cannot_be_read_is_taken_over_or_named_never_spun_on() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let locks = cache.dir("locks").unwrap();
        // Bytes that are not text, older than a holder takes to write its line: no holder.
        for (key, age) in
            [("binary-old", STALE_AFTER * 2), ("binary-young", Duration::from_secs(3))]
        {
            std::fs::write(locks.join(key), [0xff, 0xfe, 0x00, 0x80]).unwrap();
            let f = std::fs::File::options().write(true).open(locks.join(key)).unwrap();
            f.set_modified(SystemTime::now() - age).unwrap();
            let lock = lock_within_seconds(&cache, key).unwrap();
            assert!(matches!(lock, Lock::Acquired(_)), "{key}: taken over");
        }
        // Just written and still unreadable: waited for (sleeping), then taken over.
        std::fs::write(locks.join("binary-new"), [0xff]).unwrap();
        let t0 = std::time::Instant::now();
        let lock = lock_within_seconds(&cache, "binary-new").unwrap();
        assert!(matches!(lock, Lock::Acquired(_)) && t0.elapsed() >= Duration::from_secs(2));
        // A folder, or a link to nothing, where a lock belongs: an error naming the path.
        std::fs::create_dir(locks.join("folder")).unwrap();
        let err = format!("{:#}", lock_within_seconds(&cache, "folder").unwrap_err());
        assert!(err.contains("locks/folder: not a lock file but a folder"), "{err}");
        assert!(err.contains("remove it"), "{err}");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("nowhere"), locks.join("dangling")).unwrap();
            let err = format!("{:#}", lock_within_seconds(&cache, "dangling").unwrap_err());
            assert!(err.contains("locks/dangling: not a lock file but a link"), "{err}");
        }
    }

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

    /// A lock file whose holder is a process of this host that does not exist.
    fn dead_lock_text() -> String {
        format!("{} {} old-token\n", hostname(), i32::MAX - 7)
    }

    #[test]
    fn of_many_threads_taking_over_a_stale_lock_exactly_one_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        for round in 0..40 {
            let key = format!("k{round}");
            if round % 2 == 0 {
                lock_file(&cache, &key, &dead_lock_text(), Duration::ZERO);
            } else {
                lock_file(&cache, &key, "far-host 1 t\n", STALE_AFTER + Duration::from_secs(1));
            }
            let barrier = std::sync::Barrier::new(8);
            let held: Vec<JobLock> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            match cache.lock(&key).unwrap() {
                                Lock::Acquired(l) => Some(l),
                                Lock::Busy(h) => {
                                    assert_eq!(h.pid, std::process::id(), "busy with the winner");
                                    None
                                }
                            }
                        })
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(held.len(), 1, "round {round}: {} holders", held.len());
            let text = std::fs::read_to_string(cache.dir("locks").unwrap().join(&key)).unwrap();
            assert_eq!(text, held[0].text, "the file is the winner's");
        }
        let leftovers: Vec<_> = std::fs::read_dir(cache.dir("locks").unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("claim"))
            .collect();
        assert!(leftovers.is_empty(), "claims are removed: {leftovers:?}");
    }

    #[test]
    fn a_holder_whose_lock_was_taken_over_leaves_the_new_one_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let Lock::Acquired(first) = cache.lock("a").unwrap() else { panic!("free") };
        // Its heartbeat looks stopped (a process stalled for minutes): taken over.
        let path = cache.dir("locks").unwrap().join("a");
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() - STALE_AFTER - Duration::from_secs(5)).unwrap();
        let Lock::Acquired(second) = cache.lock("a").unwrap() else { panic!("stale") };
        drop(first);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), second.text, "still the new lock");
        assert!(matches!(cache.lock("a").unwrap(), Lock::Busy(_)));
        drop(second);
        assert!(!path.exists(), "its own holder removes it");
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
