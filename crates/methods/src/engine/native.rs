//! The native engine: the MLP's forward pass, backward pass, loss heads and Adam written in plain
//! Rust over `f32` slices, for the CPU. The same maths as the autograd engine; what makes it
//! fast is that it never calls libtorch per step and that it exploits the shape of the input.
//!
//! ## The input is a constant background plus a few pixels
//!
//! A normalised MNIST image is `background` (a black pixel, `(0 - 0.1307) / 0.3081`) in about
//! 80% of its 784 pixels. Writing each image as `x = background + delta`, with `delta` zero on
//! the background, the first layer (which holds 90% of the model's FLOPs) becomes
//!
//! ```text
//! W x + b  =  sum_{p: delta_p != 0} delta_p W[:, p]  +  background * sum_p W[:, p]  +  b
//! dL/dW[:, p]  =  sum_i g_i delta_ip  +  background * sum_i g_i
//! ```
//!
//! so a batch costs the nonzero `delta`s (150 of 784 pixels on average in MNIST's training
//! set), about a fifth of the dense products. [`SparseRows`] holds each image's nonzero
//! `(pixel, delta)` pairs; the background is the input's most common value (any value gives the
//! right result: only the speed depends on it). A batch is regrouped by pixel (`Batch`), so
//! that each weight row is read once per batch, in both passes. Hidden layers skip the zeros
//! that ReLU leaves, which is exact.
//!
//! ## What differs from the autograd engine
//!
//! Only the order (and, in the loss heads, the precision) of float sums, so results agree to
//! float rounding, not bit for bit (tested against autograd's gradients and trajectories):
//! - sums over the batch run in row order, the first layer's sums in the order above (a row's
//!   logits are the same bits whatever batch it is in: tested);
//! - the loss heads (cross-entropy, the MI estimate) take `f32` probabilities like PyTorch and
//!   accumulate in `f64`;
//! - MI-unlearn runs the trunk once over `[remain; forget]`: the MI batch's second copy of the
//!   remain batch has the same logits, so its gradient is added to the first copy's;
//! - Adam follows PyTorch's Python `torch.optim.Adam` (`exp_avg.lerp_`, `addcdiv_` with
//!   `value = -step_size`), as the notebook ran it.
//! - no training step ever computes a subnormal number (below `f32::MIN_POSITIVE`, 1.2e-38):
//!   the few places where they would arise flush small values to zero explicitly (see
//!   [Subnormals](#subnormals) below), with thresholds chosen so that the flushed values
//!   could not have moved a weight by a bit.
//!
//! Every loop runs in a fixed order on one thread, so a run's numbers do not depend on the
//! machine's thread count. The loops vectorise across output columns only, never reordering a
//! sum, and Rust never fuses `a * b + c` into an FMA: a build for AVX2 (`scripts/setup` asks
//! for one where the CPU has it) gives the same bits as the portable build, only faster
//! (checked on a 10-run slice: identical `runs.csv` and `history.csv`).
//!
//! ## Subnormals
//!
//! Intel CPUs take a microcode assist, about a hundred cycles, for each vector instruction
//! that reads or writes a subnormal number (AMD's Zen cores do not): late in a long run they
//! made a training epoch on a Xeon take 1.2 s instead of 0.5 s. They arise in two places, and
//! both are cut off in the arithmetic itself, never by changing the CPU's floating-point mode
//! (Rust assumes the default mode; changing it is undefined behaviour), so every platform
//! computes the same bits:
//!
//! - **Adam's moments of a unit that ReLU never lets through**: its gradient stops, so
//!   `exp_avg` shrinks by 0.9 and `exp_avg_sq` by 0.999 per step until they are subnormal.
//!   [`AdamStep::apply`] stores a first moment below [`MOMENT_FLOOR`] (2^-100) and a second
//!   below [`SQUARE_FLOOR`] (2^-120) as zero, and a gradient below 2^-56 enters the second
//!   moment as zero (`0.001 g^2` would be subnormal).
//! - **Softmax probabilities of confidently wrong classes**: once a logit trails the row's
//!   largest by more than 87, its `exp` is subnormal, and so are the loss gradients built from
//!   it. The loss heads take an `exp` below `exp(-83)` as zero ([`exp_normal`]: it adds nothing
//!   to a softmax sum, which holds 1), and a logit's gradient entry below
//!   [`LOGIT_GRAD_FLOOR`] (2^-80) as zero ([`cross_entropy`] floors the probability first, so
//!   that no quotient is subnormal; [`mutual_information`] floors its `f64` value before
//!   rounding it to `f32`).
//!
//! Why these change no weight's bits (in practice; the argument is about sizes): a weight
//! moves by Adam's step, `lr * m / (sqrt(s) + eps)` with `eps = 1e-8`. A gradient, moment or
//! logit gradient floored at 2^-80 or below could change a step by at most `lr * 2^-80 /
//! eps`, about 1e-19, below half an ulp of any weight larger than 1e-12; and `sqrt(2^-120) /
//! sqrt(1 - beta2^t)` is at most 2^-55, below half an ulp of `eps` (1e-8 has ulps of 2^-50), so
//! the denominator keeps its bits. A larger floor is not safe: 2^-60 on the MI head's
//! probabilities changed one MI-unlearn run of the benchmark (its gradient multiplies them by
//! terms of order `gamma / n`, and weights near zero have ulps below 1e-12). The floors also
//! keep what is built from these values normal: none of `0.1 * m`, `0.999 * s`, `0.001 * g *
//! g`, `p / n` is subnormal, and gradients of 2^-80 times activations and weights stay far above
//! 1.2e-38 unless those are themselves below about 1e-14 (which happens too rarely to cost
//! time).
//!
//! Checked: every experiment run from an empty cache gives the committed results of the
//! flush-to-zero CPU mode this replaces, bit for bit (docs/performance.md).

use model::Classifier;

use super::step::{Labels, Objective, Optimizer, SALIENCY_BATCH, Step, Teacher, Term, Totals};
use crate::eval::Outputs;
use crate::mi::EPS;
use crate::sparse::SparseRows;
use crate::tensors::Data;

/// `y += a * x`, element-wise (vectorises; no sum is reordered).
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
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
struct Batch {
    counts: Vec<u32>,
    deltas: Vec<f32>,
    rows: Vec<u32>,
    capacity: usize,
    len: usize,
}

