//! MNIST and Fashion-MNIST in memory: the four IDX files, verified against their published
//! SHA-256, decoded once and normalised exactly like torchvision's `ToTensor()` +
//! `Normalize((mean,), (std,))` (in `f32`: `(p / 255 - mean) / std`), with MNIST's
//! (0.1307, 0.3081) and Fashion-MNIST's training-set (0.2860, 0.3530).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{DataError, idx};

/// The SHA-256 of MNIST's four uncompressed files, as `sha256sum` prints them (shared with
/// `scripts/setup`).
pub const SHA256SUMS: &str = include_str!("../mnist.sha256");
/// The same for Fashion-MNIST.
pub const FASHION_SHA256SUMS: &str = include_str!("../fashion-mnist.sha256");

/// Which of the two 28x28, ten-class datasets (the same file names and format).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    #[default]
    Mnist,
    FashionMnist,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Mnist, Kind::FashionMnist];

    /// The name in experiment files and results: `mnist`, `fashion-mnist`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mnist => "mnist",
            Kind::FashionMnist => "fashion-mnist",
        }
    }

    /// Where `scripts/setup` puts the files.
    pub fn default_dir(self) -> &'static str {
        match self {
            Kind::Mnist => "data/MNIST/raw",
            Kind::FashionMnist => "data/FashionMNIST/raw",
        }
    }

    fn sha256sums(self) -> &'static str {
        match self {
            Kind::Mnist => SHA256SUMS,
            Kind::FashionMnist => FASHION_SHA256SUMS,
        }
    }

    /// The normalisation's mean and standard deviation of a pixel in `[0, 1]`.
    pub fn mean_std(self) -> (f32, f32) {
        match self {
            Kind::Mnist => (MEAN, STD),
            Kind::FashionMnist => (0.2860, 0.3530),
        }
    }
}

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

pub const CLASSES: u8 = 10;
/// The training and test images of either dataset (their files are verified against fixed
/// SHA-256, so the counts are known before they are read).
pub const TRAIN_SAMPLES: usize = 60_000;
pub const TEST_SAMPLES: usize = 10_000;
const MEAN: f32 = 0.1307;
const STD: f32 = 0.3081;

/// One split (train or test) held in memory: row `i` of `features` (length `dim`) has label
/// `labels[i]`.
#[derive(Debug, Clone)]
pub struct Samples {
    pub features: Vec<f32>,
    pub labels: Vec<u8>,
    pub dim: usize,
}

impl Samples {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Keeps the first `n` samples (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.features.truncate(n * self.dim);
    }

    /// Decodes `u8` images into `f32` rows normalised with MNIST's mean and deviation.
    pub fn from_idx(images: &idx::Images, labels: Vec<u8>) -> Self {
        Self::normalised(images, labels, MEAN, STD)
    }

    fn normalised(images: &idx::Images, labels: Vec<u8>, mean: f32, std: f32) -> Self {
        let features = images.pixels.iter().map(|&p| (p as f32 / 255.0 - mean) / std).collect();
        Self { features, labels, dim: images.rows * images.cols }
    }
}

/// Which dataset and which part of it to load. The default is all of MNIST; limits keep the
/// first samples, for quick tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub kind: Kind,
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
}

/// The loaded dataset.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    pub train: Samples,
    pub test: Samples,
    /// Identifies exactly which data this is (file hashes and limits), for cache keys.
    pub fingerprint: String,
}

/// The expected SHA-256 of MNIST's `file`, from [`SHA256SUMS`].
pub fn expected_sha256(file: &str) -> &'static str {
    expected_sha256_of(Kind::Mnist, file)
}

/// The expected SHA-256 of `kind`'s `file`.
pub fn expected_sha256_of(kind: Kind, file: &str) -> &'static str {
    kind.sha256sums()
        .lines()
        .find_map(|line| {
            let (hash, name) = line.split_once("  ")?;
            (name.trim() == file).then_some(hash)
        })
        .unwrap_or_else(|| panic!("{file} is not listed for {}", kind.name()))
}

