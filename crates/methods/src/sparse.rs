//! Images as their nonzero deviations from a common background value: the form the native
//! engine computes the first layer from (see `engine/native.rs`).

use std::collections::HashMap;

/// Images as their nonzero deviations from a common background value (CSR layout).
#[derive(Debug)]
pub struct SparseRows {
    pub(crate) dim: usize,
    pub(crate) background: f32,
    offsets: Vec<usize>,
    /// `(delta, pixel)` of each stored entry, row after row, pixels ascending.
    terms: Vec<(f32, u32)>,
}

impl SparseRows {
    /// Converts `features` (rows of `dim` values) taking the most common value among the first
    /// 1,000 rows as the background.
    pub fn new(features: &[f32], dim: usize) -> Self {
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for v in features.iter().take(1000 * dim) {
            *counts.entry(v.to_bits()).or_default() += 1;
        }
        // Ties broken by the value's bits, so the choice does not depend on hashing.
        let background = counts
            .into_iter()
            .max_by_key(|&(bits, n)| (n, std::cmp::Reverse(bits)))
            .map_or(0.0, |(bits, _)| f32::from_bits(bits));
        Self::with_background(features, dim, background)
    }

    pub(crate) fn with_background(features: &[f32], dim: usize, background: f32) -> Self {
        let rows = features.len().checked_div(dim).unwrap_or(0);
        let mut offsets = Vec::with_capacity(rows + 1);
        let mut terms = Vec::new();
        offsets.push(0);
        for row in features.chunks_exact(dim.max(1)) {
            for (p, &v) in row.iter().enumerate() {
                if v != background {
                    terms.push((v - background, p as u32));
                }
            }
            offsets.push(terms.len());
        }
        Self { dim, background, offsets, terms }
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value that is not stored.
    pub fn background(&self) -> f32 {
        self.background
    }

    /// Stored entries per row, on average.
    pub fn mean_nonzero(&self) -> f64 {
        self.terms.len() as f64 / self.len().max(1) as f64
    }

    /// Row `i`'s `(delta, pixel)` entries, pixels ascending.
    pub(crate) fn row(&self, i: usize) -> &[(f32, u32)] {
        &self.terms[self.offsets[i]..self.offsets[i + 1]]
    }
}