impl Batch {
    /// Regroups images `ids` of `x`, reusing the buffers.
    fn fill(&mut self, x: &SparseRows, ids: &[usize]) {
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
    fn pixel(&self, p: usize) -> (&[f32], &[u32]) {
        let start = p * self.capacity;
        let r = start..start + self.counts[p] as usize;
        (&self.deltas[r.clone()], &self.rows[r])
    }
}

/// `out[rows[t]][j] += coefs[t] * w[j]` for every term `t`, where `out` has rows of
/// `w.len()` columns: one weight row applied to every batch row that has its pixel.
fn scatter(coefs: &[f32], rows: &[u32], w: &[f32], out: &mut [f32]) {
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
enum Input<'a> {
    Grouped(&'a Batch),
    Rows(&'a SparseRows, &'a [usize]),
}

/// Output columns per register tile of [`combine`].
const TILE: usize = 64;

/// `out[j] = sum_t coefs[t] * matrix[rows[t]][j]` for a row-major `matrix` of `out.len()`
/// columns, summing in `t` order. The columns go in tiles of [`TILE`] held in registers across
/// all terms, so `out` is written once rather than once per term.
fn combine(coefs: &[f32], rows: &[u32], matrix: &[f32], out: &mut [f32]) {
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
fn nonzeros(values: &[f32], coefs: &mut Vec<f32>, positions: &mut Vec<u32>) {
    nonzeros_of(values.iter().copied(), values.len(), coefs, positions);
}

/// The nonzero entries of the `len` values of `values` as `(coefs, positions)`. Branch-free:
/// every value is written and the cursor advances past the nonzero ones only (ReLU zeroes
/// about half of a layer's outputs at random, which a branch would mispredict).
fn nonzeros_of(
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

/// A parameter tensor with its gradient and Adam's two moments, all flat.
#[derive(Debug, Clone)]
struct Param {
    value: Vec<f32>,
    grad: Vec<f32>,
    exp_avg: Vec<f32>,
    exp_avg_sq: Vec<f32>,
}

impl Param {
    fn new(value: Vec<f32>) -> Self {
        let n = value.len();
        Self { value, grad: vec![0.0; n], exp_avg: vec![0.0; n], exp_avg_sq: vec![0.0; n] }
    }
}

/// One linear layer `fan_in -> fan_out`. The weight is stored transposed, `[fan_in][fan_out]`,
/// so that the forward pass and the weight gradient are row-wise `axpy`s; `weight_out_in` is
/// the `[fan_out][fan_in]` copy that the input gradient needs, refreshed after every update
/// (but for the first layer, whose input gradient is never computed).
#[derive(Debug, Clone)]
struct Layer {
    fan_in: usize,
    fan_out: usize,
    weight: Param,
    bias: Param,
    weight_out_in: Vec<f32>,
}

impl Layer {
    fn refresh(&mut self) {
        transpose(&self.weight.value, self.fan_in, self.fan_out, &mut self.weight_out_in);
    }
}

/// `src` is `[rows][cols]`; writes `[cols][rows]` into `dst`.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, row) in src.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// The MLP as plain buffers.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    layers: Vec<Layer>,
    /// `background * sum_p W1[:, p]`: the first layer's output for an all-background image,
    /// before the bias; refreshed with the weights.
    base: Vec<f32>,
    background: f32,
}

impl Net {
    pub(crate) fn from_mlp(model: &Classifier, background: f32) -> Self {
        let layers = model
            .layer_parameters()
            .into_iter()
            .map(|(w, b)| {
                let (fan_out, fan_in) = (w.size()[0] as usize, w.size()[1] as usize);
                let out_in = Vec::<f32>::try_from(&w.detach().flatten(0, -1))
                    .expect("an MLP weight is a float tensor");
                let mut in_out = vec![0.0; out_in.len()];
                transpose(&out_in, fan_out, fan_in, &mut in_out);
                let bias =
                    Vec::<f32>::try_from(&b.detach()).expect("an MLP bias is a float tensor");
                Layer {
                    fan_in,
                    fan_out,
                    weight: Param::new(in_out),
                    bias: Param::new(bias),
                    weight_out_in: out_in,
                }
            })
            .collect();
        let mut net = Self { layers, base: Vec::new(), background };
        net.refresh_base();
        net
    }

    fn refresh_base(&mut self) {
        let first = &self.layers[0];
        let mut colsum = vec![0.0f32; first.fan_out];
        for row in first.weight.value.chunks_exact(first.fan_out) {
            for (s, w) in colsum.iter_mut().zip(row) {
                *s += w;
            }
        }
        self.base = colsum.into_iter().map(|s| self.background * s).collect();
    }

    /// Copies the parameters into `model`.
    pub(crate) fn write_to(&self, model: &Classifier) {
        tch::no_grad(|| {
            for ((w, b), layer) in model.layer_parameters().into_iter().zip(&self.layers) {
                let mut out_in = vec![0.0; layer.weight.value.len()];
                transpose(&layer.weight.value, layer.fan_in, layer.fan_out, &mut out_in);
                let src = tch::Tensor::from_slice(&out_in)
                    .view([layer.fan_out as i64, layer.fan_in as i64]);
                w.shallow_clone().copy_(&src);
                b.shallow_clone().copy_(&tch::Tensor::from_slice(&layer.bias.value));
            }
        });
    }

    fn classes(&self) -> usize {
        self.layers.last().expect("an MLP has layers").fan_out
    }

    /// The sum of `|p|` over every parameter.
    /// (A reported value only, so summed in eight lanes, which vectorises.)
    fn l1_norm(&self) -> f64 {
        let mut lanes = [0.0f64; 8];
        for l in &self.layers {
            for values in [&l.weight.value, &l.bias.value] {
                let chunks = values.chunks_exact(8);
                for (lane, &p) in lanes.iter_mut().zip(chunks.remainder()) {
                    *lane += f64::from(p.abs());
                }
                for chunk in chunks {
                    for (lane, &p) in lanes.iter_mut().zip(chunk) {
                        *lane += f64::from(p.abs());
                    }
                }
            }
        }
        lanes.iter().sum()
    }

    /// Runs a batch through the network: `acts[l]` receives layer `l`'s output for every row
    /// (ReLU applied but for the last layer, whose output is the logits).
    fn forward(&self, batch: &Batch, acts: &mut Vec<Vec<f32>>) {
        self.forward_input(Input::Grouped(batch), acts);
    }

    /// [`Net::forward`] for rows `ids` of `x` without regrouping them by pixel (for
    /// evaluation, where nothing else needs the grouping): the same sums in the same order,
    /// so the same bits.
    fn forward_rows(&self, x: &SparseRows, ids: &[usize], acts: &mut Vec<Vec<f32>>) {
        self.forward_input(Input::Rows(x, ids), acts);
    }

    fn forward_input(&self, input: Input<'_>, acts: &mut Vec<Vec<f32>>) {
        let n = match input {
            Input::Grouped(batch) => batch.len,
            Input::Rows(_, ids) => ids.len(),
        };
        acts.resize_with(self.layers.len(), Vec::new);
        let last = self.layers.len() - 1;
        let (mut coefs, mut positions) = (Vec::new(), Vec::new());
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, after) = acts.split_at_mut(l);
            let out = &mut after[0];
            out.clear();
            out.resize(n * layer.fan_out, 0.0);
            let w = &layer.weight.value;
            if l == 0 {
                match input {
                    Input::Grouped(batch) => {
                        for (p, wrow) in w.chunks_exact(layer.fan_out).enumerate() {
                            let (deltas, rows) = batch.pixel(p);
                            scatter(deltas, rows, wrow, out);
                        }
                    }
                    Input::Rows(x, ids) => {
                        for (o, &i) in out.chunks_exact_mut(layer.fan_out).zip(ids) {
                            let (pixels, deltas) = x.row(i);
                            combine(deltas, pixels, w, o);
                        }
                    }
                }
            }
            for (i, o) in out.chunks_exact_mut(layer.fan_out).enumerate() {
                if l == 0 {
                    for (o, base) in o.iter_mut().zip(&self.base) {
                        *o += base;
                    }
                } else {
                    let input = &before[l - 1][i * layer.fan_in..(i + 1) * layer.fan_in];
                    nonzeros(input, &mut coefs, &mut positions);
                    combine(&coefs, &positions, w, o);
                }
                for (o, b) in o.iter_mut().zip(&layer.bias.value) {
                    *o += b;
                }
                if l < last {
                    for o in o.iter_mut() {
                        // Keeps a NaN, like torch's relu.
                        if *o < 0.0 {
                            *o = 0.0;
                        }
                    }
                }
            }
        }
    }

    /// Writes every parameter's gradient, given the forward pass's `acts` and the loss's
    /// gradient with respect to the logits (`dlogits`, consumed as scratch).
    ///
    /// With `first_layer_step`, each row of the first layer's weight gradient is applied by
    /// Adam as soon as it is computed, while it is in cache (the same arithmetic as a separate
    /// pass: see [`Net::update`]).
    ///
    /// `hook` changes each first-layer weight gradient row before that (the other gradients
    /// get it in [`Net::update`]).
    fn backward(
        &mut self,
        batch: &Batch,
        acts: &[Vec<f32>],
        dlogits: Vec<f32>,
        first_layer_step: Option<AdamStep>,
        hook: Hook<'_>,
    ) {
        let mut g = dlogits;
        let background = self.background;
        let (mut coefs, mut positions) = (Vec::new(), Vec::new());
        for l in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[l];
            let (fan_in, width) = (layer.fan_in, layer.fan_out);
            let db = &mut layer.bias.grad;
            db.fill(0.0);
            for gi in g.chunks_exact(width) {
                for (d, v) in db.iter_mut().zip(gi) {
                    *d += v;
                }
            }
            if l == 0 {
                // dW[p] = sum_i delta_ip g_i + background * sum_i g_i.
                let Param { value, grad, exp_avg, exp_avg_sq } = &mut layer.weight;
                for (p, row) in grad.chunks_exact_mut(width).enumerate() {
                    let (deltas, rows) = batch.pixel(p);
                    combine(deltas, rows, &g, row);
                    for (d, s) in row.iter_mut().zip(db.iter()) {
                        *d += background * s;
                    }
                    let r = p * width..(p + 1) * width;
                    hook.apply(row, &value[r.clone()], hook.mask.map(|m| &m[0].0[r.clone()]));
                    if let Some(step) = first_layer_step {
                        step.apply(
                            &mut value[r.clone()],
                            row,
                            &mut exp_avg[r.clone()],
                            &mut exp_avg_sq[r],
                        );
                    }
                }
                break;
            }
            let dw = &mut layer.weight.grad;
            // dW[k] = sum_i a_ik g_i over the rows where the input a_ik is nonzero.
            let input = &acts[l - 1];
            let n = input.len() / fan_in;
            for (k, row) in dw.chunks_exact_mut(width).enumerate() {
                let column = input[k..].iter().step_by(fan_in).copied();
                nonzeros_of(column, n, &mut coefs, &mut positions);
                combine(&coefs, &positions, &g, row);
            }
            // The gradient of the layer's input, through the ReLU below it (which passes
            // gradient where its output is positive: torch's threshold_backward).
            let mut below = vec![0.0f32; input.len()];
            for ((gi, ai), bi) in g
                .chunks_exact(width)
                .zip(input.chunks_exact(fan_in))
                .zip(below.chunks_exact_mut(fan_in))
            {
                nonzeros(gi, &mut coefs, &mut positions);
                combine(&coefs, &positions, &layer.weight_out_in, bi);
                for (b, &a) in bi.iter_mut().zip(ai) {
                    // torch's threshold_backward: zero where a <= 0 (a NaN passes).
                    if a <= 0.0 {
                        *b = 0.0;
                    }
                }
            }
            g = below;
        }
    }

