//! SIGINT and SIGTERM: the harness stops what it started, cleans up after it, says which jobs
//! were unfinished and exits 130 or 143 (128 + the signal, as a shell reports it).
//!
//! Whatever must not outlive the process registers itself while it exists: a job that is
//! training ([`Registry::job`]: its label, for the message), an external command and its job
//! folder, a held cache lock ([`Registry::cleanup`]: what to do on an interrupt). On a signal
//! a thread of its own takes the registry, runs every cleanup, prints the unfinished jobs and
//! exits, holding the registry so that nothing registers meanwhile. Every model already trained
//! is in the cache (entries are renamed into place complete), so the same command resumes.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// What is registered: jobs by id, and cleanups by id.
#[derive(Default)]
pub struct Registry {
    next: u64,
    jobs: BTreeMap<u64, String>,
    cleanups: BTreeMap<u64, Box<dyn FnOnce() + Send>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("jobs", &self.jobs)
            .field("cleanups", &self.cleanups.len())
            .finish()
    }
}

/// Removes its registration when dropped.
#[derive(Debug)]
#[must_use = "the registration ends when this is dropped"]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut r = registry();
        r.jobs.remove(&self.0);
        r.cleanups.remove(&self.0);
    }
}

/// The process's registry, locked. A holder may spawn a process and register it in one step,
/// so that an interrupt sees either neither or both.
pub fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    let lock = REGISTRY.get_or_init(Default::default).lock();
    // A panic elsewhere while holding it leaves it usable: its maps are always consistent.
    lock.unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Registry {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// A job that is being trained, named in the message if the process is interrupted.
    pub fn job(&mut self, label: String) -> Registered {
        let id = self.id();
        self.jobs.insert(id, label);
        Registered(id)
    }

    /// Something to do if the process is interrupted while the registration lasts (it must
    /// not take the registry itself).
    pub fn cleanup(&mut self, f: impl FnOnce() + Send + 'static) -> Registered {
        let id = self.id();
        self.cleanups.insert(id, Box::new(f));
        Registered(id)
    }
}

/// Set by the signal handler itself, before the thread that stops the process runs.
static INTERRUPTED: std::sync::LazyLock<std::sync::Arc<std::sync::atomic::AtomicBool>> =
    std::sync::LazyLock::new(Default::default);

/// If a signal has arrived, waits for its handler to end the process (so that a command
/// that finishes meanwhile, perhaps failing because its child was interrupted too, does not
/// exit first with its own code and message).
pub fn wait_if_interrupted() {
    if INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// Handles SIGINT and SIGTERM from now on (see the module's documentation).
#[cfg(unix)]
pub fn install() -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, INTERRUPTED.clone())?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
            stop(name);
            // At once, without running exit handlers: libtorch's static destructors would
            // race the worker threads still training.
            signal_hook::low_level::exit(128 + signal);
        }
    })?;
    Ok(())
}

/// Elsewhere the default handling stays: the process ends at once.
#[cfg(not(unix))]
pub fn install() -> anyhow::Result<()> {
    Ok(())
}

/// Runs every cleanup (the last registered first) and says what was unfinished, keeping the
/// registry locked so that nothing registers after.
fn stop(signal: &str) {
    let mut r = registry();
    let jobs: Vec<String> = r.jobs.values().cloned().collect();
    for (_, cleanup) in std::mem::take(&mut r.cleanups).into_iter().rev() {
        cleanup();
    }
    let unfinished = match jobs.len() {
        0 => "no job was running".to_owned(),
        n => format!("{n} unfinished jobs were stopped:\n  {}\n", jobs.join("\n  ")),
    };
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    eprintln!(
        "\ninterrupted by {signal}: {unfinished}every model already trained is in the cache; \
         run the same command again to resume"
    );
    std::mem::forget(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_end_when_dropped() {
        let job = registry().job("retrain epochs=1 seed=0".into());
        let cleanup = registry().cleanup(|| {});
        let ids = (job.0, cleanup.0);
        assert!(registry().jobs.contains_key(&ids.0) && registry().cleanups.contains_key(&ids.1));
        drop((job, cleanup));
        assert!(!registry().jobs.contains_key(&ids.0) && !registry().cleanups.contains_key(&ids.1));
    }
}
