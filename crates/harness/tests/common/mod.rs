//! Helpers shared by the integration tests: the real-MNIST slice experiment and the binary.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `scripts/setup` has fetched MNIST; if not, says that the calling test is skipped.
#[track_caller]
pub fn have_mnist() -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/MNIST/raw");
    let here = dir.join("train-images-idx3-ubyte").exists();
    if !here {
        let caller = std::panic::Location::caller();
        eprintln!("skipped ({caller}): MNIST is not in {}; run scripts/setup", dir.display());
    }
    here
}

pub fn mnist_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/MNIST/raw");
    assert!(
        dir.join("train-images-idx3-ubyte").exists(),
        "MNIST missing in {}: run scripts/setup",
        dir.display()
    );
    dir.canonicalize().unwrap()
}

/// Writes `dir/<name>.toml`: one seed on 3,000 training and 500 test images of MNIST, the
/// notebook's scenario, then `body` (`model = ...` and method sections, ...).
pub fn slice(dir: &Path, name: &str, head: &str, body: &str) -> PathBuf {
    let text = format!(
        "seeds = [0]\n{head}[data]\ndir = \"{}\"\ntrain_limit = 3000\ntest_limit = 500\n\
         [forget]\nclass = 3\nfraction = 0.75\n{body}",
        mnist_dir().display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

pub fn experiment(dir: &Path) -> PathBuf {
    let text = format!(
        r#"
seeds = [0, 1]
[data]
dir = "{}"
train_limit = 4000
test_limit = 1000
[forget]
class = 3
fraction = 0.75
[methods.original]
epochs = 2
[methods.retrain]
epochs = 2
[methods.finetune]
epochs = 1
[methods.mi_unlearn]
gamma = [0, 4]
epochs = 2
"#,
        mnist_dir().display()
    );
    std::fs::create_dir_all(dir.join("experiments")).unwrap();
    let path = dir.join("experiments/slice.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The workspace root, where the datasets' default folders (`data/...`) are relative to.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// Runs the harness binary in the workspace root; returns (success, stdout, stderr).
pub fn harness_in_workspace(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(workspace())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs the harness binary; returns (success, stdout, stderr).
pub fn harness(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

pub type Row = std::collections::HashMap<String, String>;

pub fn read_csv(path: &Path) -> Vec<Row> {
    csv::Reader::from_path(path).unwrap().deserialize().map(Result::unwrap).collect()
}

pub fn num(row: &Row, column: &str) -> f64 {
    row[column].parse().unwrap_or_else(|_| panic!("{column} in {row:?}"))
}

/// A CSV file without its `rte*` columns (wall time is the one thing allowed to differ).
pub fn numbers(path: &Path) -> Vec<Vec<(String, String)>> {
    read_csv(path)
        .into_iter()
        .map(|r| {
            let mut cells: Vec<_> = r.into_iter().filter(|(k, _)| !k.starts_with("rte")).collect();
            cells.sort();
            cells
        })
        .collect()
}

/// Runs the harness binary; returns (exit code, stdout, stderr).
pub fn harness_code(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs the harness binary in the workspace root; returns (exit code, stdout, stderr).
pub fn harness_code_in_workspace(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(workspace())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The shape and elements of the `.npy` file at `path`.
pub fn npy_array<T: results::npy::Element>(path: &Path) -> (Vec<usize>, Vec<T>) {
    results::npy::from_bytes(&std::fs::read(path).unwrap()).unwrap()
}
