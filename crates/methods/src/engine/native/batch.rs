//! The layers' kernel ([`combine`]: a weighted sum of matrix rows, in register tiles), its
//! terms (an image's nonzero pixels, the nonzero units ReLU leaves: [`nonzeros`]), and a batch
//! regrouped by pixel for the first layer's weight gradient ([`Batch`]).

use crate::sparse::SparseRows;

/// A batch of images grouped by pixel, for the first layer's weight gradient (one [`combine`]
/// per pixel over it): for each pixel, the batch rows where it differs from the background
/// and by how much, in row order, as `(delta, row)` terms.
///
/// Filled rows in order ([`Batch::fill_rows`], a few rows at a time between the forward
/// pass's sums), so each pixel's terms are in row order. A pixel occurs at most once per
/// image, so each pixel gets a bucket of `capacity` (the batch's size) slots: pixel `p`'s
/// terms are `terms[p * capacity..][..counts[p]]`, one 8-byte store each.
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

    /// Groups images `ids` of `x`, each pixel's terms in row order.
    #[cfg(test)]
    pub(super) fn fill(&mut self, x: &SparseRows, ids: &[usize]) {
        self.start(x.dim, ids.len());
        self.fill_rows(x, ids, 0..ids.len());
    }

    /// Adds rows `rows` of the batch (images `ids[rows]` of `x`), after the rows before them.
    pub(super) fn fill_rows(
        &mut self,
        x: &SparseRows,
        ids: &[usize],
        rows: std::ops::Range<usize>,
    ) {
        for row in rows {
            for &(d, p) in x.row(ids[row]) {
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
    combine_from(terms, matrix, out, 0);
}

/// [`combine`] for the columns from `from` on.
fn combine_from(terms: &[(f32, u32)], matrix: &[f32], out: &mut [f32], from: usize) {
    let width = out.len();
    let mut done = tiles::<WIDE>(terms, matrix, out, from);
    done = tiles::<64>(terms, matrix, out, done);
    done = tiles::<16>(terms, matrix, out, done);
    // The last columns (a width that is not a multiple of 16, such as the 10 logits) in
    // register tiles of 8, 4, 2 and 1.
    done = tiles::<8>(terms, matrix, out, done);
    done = tiles::<4>(terms, matrix, out, done);
    done = tiles::<2>(terms, matrix, out, done);
    done = tiles::<1>(terms, matrix, out, done);
    debug_assert_eq!(done, width);
}

/// Columns per tile and rows per group of [`combine_rows`], per build, each the fastest of
/// those measured in `harness bench` on Zen 4 (docs/performance.md): with AVX-512, 4 rows
/// of 64 columns (sixteen 512-bit accumulators); with AVX2, 2 rows of 32 (eight 256-bit
/// ones: 4 rows or 64 columns spill and lose); with SSE one row of 64 (one row at a time).
#[cfg(target_feature = "avx512f")]
const GROUP_TILE: (usize, usize) = (64, 4);
#[cfg(all(target_feature = "avx2", not(target_feature = "avx512f")))]
const GROUP_TILE: (usize, usize) = (32, 2);
#[cfg(not(target_feature = "avx2"))]
const GROUP_TILE: (usize, usize) = (64, 1);
const SLAB: usize = GROUP_TILE.0;
pub(super) const GROUP: usize = GROUP_TILE.1;

/// [`combine`] for many rows at once: `out`'s row `i` (of `width` columns) gets the sum of
/// `terms(i)`, each row's terms in their order, so every row gets the same bits as from
/// [`combine`].
///
/// The rows go in groups of [`GROUP`] of similar length, whose terms are walked in lock
/// step for a tile of [`SLAB`] columns at a time: the group's weight rows are fetched side
/// by side and its sums are independent chains, which keeps a core busier than one row at a
/// time while the weights come from the L2 (the first layer's 401 KB do not fit the L1).
/// `beside(g)` is called before group `g` and once after the last, `rows / GROUP` times in
/// all plus one: the forward pass groups the batch by pixel there, so that the scattered
/// stores of that work drain while the sums wait on loads. `order` is scratch.
pub(super) fn combine_rows<'a>(
    rows: usize,
    terms: impl Fn(usize) -> &'a [(f32, u32)],
    matrix: &[f32],
    width: usize,
    out: &mut [f32],
    order: &mut Vec<usize>,
    mut beside: impl FnMut(usize),
) {
    debug_assert_eq!(out.len(), rows * width);
    order.clear();
    order.extend(0..rows);
    if GROUP > 1 {
        // Rows of similar length together, so that few terms are left after the lock step.
        order.sort_by_key(|&i| terms(i).len());
    }
    let mut groups = order.chunks_exact(GROUP);
    for (g, group) in (&mut groups).enumerate() {
        beside(g);
        let terms: [&[(f32, u32)]; GROUP] = std::array::from_fn(|k| terms(group[k]));
        let common = terms.iter().map(|t| t.len()).min().unwrap_or(0);
        let heads: [&[(f32, u32)]; GROUP] = std::array::from_fn(|k| &terms[k][..common]);
        let mut start = 0;
        while start + SLAB <= width {
            let mut sums = [[0.0f32; SLAB]; GROUP];
            for t in 0..common {
                for (sum, head) in sums.iter_mut().zip(&heads) {
                    add_term::<SLAB>(sum, head[t], matrix, width, start);
                }
            }
            for ((sum, terms), &i) in sums.iter_mut().zip(&terms).zip(group) {
                for &term in &terms[common..] {
                    add_term::<SLAB>(sum, term, matrix, width, start);
                }
                out[i * width + start..][..SLAB].copy_from_slice(sum);
            }
            start += SLAB;
        }
        if start < width {
            for (&i, terms) in group.iter().zip(&terms) {
                combine_from(terms, matrix, &mut out[i * width..(i + 1) * width], start);
            }
        }
    }
    beside(rows / GROUP);
    for &i in groups.remainder() {
        combine(terms(i), matrix, &mut out[i * width..(i + 1) * width]);
    }
}

/// `sum[j] += c * matrix[r][start + j]` for the term `(c, r)`: one multiply, then one add.
#[inline(always)]
fn add_term<const T: usize>(
    sum: &mut [f32; T],
    (c, r): (f32, u32),
    matrix: &[f32],
    width: usize,
    start: usize,
) {
    let base = r as usize * width + start;
    let w: &[f32; T] = matrix[base..base + T].try_into().expect("a full tile");
    for (a, w) in sum.iter_mut().zip(w) {
        *a += c * w;
    }
}

/// The tiles of `T` columns from column `from` on (while a whole tile fits); returns where
/// they end.
#[inline(always)]
fn tiles<const T: usize>(
    terms: &[(f32, u32)],
    matrix: &[f32],
    out: &mut [f32],
    from: usize,
) -> usize {
    let width = out.len();
    let mut start = from;
    while start + T <= width {
        let mut acc = [0.0f32; T];
        for &(c, r) in terms {
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
