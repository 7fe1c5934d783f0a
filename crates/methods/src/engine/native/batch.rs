//! A batch of sparse images grouped by pixel ([`Batch`]) and the kernels of the first layer
//! and the hidden layers: [`scatter`], [`combine`], the nonzero lists ReLU leaves.

use crate::sparse::SparseRows;

/// `y += a * x`, element-wise (vectorises; no sum is reordered).
#[inline(always)]
pub(super) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// A batch of images grouped by pixel: for each pixel, the batch rows where it differs from
/// the background and by how much, in row order. The first layer's forward pass is one
/// [`scatter`] per pixel over it, its weight gradient one [`combine`] per pixel.
///
/// A pixel occurs at most once per image, so each pixel gets a bucket of `capacity` (the
/// batch's size) slots, filled in one pass over the images: pixel `p`'s terms are
/// `deltas[p * capacity..][..counts[p]]` (and the same range of `rows`). Rows are visited in
/// order, so each pixel's terms stay in row order.
#[derive(Debug, Default)]
pub(super) struct Batch {
    pub(super) counts: Vec<u32>,
    pub(super) deltas: Vec<f32>,
    pub(super) rows: Vec<u32>,
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
        self.deltas.resize(x.dim * self.capacity, 0.0);
        self.rows.resize(x.dim * self.capacity, 0);
        for (row, &i) in ids.iter().enumerate() {
            let (pixels, deltas) = x.row(i);
            for (&p, &d) in pixels.iter().zip(deltas) {
                let count = &mut self.counts[p as usize];
                let at = p as usize * self.capacity + *count as usize;
                self.deltas[at] = d;
                self.rows[at] = row as u32;
                *count += 1;
            }
        }
    }

    /// Pixel `p`'s `(deltas, rows)`, in row order.
    pub(super) fn pixel(&self, p: usize) -> (&[f32], &[u32]) {
        let start = p * self.capacity;
        let r = start..start + self.counts[p] as usize;
        (&self.deltas[r.clone()], &self.rows[r])
    }
}

/// `out[rows[t]][j] += coefs[t] * w[j]` for every term `t`, where `out` has rows of
/// `w.len()` columns: one weight row applied to every batch row that has its pixel.
pub(super) fn scatter(coefs: &[f32], rows: &[u32], w: &[f32], out: &mut [f32]) {
    let width = w.len();
    for (&c, &r) in coefs.iter().zip(rows) {
        let start = r as usize * width;
        for (o, w) in out[start..start + width].iter_mut().zip(w) {
            *o += c * w;
        }
    }
}

/// The first layer's input: a batch grouped by pixel, or rows of the sparse images.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Grouped(&'a Batch),
    Rows(&'a SparseRows, &'a [usize]),
}

/// Output columns per register tile of [`combine`].
pub(super) const TILE: usize = 64;

/// `out[j] = sum_t coefs[t] * matrix[rows[t]][j]` for a row-major `matrix` of `out.len()`
/// columns, summing in `t` order. The columns go in tiles of [`TILE`] held in registers across
/// all terms, so `out` is written once rather than once per term.
pub(super) fn combine(coefs: &[f32], rows: &[u32], matrix: &[f32], out: &mut [f32]) {
    let width = out.len();
    let tiles = width / TILE;
    for t in 0..tiles {
        let mut acc = [0.0f32; TILE];
        for (&c, &r) in coefs.iter().zip(rows) {
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
        for (&c, &r) in coefs.iter().zip(rows) {
            let start = r as usize * width + tiles * TILE;
            axpy(c, &matrix[start..start + rest.len()], rest);
        }
    }
}

/// The nonzero entries of `values` as `(coefs, positions)`, into reused buffers.
pub(super) fn nonzeros(values: &[f32], coefs: &mut Vec<f32>, positions: &mut Vec<u32>) {
    nonzeros_of(values.iter().copied(), values.len(), coefs, positions);
}

/// The nonzero entries of the `len` values of `values` as `(coefs, positions)`. Branch-free:
/// every value is written and the cursor advances past the nonzero ones only (ReLU zeroes
/// about half of a layer's outputs at random, which a branch would mispredict).
pub(super) fn nonzeros_of(
    values: impl Iterator<Item = f32>,
    len: usize,
    coefs: &mut Vec<f32>,
    positions: &mut Vec<u32>,
) {
    coefs.resize(len, 0.0);
    positions.resize(len, 0);
    let mut n = 0;
    for (k, v) in values.enumerate().take(len) {
        coefs[n] = v;
        positions[n] = k as u32;
        n += usize::from(v != 0.0);
    }
    coefs.truncate(n);
    positions.truncate(n);
}
