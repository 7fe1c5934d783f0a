//! Writes that never leave a half-written file behind: write a temporary file in the same
//! folder, fsync it, rename it over the target.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The start of every temporary sibling's name.
const TEMP: &str = ".tmp.";

/// A name for a temporary sibling of `path`, unique to this process and call, naming its
/// host and process so that [`sweep_temporaries`] can tell when its writer is gone.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(crate::owner::temp_name(&format!("{TEMP}{name}")))
}

/// Removes from `dir` the temporary siblings ([`temp_sibling`]) that killed processes of this
/// host left there (and any a day old).
pub fn sweep_temporaries(dir: &Path) {
    crate::owner::sweep(dir, TEMP);
}

/// Replaces `path` with `bytes` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = temp_sibling(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    let result = result.and_then(|()| match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => sync_dir(dir).map_err(std::io::Error::other),
        None => Ok(()),
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// Makes a rename in `dir` durable (fsync of the folder); a no-op where folders cannot be
/// opened for it.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::File::open(dir) {
        Ok(d) => {
            let _ = d.sync_all();
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("cannot open {}", dir.display())),
    }
}

/// What a folder checked by [`ensure_writable`] is for, and how to choose another.
#[derive(Debug, Clone, Copy)]
pub enum Folder {
    /// A results folder (`--out`).
    Results,
    /// The model cache (`--cache`, `UNLEARN_BENCH_CACHE`).
    Cache,
    /// The folder of a baseline file `check --update-baseline` writes (`--baseline`).
    Baseline,
}

impl Folder {
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            Folder::Results => {
                ("results folder", "choose another --out folder or fix its permissions")
            }
            Folder::Cache => (
                "cache folder",
                "choose another --cache folder (or UNLEARN_BENCH_CACHE) or fix its permissions",
            ),
            Folder::Baseline => (
                "baseline's folder",
                "choose another --baseline path or fix its folder's permissions",
            ),
        }
    }
}

/// Checks that `dir` could be created and written, without creating it: a file is written
/// and removed in `dir`, or in its nearest existing ancestor. So a run whose results could not
/// be written fails before it starts, and leaves nothing behind.
pub fn ensure_writable(dir: &Path, what: Folder) -> anyhow::Result<()> {
    let (name, fix) = what.describe();
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    anyhow::ensure!(
        existing.is_dir(),
        "{}: cannot create the {name}: {} is not a folder; {fix}",
        dir.display(),
        existing.display()
    );
    let probe = temp_sibling(&existing.join("write-test"));
    std::fs::write(&probe, b"")
        .with_context(|| format!("{}: cannot write the {name}; {fix}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_name_their_writer_and_those_of_dead_writers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("runs.csv");
        let mine = temp_sibling(&target);
        let name = mine.file_name().unwrap().to_str().unwrap().to_owned();
        let host = crate::owner::hostname();
        assert!(name.starts_with(&format!(".tmp.runs.csv@{host}@{}@", std::process::id())));
        let dead = dir.path().join(format!(".tmp.runs.csv@{host}@{}@3", i32::MAX - 7));
        for p in [&mine, &dead, &target] {
            std::fs::write(p, b"x").unwrap();
        }
        sweep_temporaries(dir.path());
        assert!(mine.exists() && target.exists(), "a live writer's and the file itself stay");
        assert!(!dead.exists(), "a dead writer's temporary is swept");
        write_atomic(&target, b"whole").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
    }
}