    /// One Adam step over every parameter, from the gradients [`Net::backward`] wrote.
    #[cfg(test)]
    fn adam_step(&mut self, adam: &mut Adam) {
        let step = adam.next();
        self.update(step, false, Hook::NONE);
    }

    /// Applies `step` to every parameter (but the first layer's weights when `backward`
    /// already did), each gradient first changed by `hook` (but the first layer's weights',
    /// which `backward` changed), then refreshes what depends on the weights.
    fn update(&mut self, step: AdamStep, first_weight_done: bool, hook: Hook<'_>) {
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let mask = hook.mask.map(|m| &m[l]);
            let params: &mut [(&mut Param, Option<&[f32]>, bool)] = if l == 0 && first_weight_done {
                &mut [(&mut layer.bias, mask.map(|m| &m.1[..]), true)]
            } else {
                &mut [
                    (&mut layer.weight, mask.map(|m| &m.0[..]), l > 0),
                    (&mut layer.bias, mask.map(|m| &m.1[..]), true),
                ]
            };
            for (p, mask, hooked) in params.iter_mut() {
                let Param { value, grad, exp_avg, exp_avg_sq } = &mut **p;
                if *hooked {
                    hook.apply(grad, value, *mask);
                }
                step.apply(value, grad, exp_avg, exp_avg_sq);
            }
            // The first layer's input gradient is never needed, nor is its transposed copy.
            if l > 0 {
                layer.refresh();
            }
        }
        self.refresh_base();
    }
}

/// Per layer, `(weight [in][out], bias)`: 1 where a parameter may change, else 0.
type Mask = Vec<(Vec<f32>, Vec<f32>)>;

/// What happens to each gradient between the backward pass and Adam: the L1 penalty's
/// gradient is added (`lambda * sign(p)`, zero at zero, as torch's `abs` backward), then the
/// mask multiplies it. [`Hook::NONE`] leaves the notebook's gradients untouched.
#[derive(Clone, Copy)]
struct Hook<'a> {
    l1: Option<f32>,
    mask: Option<&'a Mask>,
}

impl Hook<'_> {
    const NONE: Hook<'static> = Hook { l1: None, mask: None };

    fn apply(&self, grad: &mut [f32], value: &[f32], mask: Option<&[f32]>) {
        if let Some(lambda) = self.l1 {
            for (g, &v) in grad.iter_mut().zip(value) {
                // sign(v) in {-1, 0, 1}, branch-free so that the loop vectorises.
                let sign = f32::from(u8::from(v > 0.0)) - f32::from(u8::from(v < 0.0));
                *g += lambda * sign;
            }
        }
        if let Some(mask) = mask {
            for (g, m) in grad.iter_mut().zip(mask) {
                *g *= m;
            }
        }
    }
}

/// Adam's settings and step count (torch.optim.Adam's defaults).
#[derive(Debug)]
struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i32,
}

impl Adam {
    /// The next step's constants.
    fn next(&mut self) -> AdamStep {
        self.step += 1;
        let bias_correction1 = 1.0 - self.beta1.powi(self.step);
        let bias_correction2 = 1.0 - self.beta2.powi(self.step);
        AdamStep {
            step_size: (self.lr / bias_correction1) as f32,
            bias_correction2_sqrt: bias_correction2.sqrt() as f32,
            weight: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            eps: self.eps as f32,
        }
    }
}

