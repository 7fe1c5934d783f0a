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
//! set), about a fifth of the dense products. `crate::sparse::SparseRows` holds each image's nonzero
//! `(pixel, delta)` pairs; the background is the input's most common value (any value gives the
//! right result: only the speed depends on it). A batch is regrouped by pixel (`batch::Batch`), so
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
//!   `adam::AdamStep::apply` stores a first moment below `adam::MOMENT_FLOOR` (2^-100) and a second
//!   below `adam::SQUARE_FLOOR` (2^-120) as zero, and a gradient below 2^-56 enters the second
//!   moment as zero (`0.001 g^2` would be subnormal).
//! - **Softmax probabilities of confidently wrong classes**: once a logit trails the row's
//!   largest by more than 87, its `exp` is subnormal, and so are the loss gradients built from
//!   it. The loss heads take an `exp` below `exp(-83)` as zero (`heads::exp_normal`: it adds nothing
//!   to a softmax sum, which holds 1), and a logit's gradient entry below
//!   `heads::LOGIT_GRAD_FLOOR` (2^-80) as zero (`heads::cross_entropy` floors the probability first, so
//!   that no quotient is subnormal; `heads::mutual_information` floors its `f64` value before
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
//!
//! ## Layout
//!
//! `batch` (a batch grouped by pixel and the layers' kernels), `net` (the MLP's passes and
//! update), `adam`, `heads` (each loss term's value and logit gradient), `stepper` (the
//! engine's `Step`: one objective per step) and `eval` (predictions, losses, confidences).

mod adam;
mod aligned;
mod batch;
mod eval;
mod heads;
mod net;
mod stepper;
#[cfg(test)]
mod tests;

pub(crate) use eval::outputs;
pub(crate) use stepper::Native;
