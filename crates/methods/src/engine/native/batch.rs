//! The layers' kernel ([`combine`]: a weighted sum of matrix rows, in register tiles), its
//! terms (an image's nonzero pixels, the nonzero units ReLU leaves: [`nonzeros`]), and a batch
//! regrouped by pixel for the first layer's weight gradient ([`Batch`]).

use crate::sparse::SparseRows;

/// `y += a * x`, element-wise (vectorises; no sum is reordered).
#[inline(always)]
pub(super) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// A batch of images grouped by pixel, for the first layer's weight gradient (one [`combine`]
/// per pixel over it): for each pixel, the batch rows where it differs from the background
/// and by how much, in row order.
///
/// A pixel occurs at most once per image, so each pixel gets a bucket of `capacity` (the
/// batch's size) slots, filled in one pass over the images: pixel `p`'s terms are
/// `terms[p * capacity..][..counts[p]]`, each `(delta, row)` in one 8-byte slot (one store
/// per term). Rows are visited in order, so each pixel's terms stay in row order.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) counts: Vec<u32>,
    pub(super) terms: Vec<(f32, u32)>,
    pub(super) capacity: usize,
    pub(super) len: usize,
}

impl Batch {
    /// Regroups images `ids` of `x`, reusing the buffers.
    pub(super) fn fill(&mut self, x: &SparseRows, ids: &[usize]) {
        self.len = ids.len();
        self.capacity = ids.len();
        self.counts.clear();
        self.counts.resize(x.dim, 0);
        // Stale slots beyond a pixel's count are never read.
        self.terms.resize(x.dim * self.capacity, (0.0, 0));
        for (row, &i) in ids.iter().enumerate() {
            for &(d, p) in x.row(i) {
                let count = &mut self.counts[p as usize];
                self.terms[p as usize * self.capacity + *count as usize] = (d, row as u32);
                *count += 1;
            }
        }
    }

    /// Pixel `p`'s `(delta, row)` terms, in row order.
    pub(super) fn pixel(&self, p: usize) -> &[(f32, u32)] {
        let start = p * self.capacity;
        &self.terms[start..start + self.counts[p] as usize]
    }
}

/// Output columns per register tile of [`combine`].
pub(super) const TILE: usize = 64;

/// `out[j] = sum_t c_t * matrix[r_t][j]` over the terms `(c_t, r_t)`, for a row-major
/// `matrix` of `out.len()` columns, summing in term order. The columns go in tiles of [`TILE`]
/// held in registers across all terms, so `out` is written once rather than once per term.
pub(super) fn combine(terms: &[(f32, u32)], matrix: &[f32], out: &mut [f32]) {
    let width = out.len();
    let tiles = width / TILE;
    for t in 0..tiles {
        let mut acc = [0.0f32; TILE];
        for &(c, r) in terms {
            let start = r as usize * width + t * TILE;
            let w: &[f32; TILE] = matrix[start..start + TILE].try_into().expect("a full tile");
            for (a, w) in acc.iter_mut().zip(w) {
                *a += c * w;
            }
        }
        out[t * TILE..(t + 1) * TILE].copy_from_slice(&acc);
    }
    let rest = &mut out[tiles * TILE..];
    if !rest.is_empty() {
        rest.fill(0.0);
        for &(c, r) in terms {
            let start = r as usize * width + tiles * TILE;
            axpy(c, &matrix[start..start + rest.len()], rest);
        }
    }
}

/// The nonzero entries of `values` as `(value, position)` terms, into a reused buffer.
pub(super) fn nonzeros(values: &[f32], terms: &mut Vec<(f32, u32)>) {
    nonzeros_of(values.iter().copied(), values.len(), terms);
}

/// The nonzero entries of the `len` values of `values` as `(value, position)` terms.
/// Branch-free: every value is written and the cursor advances past the nonzero ones only
/// (ReLU zeroes about half of a layer's outputs at random, which a branch would mispredict).
pub(super) fn nonzeros_of(
    values: impl Iterator<Item = f32>,
    len: usize,
    terms: &mut Vec<(f32, u32)>,
) {
    terms.resize(len, (0.0, 0));
    let mut n = 0;
    for (k, v) in values.enumerate().take(len) {
        terms[n] = (v, k as u32);
        n += usize::from(v != 0.0);
    }
    terms.truncate(n);
}