/// One Adam step's constants, applied with PyTorch's single-tensor formula.
#[derive(Debug, Clone, Copy)]
struct AdamStep {
    step_size: f32,
    bias_correction2_sqrt: f32,
    weight: f32,
    beta2: f32,
    one_minus_beta2: f32,
    eps: f32,
}

/// A first Adam moment below this is stored as zero (module doc: Subnormals).
const MOMENT_FLOOR: f32 = 1.0 / (1u128 << 100) as f32;
/// A second Adam moment below this is stored as zero.
const SQUARE_FLOOR: f32 = MOMENT_FLOOR / (1u32 << 20) as f32;
/// A gradient below this enters Adam's second moment as zero (`0.001 g^2` would be
/// subnormal below about 2^-58).
const GRAD_SQUARE_FLOOR: f32 = 1.0 / (1u64 << 56) as f32;
/// A loss gradient entry (of a logit) below this is zero.
const LOGIT_GRAD_FLOOR: f32 = 1.0 / (1u128 << 80) as f32;
/// `exp(x)` is taken as zero below this: `exp(-83)` is 9e-37, so neither it nor its quotient
/// by a softmax sum (at most the number of classes) is subnormal.
const EXP_CUTOFF: f32 = -83.0;

/// `x` if its magnitude is at least `floor`, else zero.
#[inline(always)]
fn floored(x: f32, floor: f32) -> f32 {
    if x.abs() < floor { 0.0 } else { x }
}

/// `exp(x)`, or zero below [`EXP_CUTOFF`].
#[inline(always)]
fn exp_normal(x: f32) -> f32 {
    if x < EXP_CUTOFF { 0.0 } else { x.exp() }
}

impl AdamStep {
    fn apply(&self, value: &mut [f32], grad: &[f32], exp_avg: &mut [f32], exp_avg_sq: &mut [f32]) {
        let k = *self;
        for (((v, &g), m), s) in value.iter_mut().zip(grad).zip(exp_avg).zip(exp_avg_sq) {
            // exp_avg.lerp_(grad, 1 - beta1): weight < 0.5, so m + w (g - m).
            // (m is 0 or at least 2^-100, so `w (g - m)` is subnormal only if g is.)
            *m = floored(*m + k.weight * (g - *m), MOMENT_FLOOR);
            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value = 1 - beta2).
            let gs = floored(g, GRAD_SQUARE_FLOOR);
            *s = floored(*s * k.beta2 + k.one_minus_beta2 * gs * gs, SQUARE_FLOOR);
            let denom = s.sqrt() / k.bias_correction2_sqrt + k.eps;
            // param.addcdiv_(exp_avg, denom, value = -step_size).
            *v += -k.step_size * (*m / denom);
        }
    }
}

/// Softmax of each row of `logits` (`classes` wide) in `f32`, like `torch.softmax`, but with
/// an `exp` below [`EXP_CUTOFF`] taken as zero (module doc: Subnormals).
fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
    let mut out = logits.to_vec();
    for row in out.chunks_exact_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
            *v = exp_normal(*v - max);
            sum += *v;
        }
        for v in row.iter_mut() {
            *v /= sum;
        }
    }
    out
}

/// Mean cross-entropy of `logits` against `labels` and, added into `dlogits`, `scale` times
/// its gradient, `(softmax - one_hot) / n`.
fn cross_entropy(
    logits: &[f32],
    labels: impl Iterator<Item = usize>,
    classes: usize,
    scale: f32,
    dlogits: &mut [f32],
) -> f64 {
    let n = logits.len() / classes;
    let mut total = 0.0f64;
    for ((row, y), d) in
        logits.chunks_exact(classes).zip(labels).zip(dlogits.chunks_exact_mut(classes))
    {
        // log_softmax as torch computes it: (x - max) - ln(sum(exp(x - max))).
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = row.iter().map(|v| exp_normal(v - max)).sum::<f32>().ln();
        total -= f64::from((row[y] - max) - log_sum);
        for (c, (d, v)) in d.iter_mut().zip(row).enumerate() {
            // A probability below the floor would give a gradient entry below it.
            let p = floored(exp_normal((v - max) - log_sum), LOGIT_GRAD_FLOOR);
            let target = if c == y { 1.0 } else { 0.0 };
            *d += floored(scale * ((p - target) / n as f32), LOGIT_GRAD_FLOOR);
        }
    }
    total / n as f64
}

/// `KL(softmax(teacher / T) || softmax(student / T)) * T^2` per row, averaged over rows (torch's
/// `kl_div` of `log_softmax(student / T)` against `softmax(teacher / T)`, summed, over the
/// rows), with `f32` probabilities like torch and an `f64` total; adds `scale` times its
/// gradient with respect to the student's logits, `T (s_c sum_k t_k - t_c) / n`, into
/// `dlogits`.
fn distill(
    student: &[f32],
    teacher: &[f32],
    classes: usize,
    temperature: f32,
    scale: f32,
    dlogits: &mut [f32],
) -> f64 {
    let n = student.len() / classes;
    let mut total = 0.0f64;
    let t = temperature;
    let scaled: Vec<f32> = teacher.iter().map(|v| v / t).collect();
    let teacher_probs = softmax_rows(&scaled, classes);
    let (mut log_s, mut p_t) = (vec![0.0f32; classes], vec![0.0f32; classes]);
    for ((s_row, t_row), d) in student
        .chunks_exact(classes)
        .zip(teacher_probs.chunks_exact(classes))
        .zip(dlogits.chunks_exact_mut(classes))
    {
        // log_softmax(s / T), max subtracted, as torch computes it (softmax(t / T) above).
        let max = s_row.iter().map(|v| v / t).fold(f32::NEG_INFINITY, f32::max);
        let log_sum = s_row.iter().map(|v| exp_normal(v / t - max)).sum::<f32>().ln();
        for (l, v) in log_s.iter_mut().zip(s_row) {
            *l = (v / t - max) - log_sum;
        }
        let mut p_sum = 0.0f32;
        for (p, &q) in p_t.iter_mut().zip(t_row) {
            *p = floored(q, LOGIT_GRAD_FLOOR);
            p_sum += *p;
        }
        for c in 0..classes {
            // xlogy: a zero probability adds nothing.
            if p_t[c] > 0.0 {
                total += f64::from(p_t[c]) * (f64::from(p_t[c].ln()) - f64::from(log_s[c]));
            }
            let p_s = floored(exp_normal(log_s[c]), LOGIT_GRAD_FLOOR);
            let g = (p_s * p_sum - p_t[c]) * (scale * t / n as f32);
            d[c] += floored(g, LOGIT_GRAD_FLOOR);
        }
    }
    total * f64::from(t * t) / n as f64
}

