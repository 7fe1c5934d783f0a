//! Everything about the data and nothing about tensors: reading and validating IDX files
//! ([`idx`]), loading the MNIST split into memory once, verified against its SHA-256 and
//! normalised like torchvision ([`dataset`], [`Samples`]), drawing the forget / remain split
//! ([`split`], or by memorization estimates: [`memorization`]) and deriving the independent random streams a run draws from ([`rng`]).
//!
//! This crate does no tensor work and knows no model: samples are rows of a flat `Vec<f32>`,
//! addressed by index, so one copy can be shared by every job of a process.
//!
//! ```no_run
//! let mnist = data::dataset::load(std::path::Path::new("data/MNIST/raw"), &Default::default())?;
//! let spec = data::split::ForgetSpec::class(3, 0.75);
//! let split = data::split::forget_split(&mnist.train.labels, &spec, &mut data::rng::stream(0, "split"))?;
//! assert_eq!(split.forget.len(), 4598);
//! # Ok::<(), data::DataError>(())
//! ```

pub mod dataset;
pub mod idx;
pub mod memorization;
pub mod rng;
pub mod split;

use std::path::PathBuf;

pub use dataset::{ImageDataset, Samples};

/// Everything that can go wrong with the data; every message names the file or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: missing; run scripts/setup to fetch MNIST, or set data.dir in the experiment")]
    Missing { path: PathBuf },
    #[error("{path}: invalid IDX file: {problem}")]
    Format { path: PathBuf, problem: String },
    #[error(
        "{path}: SHA-256 is {actual}, expected {expected}; the file is corrupt or not MNIST: delete it and re-run scripts/setup"
    )]
    Hash { path: PathBuf, expected: String, actual: String },
    #[error(
        "{path} is {is}'s file, not {expected}'s: the data folder is the other dataset's; point \
         `data.dir` at {expected}'s files (or leave it out for scripts/setup's folder)"
    )]
    OtherDataset { path: PathBuf, is: &'static str, expected: &'static str },
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch { images: PathBuf, n_images: usize, labels: PathBuf, n_labels: usize },
    #[error("forget set: {0}")]
    Split(String),
}