/// Loads and verifies the four files in `dir` (each either plain or with a `.gz` suffix).
pub fn load(dir: &Path, options: &LoadOptions) -> Result<ImageDataset, DataError> {
    let read = |name: &str| -> Result<(PathBuf, Vec<u8>), DataError> {
        let path = locate(dir, name)?;
        let bytes = idx::read_bytes(&path)?;
        verify(&path, &bytes, expected_sha256_of(options.kind, name)).map_err(|e| {
            // A valid file of the other dataset is not corrupt: the folder is the wrong one.
            let other = Kind::ALL
                .into_iter()
                .find(|&k| k != options.kind && sha256_hex(&bytes) == expected_sha256_of(k, name));
            match other {
                Some(other) => DataError::OtherDataset {
                    path: path.clone(),
                    is: other.name(),
                    expected: options.kind.name(),
                },
                None => e,
            }
        })?;
        Ok((path, bytes))
    };
    let split = |images_name: &str, labels_name: &str| -> Result<Samples, DataError> {
        let (images_path, images_bytes) = read(images_name)?;
        let (labels_path, labels_bytes) = read(labels_name)?;
        let format = |path: &Path| {
            let path = path.to_owned();
            move |problem| DataError::Format { path, problem }
        };
        let images = idx::parse_images(&images_bytes).map_err(format(&images_path))?;
        let labels = idx::parse_labels(&labels_bytes, CLASSES).map_err(format(&labels_path))?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images: images_path,
                n_images: images.count,
                labels: labels_path,
                n_labels: labels.len(),
            });
        }
        let (mean, std) = options.kind.mean_std();
        Ok(Samples::normalised(&images, labels, mean, std))
    };
    let mut train = split(TRAIN_IMAGES, TRAIN_LABELS)?;
    let mut test = split(TEST_IMAGES, TEST_LABELS)?;
    if let Some(n) = options.train_limit {
        train.truncate(n);
    }
    if let Some(n) = options.test_limit {
        test.truncate(n);
    }
    let fingerprint = fingerprint(options);
    Ok(ImageDataset { train, test, fingerprint })
}

/// What identifies the loaded data: the dataset, the verified hashes of its four files and
/// the limits.
pub fn fingerprint(options: &LoadOptions) -> String {
    let limit = |l: Option<usize>| l.map_or("all".to_owned(), |n| n.to_string());
    let hashes: Vec<_> = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
        .iter()
        .map(|f| expected_sha256_of(options.kind, f))
        .collect();
    format!(
        "{} {} train_limit={} test_limit={}",
        options.kind.name(),
        hashes.join(" "),
        limit(options.train_limit),
        limit(options.test_limit)
    )
}

fn locate(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let plain = dir.join(name);
    if plain.exists() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.exists() {
        return Ok(gz);
    }
    Err(DataError::Missing { path: plain })
}

/// Checks the SHA-256 of a file's (uncompressed) bytes.
pub fn verify(path: &Path, bytes: &[u8], expected: &str) -> Result<(), DataError> {
    let actual = sha256_hex(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(DataError::Hash { path: path.to_owned(), expected: expected.to_owned(), actual })
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_torchvision() {
        let images = idx::Images { count: 1, rows: 1, cols: 3, pixels: vec![0, 255, 128] };
        let d = Samples::from_idx(&images, vec![7]);
        // Values from PyTorch 2.13: (uint8.float().div(255) - 0.1307) / 0.3081 in float32,
        // which is what ToTensor() then Normalize((0.1307,), (0.3081,)) compute.
        assert_eq!(d.features, vec![-0.424_212_96_f32, 2.821_486_7, 1.205_001_1]);
        assert_eq!((d.dim, d.len()), (3, 1));
    }

    #[test]
    fn hash_mismatch_names_the_file() {
        let err = verify(Path::new("x/train"), b"abc", expected_sha256(TRAIN_LABELS)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("x/train: SHA-256 is ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad, expected 65a5"), "{msg}");
    }

    #[test]
    fn missing_directory_says_to_run_setup() {
        let msg = load(Path::new("/nonexistent"), &LoadOptions::default()).unwrap_err().to_string();
        assert!(msg.contains("train-images-idx3-ubyte: missing; run scripts/setup"), "{msg}");
    }

    #[test]
    fn fingerprint_covers_hashes_and_limits() {
        let all = fingerprint(&LoadOptions::default());
        assert!(
            all.contains("ba891046e6505d7a") && all.ends_with("train_limit=all test_limit=all")
        );
        let some = fingerprint(&LoadOptions { train_limit: Some(1000), ..Default::default() });
        assert_ne!(all, some);
        let fashion = fingerprint(&LoadOptions { kind: Kind::FashionMnist, ..Default::default() });
        assert!(fashion.starts_with("fashion-mnist c59f468a2f672dc8"), "{fashion}");
    }
}
