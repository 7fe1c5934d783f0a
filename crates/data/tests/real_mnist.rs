//! The real MNIST and Fashion-MNIST files, as `scripts/setup` leaves them in `data/`. Each
//! test skips, saying so, where setup has not fetched them; files that are there must verify.

use std::path::{Path, PathBuf};

use data::dataset::{Kind, LoadOptions, load};
use data::rng::stream;
use data::split::{ForgetSpec, forget_split};

/// The folder of `kind`'s files, or `None` (with a note) when `scripts/setup` has not run.
fn fetched(kind: Kind) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(kind.default_dir());
    if dir.join("train-images-idx3-ubyte").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is not in {}; run scripts/setup", kind.name(), dir.display());
        None
    }
}

fn mnist() -> Option<data::ImageDataset> {
    let dir = fetched(Kind::Mnist)?;
    Some(load(&dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn loads_verified_mnist_with_the_published_label_counts() {
    let Some(m) = mnist() else { return };
    assert_eq!((m.train.len(), m.test.len(), m.train.dim), (60_000, 10_000, 784));
    let mut counts = [0usize; 10];
    for &l in &m.train.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    // Normalised pixels: background is (0 - 0.1307) / 0.3081.
    let min = m.train.features.iter().copied().fold(f32::INFINITY, f32::min);
    let max = m.train.features.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!((min, max), (-0.424_212_96, 2.821_486_7));
}

#[test]
fn the_default_split_forgets_4598_threes() {
    let Some(m) = mnist() else { return };
    let spec = ForgetSpec::class(3, 0.75);
    let split = |seed| forget_split(&m.train.labels, &spec, &mut stream(seed, "split")).unwrap();
    let s = split(0);
    assert_eq!((s.forget.len(), s.remain.len()), (4598, 55_402));
    assert!(s.forget.iter().all(|&i| m.train.labels[i] == 3));
    assert_eq!(s.remain.iter().filter(|&&i| m.train.labels[i] == 3).count(), 6131 - 4598);
    assert_eq!(split(0), s);
    assert_ne!(split(1).forget, s.forget);
}

#[test]
fn loads_verified_fashion_mnist_normalised_by_its_own_statistics() {
    let Some(dir) = fetched(Kind::FashionMnist) else { return };
    let options = LoadOptions { kind: Kind::FashionMnist, ..Default::default() };
    let m = load(&dir, &options).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((m.train.len(), m.test.len(), m.train.dim), (60_000, 10_000, 784));
    let mut counts = [0usize; 10];
    for &l in &m.train.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(counts, [6000; 10], "Fashion-MNIST is balanced");
    // Normalised with its training set's mean and std: about 0 and 1 there.
    let n = m.train.features.len() as f64;
    let mean = m.train.features.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = m.train.features.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    assert!(mean.abs() < 1e-3 && (var.sqrt() - 1.0).abs() < 1e-3, "{mean} {}", var.sqrt());
    // The MNIST loader refuses these files, and says whose they are.
    let err = load(&dir, &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("is fashion-mnist's file, not mnist's"), "{err}");
    assert!(m.fingerprint.starts_with("fashion-mnist "));
}