/// The MI estimate over an MI batch whose rows are `logits` rows `0..n0` with `Z = 0` and rows
/// `twice` (a prefix, `0..n_twice`) again with `Z = 1`, as `mi::mutual_information` computes
/// it on the batch with the repeated rows written out; adds `scale` times its gradient with
/// respect to the logits into `dlogits` (a repeated row gets the sum of both copies').
fn mutual_information(
    logits: &[f32],
    classes: usize,
    n_twice: usize,
    scale: f64,
    dlogits: &mut [f32],
) -> f64 {
    let n0 = logits.len() / classes;
    let n = (n0 + n_twice) as f64;
    let probs = softmax_rows(logits, classes);
    let (lo, hi) = (EPS as f32, (1.0 - EPS) as f32);
    let clamped = |s: f32| f64::from(s.clamp(lo, hi));
    let p_z1 = n_twice as f64 / n;
    let p_z0 = 1.0 - p_z1;
    let (mut j0, mut j1) = (vec![0.0f64; classes], vec![0.0f64; classes]);
    for (i, row) in probs.chunks_exact(classes).enumerate() {
        for c in 0..classes {
            let p = clamped(row[c]);
            j0[c] += p;
            if i < n_twice {
                j1[c] += p;
            }
        }
    }
    for c in 0..classes {
        j0[c] /= n;
        j1[c] /= n;
    }
    // T(j) = j ln(j / (p_y p_z + eps) + eps): its value, dT/dj at fixed p_y, and dT/dp_y.
    let term = |j: f64, p_y: f64, p_z: f64| {
        let d = p_y * p_z + EPS;
        let r = j / d + EPS;
        (j * r.ln(), r.ln() + j / (r * d), -(j / r) * j * p_z / (d * d))
    };
    let mut mi = 0.0;
    let (mut g0, mut g1) = (vec![0.0f64; classes], vec![0.0f64; classes]);
    for c in 0..classes {
        let p_y = j0[c] + j1[c];
        let (t1, dj1, dpy1) = term(j1[c], p_y, p_z1);
        let (t0, dj0, dpy0) = term(j0[c], p_y, p_z0);
        mi += t1 + t0;
        g1[c] = (dj1 + dpy1 + dpy0) / n;
        g0[c] = (dj0 + dpy1 + dpy0) / n;
    }
    // Through the clamp (which passes gradient inside [lo, hi]) and the softmax:
    // dl = s * (dp - <dp, s>).
    let mut dp = vec![0.0f64; classes];
    for (i, (row, d)) in
        probs.chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).enumerate()
    {
        for c in 0..classes {
            let inside = (lo..=hi).contains(&row[c]);
            let g = g0[c] + if i < n_twice { g1[c] } else { 0.0 };
            dp[c] = if inside { g } else { 0.0 };
        }
        let dot: f64 = dp.iter().zip(row).map(|(g, &s)| g * f64::from(s)).sum();
        for c in 0..classes {
            // Floored in f64, so that no subnormal f32 is ever made.
            let g = scale * f64::from(row[c]) * (dp[c] - dot);
            d[c] += if g.abs() < f64::from(LOGIT_GRAD_FLOOR) { 0.0 } else { g as f32 };
        }
    }
    mi
}

/// The native engine's optimisation state over a copy of `model` (written back by
/// [`Step::sync`]).
pub(crate) struct Native<'a> {
    model: &'a Classifier,
    data: &'a Data,
    net: Net,
    adam: Adam,
    acts: Vec<Vec<f32>>,
    rows: Vec<usize>,
    batch: Batch,
    totals: Totals,
    /// Which parameters may change ([`Optimizer::salient`]).
    mask: Option<Mask>,
}

impl<'a> Native<'a> {
    pub(crate) fn new(model: &'a Classifier, data: &'a Data, optimizer: Optimizer<'_>) -> Self {
        let x = &data.images().sparse().0;
        let net = Net::from_mlp(model, x.background);
        assert_eq!(x.dim, net.layers[0].fan_in, "the model's input width is the images' width");
        let mut native = Self {
            model,
            data,
            net,
            adam: Adam { lr: optimizer.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 },
            acts: Vec::new(),
            rows: Vec::new(),
            batch: Batch::default(),
            totals: Totals::default(),
            mask: None,
        };
        native.mask = optimizer.salient.map(|s| native.saliency_mask(s.pool, s.sparsity));
        native
    }

    /// 1 for the `sparsity` fraction of parameters with the largest gradient magnitude of
    /// the summed cross-entropy over `pool`, else 0 ([`Saliency`]).
    fn saliency_mask(&mut self, pool: &[i64], sparsity: f64) -> Mask {
        let x = &self.data.images().sparse().0;
        let labels = &self.data.images().dataset().train.labels;
        let classes = self.net.classes();
        let mut sums: Mask = self
            .net
            .layers
            .iter()
            .map(|l| (vec![0.0; l.weight.value.len()], vec![0.0; l.bias.value.len()]))
            .collect();
        // The gradient of the summed cross-entropy, batch by batch (each batch's mean times
        // its size, as the autograd engine computes it).
        for chunk in pool.chunks(SALIENCY_BATCH) {
            self.rows.clear();
            self.rows.extend(chunk.iter().map(|&i| i as usize));
            self.batch.fill(x, &self.rows);
            self.net.forward(&self.batch, &mut self.acts);
            let logits = self.acts.last().expect("a forward pass");
            let mut dlogits = vec![0.0f32; logits.len()];
            let ys = self.rows.iter().map(|&i| usize::from(labels[i]));
            cross_entropy(logits, ys, classes, chunk.len() as f32, &mut dlogits);
            self.net.backward(&self.batch, &self.acts, dlogits, None, Hook::NONE);
            for (sum, layer) in sums.iter_mut().zip(&self.net.layers) {
                for (s, g) in sum.0.iter_mut().zip(&layer.weight.grad) {
                    *s += g;
                }
                for (s, g) in sum.1.iter_mut().zip(&layer.bias.grad) {
                    *s += g;
                }
            }
        }
        let mut all: Vec<f32> =
            sums.iter().flat_map(|(w, b)| w.iter().chain(b)).map(|g| g.abs()).collect();
        let keep = ((sparsity * all.len() as f64).round() as usize).clamp(1, all.len());
        // The keep-th largest magnitude is the threshold; ties at it are kept too.
        let (_, threshold, _) = all.select_nth_unstable_by(keep - 1, |a, b| b.total_cmp(a));
        let threshold = *threshold;
        let keep = |g: &mut f32| *g = if g.abs() >= threshold { 1.0 } else { 0.0 };
        for (w, b) in &mut sums {
            w.iter_mut().chain(b.iter_mut()).for_each(keep);
        }
        sums
    }

    /// `term`'s value on a group's `logits` (its rows `ids`, then the rows its term brings),
    /// adding its weighted gradient into `dlogits` (the same rows).
    fn term(&self, term: &Term<'_>, ids: &[usize], logits: &[f32], dlogits: &mut [f32]) -> f64 {
        let labels = &self.data.images().dataset().train.labels;
        let classes = self.net.classes();
        let own = ids.len() * classes;
        match *term {
            Term::CrossEntropy { weight, labels: target } => {
                let ys = ids.iter().map(|&i| match target {
                    Labels::True => usize::from(labels[i]),
                    Labels::Table(t) => t.labels[i] as usize,
                });
                cross_entropy(&logits[..own], ys, classes, weight as f32, &mut dlogits[..own])
            }
            Term::Distill { weight, temperature, teacher } => {
                let all = teacher_logits(teacher, self.data);
                let target: Vec<f32> = ids
                    .iter()
                    .flat_map(|&i| all[i * classes..(i + 1) * classes].iter().copied())
                    .collect();
                let (t, w) = (temperature as f32, weight as f32);
                distill(&logits[..own], &target, classes, t, w, &mut dlogits[..own])
            }
            // The group's rows come first, so they are the prefix counted twice.
            Term::MutualInformation { weight, .. } => {
                mutual_information(logits, classes, ids.len(), weight, dlogits)
            }
        }
    }
}

