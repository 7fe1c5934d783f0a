//! The layers' kernel ([`combine`]: a weighted sum of matrix rows, in register tiles), its
//! terms (an image's nonzero pixels, the nonzero units ReLU leaves: [`nonzeros`]), and a batch
//! regrouped by pixel for the first layer's weight gradient ([`Batch`]).

#[cfg(test)]
use crate::sparse::SparseRows;

/// A batch of images grouped by pixel, for the first layer's weight gradient (one [`combine`]
/// per pixel over it): for each pixel, the batch rows where it differs from the background
/// and by how much, in row order, as `(delta, row)` terms.
///
/// Filled as the forward pass visits each row's pixels ([`Batch::add`], rows in order, so each
/// pixel's terms stay in row order). A pixel occurs at most once per image, so each pixel gets
/// a bucket of `capacity` (the batch's size) slots: pixel `p`'s terms are
/// `terms[p * capacity..][..counts[p]]`, one 8-byte store each.
#[derive(Debug, Default)]
pub(super) struct Batch {
    counts: Vec<u32>,
    terms: Vec<(f32, u32)>,
    capacity: usize,
}

impl Batch {
    /// Empties it for `rows` rows of `pixels`-pixel images, reusing the buffers.
    pub(super) fn start(&mut self, pixels: usize, rows: usize) {
        self.capacity = rows;
        self.counts.clear();
        self.counts.resize(pixels, 0);
        // Stale slots beyond a pixel's count are never read.
        self.terms.resize(pixels * rows, (0.0, 0));
    }

    /// Row `row` differs from the background by `delta` at pixel `p`.
    #[inline(always)]
    pub(super) fn add(&mut self, delta: f32, p: u32, row: usize) {
        let count = &mut self.counts[p as usize];
        self.terms[p as usize * self.capacity + *count as usize] = (delta, row as u32);
        *count += 1;
    }

    /// Pixel `p`'s `(delta, row)` terms, in row order.
    pub(super) fn pixel(&self, p: usize) -> &[(f32, u32)] {
        let start = p * self.capacity;
        &self.terms[start..start + self.counts[p] as usize]
    }

    /// Groups images `ids` of `x` (what the forward pass does on its way).
    #[cfg(test)]
    pub(super) fn fill(&mut self, x: &SparseRows, ids: &[usize]) {
        self.start(x.dim, ids.len());
        for (row, &i) in ids.iter().enumerate() {
            for &(d, p) in x.row(i) {
                self.add(d, p, row);
            }
        }
    }
}

/// Output columns per register tile of [`combine`] on wide rows: a first-layer row of 128 in
/// one pass over the terms with AVX2 or AVX-512 (eight 512-bit registers, or sixteen 256-bit
/// ones with a few spilled: still 3% faster per training epoch and 9% per evaluation than two
/// passes of 64 on Zen 4, docs/performance.md), 64 with SSE's sixteen 128-bit registers.
#[cfg(target_feature = "avx2")]
const WIDE: usize = 128;
#[cfg(not(target_feature = "avx2"))]
const WIDE: usize = 64;

/// `out[j] = sum_t c_t * matrix[r_t][j]` over the terms `(c_t, r_t)`, for a row-major
/// `matrix` of `out.len()` columns, summing in term order (so every vector width gives the
/// same bits). The columns go in tiles held in registers across all terms, so `out` is
/// written once rather than once per term.
pub(super) fn combine(terms: &[(f32, u32)], matrix: &[f32], out: &mut [f32]) {
    combine_visiting(terms, matrix, out, |_, _| {});
}

/// [`combine`], calling `visit(c, r)` once per term, in order.
#[inline(always)]
pub(super) fn combine_visiting(
    terms: &[(f32, u32)],
    matrix: &[f32],
    out: &mut [f32],
    mut visit: impl FnMut(f32, u32),
) {
    let width = out.len();
    let mut done = tiles::<WIDE>(terms, matrix, out, 0, &mut visit);
    done = tiles::<64>(terms, matrix, out, done, &mut visit);
    done = tiles::<16>(terms, matrix, out, done, &mut visit);
    // The last columns (a width that is not a multiple of 16, such as the 10 logits) in
    // register tiles of 8, 4, 2 and 1.
    done = tiles::<8>(terms, matrix, out, done, &mut visit);
    done = tiles::<4>(terms, matrix, out, done, &mut visit);
    done = tiles::<2>(terms, matrix, out, done, &mut visit);
    done = tiles::<1>(terms, matrix, out, done, &mut visit);
    debug_assert_eq!(done, width);
}

/// The tiles of `T` columns from column `from` on (while a whole tile fits); returns where
/// they end. `visit` sees the terms during the first tile of the row.
#[inline(always)]
fn tiles<const T: usize>(
    terms: &[(f32, u32)],
    matrix: &[f32],
    out: &mut [f32],
    from: usize,
    visit: &mut impl FnMut(f32, u32),
) -> usize {
    let width = out.len();
    let mut start = from;
    while start + T <= width {
        let mut acc = [0.0f32; T];
        for &(c, r) in terms {
            if start == 0 {
                visit(c, r);
            }
            let base = r as usize * width + start;
            let w: &[f32; T] = matrix[base..base + T].try_into().expect("a full tile");
            for (a, w) in acc.iter_mut().zip(w) {
                *a += c * w;
            }
        }
        out[start..start + T].copy_from_slice(&acc);
        start += T;
    }
    start
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
