//! Job locks in the cache: at most one process trains a job at a time.
//!
//! A process that trains a job first takes its lock (`<cache>/v2/locks/<key>`, a file created
//! exclusively, its modification time refreshed every few seconds while training); a lock
//! whose process is gone (same host, no such process: `kill(pid, 0)`) or whose heartbeat
//! stopped (any host) is taken over, and so is one that cannot be read as a holder (after
//! the second its writer has to write it). A lock file's text is unique to one acquisition;
//! replacing it (a takeover: a complete new lock file renamed over it, one atomic step) or
//! removing it (its holder's release) needs that instance's claim file, created exclusively,
//! so of several processes that judge a lock stale one takes it, and a holder whose lock was
//! taken over leaves its successor's alone. Anything at a lock's path that is not a regular
//! file is an error naming it; waiting always sleeps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use data::dataset::sha256_hex;
use results::owner::unique_number;

use crate::execution::cache::Cache;
use results::owner::{alive, hostname};

/// How often a held lock's modification time is refreshed.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// A lock not refreshed for this long belongs to a process that is gone.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// How long a process that found a lock changing under it waits before it looks again.
const RETRY: Duration = Duration::from_millis(20);

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
}