/// The logits of every training image under `teacher`, computed once per teacher.
fn teacher_logits<'t>(teacher: &'t Teacher, data: &Data) -> &'t [f32] {
    teacher.native_logits.get_or_init(|| {
        let x = &data.images().sparse().0;
        let all = |model: &Classifier| {
            let net = Net::from_mlp(model, x.background);
            let (mut acts, mut logits) = (Vec::new(), Vec::with_capacity(x.len() * net.classes()));
            let rows: Vec<usize> = (0..x.len()).collect();
            for block in rows.chunks(EVAL_BLOCK) {
                net.forward_rows(x, block, &mut acts);
                logits.extend_from_slice(acts.last().expect("a forward pass"));
            }
            logits
        };
        let mut logits = all(&teacher.main);
        if let Some((other, marked)) = &teacher.other {
            let classes = logits.len() / x.len().max(1);
            let theirs = all(other);
            for (i, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
                let r = i * classes..(i + 1) * classes;
                logits[r.clone()].copy_from_slice(&theirs[r]);
            }
        }
        logits
    })
}

impl Step for Native<'_> {
    fn step(&mut self, objective: &Objective<'_>) {
        // Each group's rows, then the rows its terms bring: one pass through the trunk.
        let x = &self.data.images().sparse().0;
        self.rows.clear();
        for group in objective.groups {
            self.rows.extend(group.rows.ids().iter().map(|&i| i as usize));
            for others in group.terms.iter().filter_map(Term::others) {
                self.rows.extend(others.ids().iter().map(|&i| i as usize));
            }
        }
        self.batch.fill(x, &self.rows);
        self.net.forward(&self.batch, &mut self.acts);
        let classes = self.net.classes();
        let logits = self.acts.last().expect("a forward pass");
        let mut dlogits = vec![0.0f32; logits.len()];
        let (mut loss, mut ce, mut mi) = (0.0, None, None);
        let mut start = 0;
        for group in objective.groups {
            let own = group.rows.ids().len();
            let brought: usize =
                group.terms.iter().filter_map(Term::others).map(|o| o.ids().len()).sum();
            let ids = &self.rows[start..start + own];
            let r = start * classes..(start + own + brought) * classes;
            for term in group.terms {
                let value = self.term(term, ids, &logits[r.clone()], &mut dlogits[r.clone()]);
                if let Term::MutualInformation { .. } = term {
                    mi = Some(value);
                }
                ce.get_or_insert(value);
                loss += term.weight() * value;
            }
            start += own + brought;
        }
        if let Some(lambda) = objective.l1 {
            loss += lambda * self.net.l1_norm();
        }
        let step = self.adam.next();
        let hook = Hook { l1: objective.l1.map(|l| l as f32), mask: self.mask.as_ref() };
        self.net.backward(&self.batch, &self.acts, dlogits, Some(step), hook);
        self.net.update(step, true, hook);
        if objective.record {
            self.totals.add(loss, ce.unwrap_or(loss), mi);
        }
    }

    fn take_totals(&mut self) -> Totals {
        std::mem::take(&mut self.totals)
    }

    fn sync(&self) {
        self.net.write_to(self.model);
    }
}

/// Rows per block in [`evaluate`]: keeps the activations in cache.
const EVAL_BLOCK: usize = 256;

/// Whether each training and test image is classified correctly, and its cross-entropy
/// ([`crate::eval::sample_loss`]), for `model`.
pub(crate) fn outputs(model: &Classifier, data: &Data, confidences: bool) -> Outputs {
    let (train, test) = data.images().sparse();
    let net = Net::from_mlp(model, train.background);
    let mnist = data.images().dataset();
    let run = |x: &SparseRows, labels: &[u8], confidences: Option<&mut Vec<f64>>| {
        let mut acts = Vec::new();
        let (mut ok, mut loss) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        let classes = net.classes();
        let rows: Vec<usize> = (0..x.len()).collect();
        let mut confidences = confidences;
        for block in rows.chunks(EVAL_BLOCK) {
            net.forward_rows(x, block, &mut acts);
            for (row, &i) in acts.last().expect("a forward pass").chunks_exact(classes).zip(block) {
                let y = usize::from(labels[i]);
                ok.push(argmax(row) == y);
                loss.push(crate::eval::sample_loss(row, y));
                if let Some(c) = confidences.as_deref_mut() {
                    c.push(crate::eval::confidence(row, y));
                }
            }
        }
        (ok, loss)
    };
    // The test set's background must be the training set's for the shared `base`.
    debug_assert_eq!(train.background.to_bits(), test.background.to_bits());
    let mut train_confidence = Vec::new();
    let wanted = confidences.then_some(&mut train_confidence);
    let (train_correct, train_loss) = run(train, &mnist.train.labels, wanted);
    let (test_correct, test_loss) = run(test, &mnist.test.labels, None);
    Outputs { train_correct, test_correct, train_loss, test_loss, train_confidence }
}

