//! Who owns a temporary thing: this host's name and process id, written into the names of
//! temporary files and folders (`<stem>@<host>@<pid>@<n>`), so that a later process can tell
//! when their writer is gone and sweep them. Every temporary is named and swept this way: the
//! atomic writes' siblings (`fsutil`), the model cache's `tmp/`, external methods' job folders.

use std::path::Path;
use std::time::Duration;

/// What is older than this is swept whoever wrote it (a writer on another host cannot be
/// asked; a live one finishes an entry in seconds and a job in far less).
const ABANDONED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// This machine's name, for lock files and temporary names (asked once per process).
pub fn hostname() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let name = gethostname::gethostname().to_string_lossy().trim().to_owned();
        // A name is one word in a lock file and holds no '@' in a temporary's name.
        let name: String = name
            .chars()
            .map(|c| if c.is_whitespace() || c == '@' || c == '/' { '_' } else { c })
            .collect();
        if name.is_empty() { "unnamed-host".into() } else { name }
    })
}

/// Whether process `pid` of this host is alive (it exists, even if it is not ours to signal).
#[cfg(unix)]
pub fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    !matches!(rustix::process::test_kill_process(pid), Err(rustix::io::Errno::SRCH))
}

/// Without a way to ask, every holder is taken to be alive: its age decides.
#[cfg(not(unix))]
pub fn alive(_pid: u32) -> bool {
    true
}

/// A number no earlier call in this process returned: with the process id, it makes
/// temporary names and lock tokens unique.
pub fn unique_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A new name for something this process writes: `<stem>@<host>@<pid>@<n>`.
pub fn temp_name(stem: &str) -> String {
    format!("{stem}@{}@{}@{}", hostname(), std::process::id(), unique_number())
}

/// Whether the writer named in `name` (a [`temp_name`]) is a process of this host that no
/// longer exists.
fn writer_gone(name: &str) -> bool {
    let mut parts = name.rsplit('@');
    let (_n, pid, host) = (parts.next(), parts.next(), parts.next());
    host == Some(hostname()) && pid.and_then(|p| p.parse().ok()).is_some_and(|pid| !alive(pid))
}

/// Removes the entries of `dir` whose names start with `prefix` and that their writer left
/// behind: a [`temp_name`] of a process of this host that no longer exists, or anything a day
/// old. Best effort: what cannot be removed stays.
pub fn sweep(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with(prefix) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > ABANDONED_AFTER);
        if writer_gone(&name) || old {
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_asks_the_system() {
        assert!(alive(std::process::id()));
        assert!(!alive(i32::MAX as u32 - 7));
        assert!(!hostname().is_empty() && !hostname().contains(char::is_whitespace));
    }

    #[test]
    fn a_sweep_removes_what_dead_processes_of_this_host_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let name = |host: &str, pid: u32| format!("job-x@{host}@{pid}@0");
        let dead = name(hostname(), i32::MAX as u32 - 7);
        let live = name(hostname(), std::process::id());
        let elsewhere = name("far-host", i32::MAX as u32 - 7);
        let other = format!("other@{}@{}@0", hostname(), i32::MAX as u32 - 7);
        for n in [&dead, &live, &elsewhere, &other] {
            std::fs::create_dir_all(dir.path().join(n)).unwrap();
            std::fs::write(dir.path().join(n).join("model.safetensors"), b"partial").unwrap();
        }
        std::fs::write(dir.path().join(temp_name("job-file")), b"").unwrap();
        sweep(dir.path(), "job-");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(!left.contains(&dead), "the dead writer's folder is gone");
        assert!(left.contains(&live) && left.contains(&elsewhere) && left.contains(&other));
    }
}
