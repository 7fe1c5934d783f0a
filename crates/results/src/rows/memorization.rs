//! `memorization.csv` ([`MemorizationRow`]) and `memorization_gallery.csv` ([`GalleryRow`]):
//! a memorization population's estimates (`data::memorization`), summarised.

use serde::{Deserialize, Serialize};

/// One row of `memorization.csv`: the estimates of one class's training examples (`class`
/// 0-9), or of all of them (`all`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemorizationRow {
    pub class: String,
    pub examples: usize,
    /// The population's size, and the SHA-256 of its models' keys (the forget set's key).
    pub models: usize,
    pub population: String,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    /// Examples with memorization of at least 0.5 (classified right mostly when trained on).
    pub above_half: usize,
    /// Of them, in the forget set this experiment chose.
    pub chosen: usize,
}

/// One row of `memorization_gallery.csv`: one of the most (`most`) or least (`least`)
/// memorized training examples, `rank` 1 the most extreme; row `k` of the pixels in
/// `memorization/gallery.npy` is this file's row `k`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GalleryRow {
    pub side: String,
    pub rank: usize,
    pub index: usize,
    pub label: u8,
    pub memorization: f64,
    pub confidence_gap: f64,
    pub models_in: u32,
    pub models_out: u32,
}