/// The first index of the largest value (torch's `argmax`).
fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{autograd_grads, max_diff};
    use model::ClassifierSpec;
    use tch::{Device, Kind, Tensor};

    use crate::mi::mutual_information as mi_reference;

    /// `n` "images" of 12 values: background -0.5 in most places, a few bright pixels.
    fn images(n: usize) -> Vec<f32> {
        let mut rng = data::rng::stream(5, "images");
        (0..n * 12)
            .map(|_| {
                use rand::Rng as _;
                if rng.random_bool(0.3) { rng.random_range(-0.4..2.5) } else { -0.5 }
            })
            .collect()
    }

    fn model() -> Classifier {
        let spec =
            ClassifierSpec { input: 12, hidden: vec![16, 8], classes: 4, ..Default::default() };
        Classifier::init(&spec, &mut data::rng::stream(3, "init"), Device::Cpu)
    }

    /// The gradients of `net`, in the model's layout (weights `[out][in]`), flattened.
    fn grads_out_in(net: &Net) -> Vec<f32> {
        let mut out = Vec::new();
        for layer in &net.layers {
            let mut w = vec![0.0; layer.weight.grad.len()];
            transpose(&layer.weight.grad, layer.fan_in, layer.fan_out, &mut w);
            out.extend(w);
            out.extend(&layer.bias.grad);
        }
        out
    }

    fn dense(features: &[f32], ids: &[usize]) -> Tensor {
        let rows: Vec<f32> =
            ids.iter().flat_map(|&i| features[i * 12..(i + 1) * 12].to_vec()).collect();
        Tensor::from_slice(&rows).view([ids.len() as i64, 12])
    }

    #[test]
    fn sparse_rows_keep_what_differs_from_the_most_common_value() {
        let features = images(50);
        let x = SparseRows::new(&features, 12);
        assert_eq!((x.len(), x.background()), (50, -0.5));
        let stored = features.iter().filter(|&&v| v != -0.5).count();
        assert_eq!(x.mean_nonzero(), stored as f64 / 50.0);
        for i in 0..50 {
            let mut row = [-0.5f32; 12];
            let (pixels, deltas) = x.row(i);
            for (&p, &d) in pixels.iter().zip(deltas) {
                row[p as usize] += d;
            }
            for (r, f) in row.iter().zip(&features[i * 12..]) {
                assert!((r - f).abs() <= 1e-6 * f.abs().max(1.0), "{r} {f}");
            }
        }
    }

    #[test]
    fn a_batch_lists_each_pixels_terms_in_row_order_across_reuses() {
        let features = images(30);
        let x = SparseRows::new(&features, 12);
        let mut batch = Batch::default();
        for ids in [(0..30).rev().collect::<Vec<usize>>(), vec![7, 3, 7, 12]] {
            batch.fill(&x, &ids);
            assert_eq!(batch.len, ids.len());
            for p in 0..12 {
                let mut expected = (Vec::new(), Vec::new());
                for (row, &i) in ids.iter().enumerate() {
                    let (pixels, deltas) = x.row(i);
                    if let Some(k) = pixels.iter().position(|&q| q as usize == p) {
                        expected.0.push(deltas[k]);
                        expected.1.push(row as u32);
                    }
                }
                let (deltas, rows) = batch.pixel(p);
                assert_eq!((deltas, rows), (&expected.0[..], &expected.1[..]), "pixel {p}");
            }
        }
    }

    #[test]
    fn a_batch_gives_each_row_the_logits_it_gets_alone_and_libtorch_agrees() {
        let features = images(40);
        let x = SparseRows::new(&features, 12);
        let model = model();
        let net = Net::from_mlp(&model, x.background);
        let ids: Vec<usize> = (0..40).rev().collect();
        let (mut batch, mut acts) = (Batch::default(), Vec::new());
        batch.fill(&x, &ids);
        net.forward(&batch, &mut acts);
        let together = acts.last().unwrap().clone();
        for (k, &i) in ids.iter().enumerate() {
            batch.fill(&x, &[i]);
            net.forward(&batch, &mut acts);
            assert_eq!(acts.last().unwrap()[..], together[k * 4..(k + 1) * 4]);
        }
        net.forward_rows(&x, &ids, &mut acts);
        assert_eq!(acts.last().unwrap(), &together, "row by row: the same bits");
        let reference: Vec<f32> =
            Vec::try_from(&tch::no_grad(|| model.forward(&dense(&features, &ids))).flatten(0, -1))
                .unwrap();
        assert!(max_diff(&together, &reference) < 1e-5, "{}", max_diff(&together, &reference));
    }

    #[test]
    fn cross_entropy_and_mi_gradients_match_autograd() {
        let mut features = images(30);
        // Forget rows that look unlike the remain rows, so that the MI term matters.
        for v in &mut features[20 * 12..] {
            *v = if *v == -0.5 { -0.5 } else { 2.5 };
        }
        features[20 * 12..].chunks_exact_mut(12).for_each(|row| row[..5].fill(3.0));
        let x = SparseRows::new(&features, 12);
        let model = model();
        let labels: Vec<i64> = (0..30).map(|i| i % 4).collect();
        let (remain, forget): (Vec<usize>, Vec<usize>) = ((0..20).collect(), (20..30).collect());
        let (xr, xf) = (dense(&features, &remain), dense(&features, &forget));
        let yr = Tensor::from_slice(&labels[..20]);
        let gamma = 4.0;
        let z = Tensor::cat(
            &[
                Tensor::zeros([30], (Kind::Float, Device::Cpu)),
                Tensor::ones([20], (Kind::Float, Device::Cpu)),
            ],
            0,
        );
        let check = |with_mi: bool| {
            let expected = autograd_grads(&model, |m| {
                let ce = m.forward(&xr).cross_entropy_for_logits(&yr);
                if with_mi {
                    ce + mi_reference(&m.forward(&Tensor::cat(&[&xr, &xf, &xr], 0)), &z) * gamma
                } else {
                    ce
                }
            });
            let mut net = Net::from_mlp(&model, x.background);
            let ids: Vec<usize> = if with_mi { (0..30).collect() } else { remain.clone() };
            let (mut batch, mut acts) = (Batch::default(), Vec::new());
            batch.fill(&x, &ids);
            net.forward(&batch, &mut acts);
            let logits = acts.last().unwrap();
            let mut dlogits = vec![0.0; logits.len()];
            let ys = (0..20).map(|i| labels[i] as usize);
            let ce = cross_entropy(&logits[..80], ys, 4, 1.0, &mut dlogits[..80]);
            let reference_ce =
                tch::no_grad(|| model.forward(&xr).cross_entropy_for_logits(&yr)).double_value(&[]);
            assert!((ce - reference_ce).abs() < 1e-6, "{ce} {reference_ce}");
            if with_mi {
                let mi = mutual_information(logits, 4, 20, gamma, &mut dlogits);
                let reference = tch::no_grad(|| {
                    mi_reference(&model.forward(&Tensor::cat(&[&xr, &xf, &xr], 0)), &z)
                })
                .double_value(&[]);
                assert!(mi > 5e-5 && (mi - reference).abs() < 1e-6, "{mi} {reference}");
            }
            net.backward(&batch, &acts, dlogits, None, Hook::NONE);
            let got = grads_out_in(&net);
            assert!(expected.iter().any(|g| g.abs() > 1e-3));
            assert!(
                max_diff(&got, &expected) < 2e-6,
                "mi {with_mi}: {}",
                max_diff(&got, &expected)
            );
        };
        check(false);
        check(true);
    }

    #[test]
    fn distillation_and_weighted_cross_entropy_gradients_match_autograd() {
        let features = images(24);
        let x = SparseRows::new(&features, 12);
        let (model, teacher) = (model(), {
            let spec =
                ClassifierSpec { input: 12, hidden: vec![16, 8], classes: 4, ..Default::default() };
            Classifier::init(&spec, &mut data::rng::stream(9, "teacher"), Device::Cpu)
        });
        let ids: Vec<usize> = (0..24).collect();
        let labels: Vec<i64> = (0..24).map(|i| (i * 7 % 4) as i64).collect();
        let (xs, ys) = (dense(&features, &ids), Tensor::from_slice(&labels));
        let teacher_logits = tch::no_grad(|| teacher.forward(&xs));
        let (t, alpha, weight) = (4.0, 0.3, -0.7);
        let expected = autograd_grads(&model, |m| {
            let logits = m.forward(&xs);
            logits.cross_entropy_for_logits(&ys) * weight
                + super::super::autograd::distill_kl(&logits, &teacher_logits, t) * alpha
        });
        let mut net = Net::from_mlp(&model, x.background);
        let (mut batch, mut acts) = (Batch::default(), Vec::new());
        batch.fill(&x, &ids);
        net.forward(&batch, &mut acts);
        let logits = acts.last().unwrap();
        let mut d = vec![0.0; logits.len()];
        let ce =
            cross_entropy(logits, labels.iter().map(|&y| y as usize), 4, weight as f32, &mut d);
        let target = Vec::<f32>::try_from(&teacher_logits.flatten(0, -1)).unwrap();
        let kl = distill(logits, &target, 4, t as f32, alpha as f32, &mut d);
        let reference = tch::no_grad(|| {
            let logits = model.forward(&xs);
            super::super::autograd::distill_kl(&logits, &teacher_logits, t).double_value(&[])
        });
        assert!(kl > 1e-3 && (kl - reference).abs() < 1e-5 * kl, "{kl} {reference}");
        assert!(ce > 0.5, "{ce}");
        net.backward(&batch, &acts, d, None, Hook::NONE);
        let got = grads_out_in(&net);
        assert!(expected.iter().any(|g| g.abs() > 1e-3));
        assert!(max_diff(&got, &expected) < 2e-6, "{}", max_diff(&got, &expected));
    }

    #[test]
    fn adam_matches_tch_adam_to_rounding_and_writes_back() {
        let features = images(16);
        let x = SparseRows::new(&features, 12);
        let model = model();
        let reference = model.duplicate();
        let ids: Vec<usize> = (0..16).collect();
        let labels: Vec<i64> = (0..16).map(|i| i % 4).collect();
        let (xs, ys) = (dense(&features, &ids), Tensor::from_slice(&labels));
        let mut opt =
            tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), reference.var_store(), 1e-2)
                .unwrap();
        let mut net = Net::from_mlp(&model, x.background);
        let mut other = net.clone();
        let new_adam = || Adam { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
        let (mut adam, mut other_adam) = (new_adam(), new_adam());
        let (mut batch, mut acts) = (Batch::default(), Vec::new());
        batch.fill(&x, &ids);
        let dlogits = |net: &Net, acts: &mut Vec<Vec<f32>>| {
            net.forward(&batch, acts);
            let logits = acts.last().unwrap();
            let mut d = vec![0.0; logits.len()];
            cross_entropy(logits, labels.iter().map(|&y| y as usize), 4, 1.0, &mut d);
            d
        };
        for _ in 0..5 {
            opt.backward_step(&reference.forward(&xs).cross_entropy_for_logits(&ys));
            let d = dlogits(&net, &mut acts);
            net.backward(&batch, &acts, d, None, Hook::NONE);
            net.adam_step(&mut adam);
            // The training loop's path: the first layer updated inside the backward pass.
            let d = dlogits(&other, &mut acts);
            let step = other_adam.next();
            other.backward(&batch, &acts, d, Some(step), Hook::NONE);
            other.update(step, true, Hook::NONE);
        }
        for (a, b) in net.layers.iter().zip(&other.layers) {
            assert_eq!(a.weight.value, b.weight.value, "the same bits either way");
            assert_eq!(a.bias.value, b.bias.value);
        }
        net.write_to(&model);
        let (a, b) = (model.flat_parameters(), reference.flat_parameters());
        assert!(max_diff(&a, &b) < 1e-5, "{}", max_diff(&a, &b));
        assert!(max_diff(&a, &self::model().flat_parameters()) > 1e-3, "the model moved");
    }

    /// PyTorch's Adam formula in plain IEEE arithmetic, subnormals and all.
    fn ieee_adam(k: AdamStep, v: &mut f32, g: f32, m: &mut f32, s: &mut f32) {
        *m += k.weight * (g - *m);
        *s = *s * k.beta2 + k.one_minus_beta2 * g * g;
        *v += -k.step_size * (*m / (s.sqrt() / k.bias_correction2_sqrt + k.eps));
    }

    #[test]
    fn adam_moments_of_a_dead_weight_never_go_subnormal_and_the_weights_do_not_notice() {
        let mut adam = Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 0 };
        // A weight whose gradient stops (a dead unit), one whose gradient shrinks through the
        // subnormal range, and one whose gradient goes on.
        let (mut value, mut m, mut s) = ([0.03f32, 0.5, -0.02], [0.0f32; 3], [0.0f32; 3]);
        let (mut plain_v, mut plain_m, mut plain_s) = (value, m, s);
        let mut seen_subnormal = false;
        for t in 0..90_000 {
            let grad = [if t < 10 { 1e-3 } else { 0.0 }, 1e-3 * 0.5f32.powi(t / 100), 2e-3];
            let k = adam.next();
            k.apply(&mut value, &grad, &mut m, &mut s);
            for i in 0..3 {
                ieee_adam(k, &mut plain_v[i], grad[i], &mut plain_m[i], &mut plain_s[i]);
            }
            seen_subnormal |= plain_m.iter().chain(&plain_s).any(|x| x.is_subnormal());
            assert!(
                !m.iter().chain(&s).chain(&value).any(|x| x.is_subnormal()),
                "step {t}: {m:?} {s:?}"
            );
        }
        assert!(seen_subnormal, "IEEE arithmetic does go subnormal here");
        assert_eq!((m[0], s[0], m[1], s[1]), (0.0, 0.0, 0.0, 0.0), "flushed");
        assert_eq!(value, plain_v, "the same weights, bit for bit");
        assert_eq!((m[2], s[2]), (plain_m[2], plain_s[2]));
    }

    #[test]
    fn loss_gradients_of_confident_rows_never_go_subnormal() {
        // Logits whose gaps make some exp() subnormal (gap > 87) or tiny (gap > 42).
        let logits = [0.0f32, -50.0, -95.0, -120.0, 3.0, -44.0, 2.0, -100.0];
        let mut d = vec![0.0f32; 8];
        let ce = cross_entropy(&logits, [0usize, 2].into_iter(), 4, 1.0, &mut d);
        assert!(d.iter().all(|x| !x.is_subnormal()), "{d:?}");
        // exp(-50) / 2 is kept (1e-22, above 2^-80); exp(-95), exp(-120), exp(-100) are not.
        assert_eq!((d[2], d[3], d[7]), (0.0, 0.0, 0.0), "{d:?}");
        assert_eq!(d[1], (-50.0f32).exp() / 2.0);
        assert!(d[0] == 0.0 && d[4] > 0.1 && d[5] > 0.0 && d[6] < 0.0, "{d:?}");
        // Row 0's loss is about exp(-50); row 1's is ln(1 + e^-1 + e^-47) + 1.
        let row1 = (1.0f64 + (-1.0f64).exp() + (-47.0f64).exp()).ln() + 1.0;
        assert!((ce - row1 / 2.0).abs() < 1e-6, "{ce} {row1}");
        let probs = softmax_rows(&logits, 4);
        assert!(probs.iter().all(|x| !x.is_subnormal()), "{probs:?}");
        assert_eq!((probs[2], probs[3], probs[7]), (0.0, 0.0, 0.0));
        assert_eq!(probs[1], (-50.0f32).exp());
        let mut d = vec![0.0f32; 8];
        mutual_information(&logits, 4, 1, 8.0, &mut d);
        assert!(d.iter().all(|x| !x.is_subnormal()), "{d:?}");
        assert!(d.iter().any(|&x| x != 0.0), "{d:?}");
    }
}
