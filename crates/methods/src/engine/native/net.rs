//! The MLP as plain buffers ([`Net`]): its forward pass, its backward pass into every
//! parameter's gradient, and the update that applies an Adam step to them.

use model::Classifier;

#[cfg(test)]
use super::adam::Adam;
use super::adam::AdamStep;
use super::aligned::Aligned;
use super::batch::{Batch, GROUP, combine, combine_rows, nonzeros, nonzeros_of};
use crate::sparse::SparseRows;

/// A parameter tensor with its gradient and Adam's two moments, all flat.
#[derive(Debug, Clone)]
pub(super) struct Param {
    pub(super) value: Aligned,
    pub(super) grad: Aligned,
    pub(super) exp_avg: Aligned,
    pub(super) exp_avg_sq: Aligned,
}

impl Param {
    pub(super) fn new(value: &[f32]) -> Self {
        let n = value.len();
        Self {
            value: Aligned::from_slice(value),
            grad: Aligned::zeros(n),
            exp_avg: Aligned::zeros(n),
            exp_avg_sq: Aligned::zeros(n),
        }
    }
}

/// One linear layer `fan_in -> fan_out`. The weight is stored transposed, `[fan_in][fan_out]`,
/// so that the forward pass and the weight gradient are weighted sums of its rows;
/// `weight_out_in` is the `[fan_out][fan_in]` copy that the input gradient needs, refreshed
/// after every update (but for the first layer, whose input gradient is never computed).
#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub(super) fan_in: usize,
    pub(super) fan_out: usize,
    pub(super) weight: Param,
    pub(super) bias: Param,
    pub(super) weight_out_in: Aligned,
}

impl Layer {
    pub(super) fn refresh(&mut self) {
        transpose(&self.weight.value, self.fan_in, self.fan_out, &mut self.weight_out_in);
    }
}

/// `src` is `[rows][cols]`; writes `[cols][rows]` into `dst`.
pub(super) fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    for (r, row) in src.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// The MLP as plain buffers.
#[derive(Debug, Clone)]
pub(crate) struct Net {
    pub(super) layers: Vec<Layer>,
    /// `background * sum_p W1[:, p]`: the first layer's output for an all-background image,
    /// before the bias; refreshed with the weights.
    pub(super) base: Vec<f32>,
    /// `sum_p W1[:, p]`, summed as the backward pass's Adam updates the rows (in row order,
    /// as [`Net::refresh_base`] would), so that the update need not read the weights again.
    colsum: Vec<f32>,
    /// One row of the first layer's weight gradient, when Adam takes each as it comes.
    scratch: Aligned,
    pub(super) background: f32,
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
                    weight: Param::new(&in_out),
                    bias: Param::new(&bias),
                    weight_out_in: Aligned::from_slice(&out_in),
                }
            })
            .collect();
        let mut net = Self {
            layers,
            base: Vec::new(),
            colsum: Vec::new(),
            scratch: Aligned::default(),
            background,
        };
        net.refresh_base();
        net
    }

    pub(super) fn refresh_base(&mut self) {
        let first = &self.layers[0];
        self.colsum.clear();
        self.colsum.resize(first.fan_out, 0.0);
        for row in first.weight.value.chunks_exact(first.fan_out) {
            for (s, w) in self.colsum.iter_mut().zip(row) {
                *s += w;
            }
        }
        self.base_from_colsum();
    }

    /// `base` from `colsum`, when the backward pass has summed the updated rows already.
    fn base_from_colsum(&mut self) {
        self.base = self.colsum.iter().map(|s| self.background * s).collect();
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

    pub(super) fn classes(&self) -> usize {
        self.layers.last().expect("an MLP has layers").fan_out
    }

    /// The sum of `|p|` over every parameter.
    /// (A reported value only, so summed in eight lanes, which vectorises.)
    pub(super) fn l1_norm(&self) -> f64 {
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

    /// Runs rows `ids` of `x` through the network: `acts[l]` receives layer `l`'s output for
    /// every row (ReLU applied but for the last layer, whose output is the logits). A row's
    /// first layer sums its nonzero pixels' weight rows in pixel order ([`combine_rows`]), so its
    /// logits are the same bits in any batch.
    ///
    /// With `group`, the batch is grouped by pixel on the way ([`Batch`]), for the backward
    /// pass.
    pub(super) fn forward(
        &self,
        x: &SparseRows,
        ids: &[usize],
        acts: &mut Vec<Vec<f32>>,
        mut group: Option<&mut Batch>,
    ) {
        let mut order = Vec::new();
        let n = ids.len();
        if let Some(batch) = group.as_deref_mut() {
            batch.start(x.dim, n);
        }
        acts.resize_with(self.layers.len(), Vec::new);
        let last = self.layers.len() - 1;
        let mut terms = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let (before, after) = acts.split_at_mut(l);
            let out = &mut after[0];
            out.clear();
            out.resize(n * layer.fan_out, 0.0);
            let w = &layer.weight.value;
            if l == 0 {
                let rows = |i: usize| x.row(ids[i]);
                match group.as_deref_mut() {
                    // The grouping by pixel, in row order, a group of rows at a time between
                    // the groups of the sums (its scattered stores drain while they load).
                    Some(batch) => combine_rows(n, rows, w, layer.fan_out, out, &mut order, |g| {
                        batch.fill_rows(x, ids, g * GROUP..((g + 1) * GROUP).min(n));
                    }),
                    None => combine_rows(n, rows, w, layer.fan_out, out, &mut order, |_| {}),
                }
            }
            for (i, o) in out.chunks_exact_mut(layer.fan_out).enumerate() {
                if l == 0 {
                    for (o, base) in o.iter_mut().zip(&self.base) {
                        *o += base;
                    }
                } else {
                    let input = &before[l - 1][i * layer.fan_in..(i + 1) * layer.fan_in];
                    nonzeros(input, &mut terms);
                    combine(&terms, w, o);
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
    /// gradient with respect to the logits (`dlogits`).
    ///
    /// With `first_layer_step`, each row of the first layer's weight gradient is applied by
    /// Adam as soon as it is computed, while it is in cache (the same arithmetic as a separate
    /// pass: see [`Net::update`]).
    ///
    /// `hook` changes each first-layer weight gradient row before that (the other gradients
    /// get it in [`Net::update`]).
    pub(super) fn backward(
        &mut self,
        batch: &Batch,
        acts: &[Vec<f32>],
        dlogits: &[f32],
        first_layer_step: Option<AdamStep>,
        hook: Hook<'_>,
    ) {
        let mut g = Aligned::from_slice(dlogits);
        let background = self.background;
        let mut terms = Vec::new();
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
                self.colsum.clear();
                self.colsum.resize(width, 0.0);
                // With Adam applied row by row, a row of the gradient is all it needs: the
                // whole gradient is kept only for the saliency mask's sums.
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.reset(width);
                for p in 0..value.len() / width {
                    let row = match first_layer_step {
                        Some(_) => &mut scratch[..],
                        None => &mut grad[p * width..(p + 1) * width],
                    };
                    combine(batch.pixel(p), &g, row);
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
                            &mut exp_avg_sq[r.clone()],
                        );
                        for (s, v) in self.colsum.iter_mut().zip(&value[r]) {
                            *s += v;
                        }
                    }
                }
                self.scratch = scratch;
                break;
            }
            let dw = &mut layer.weight.grad;
            // dW[k] = sum_i a_ik g_i over the rows where the input a_ik is nonzero.
            let input = &acts[l - 1];
            let n = input.len() / fan_in;
            for (k, row) in dw.chunks_exact_mut(width).enumerate() {
                let column = input[k..].iter().step_by(fan_in).copied();
                nonzeros_of(column, n, &mut terms);
                combine(&terms, &g, row);
            }
            // The gradient of the layer's input, through the ReLU below it (which passes
            // gradient where its output is positive: torch's threshold_backward).
            let mut below = Aligned::zeros(input.len());
            for ((gi, ai), bi) in g
                .chunks_exact(width)
                .zip(input.chunks_exact(fan_in))
                .zip(below.chunks_exact_mut(fan_in))
            {
                nonzeros(gi, &mut terms);
                combine(&terms, &layer.weight_out_in, bi);
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
    pub(super) fn adam_step(&mut self, adam: &mut Adam) {
        let step = adam.next();
        self.update(step, false, Hook::NONE);
    }

    /// Applies `step` to every parameter (but the first layer's weights when `backward`
    /// already did), each gradient first changed by `hook` (but the first layer's weights',
    /// which `backward` changed), then refreshes what depends on the weights.
    pub(super) fn update(&mut self, step: AdamStep, first_weight_done: bool, hook: Hook<'_>) {
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
        if first_weight_done {
            self.base_from_colsum();
        } else {
            self.refresh_base();
        }
    }
}

/// Per layer, `(weight [in][out], bias)`: 1 where a parameter may change, else 0.
pub(super) type Mask = Vec<(Vec<f32>, Vec<f32>)>;

/// What happens to each gradient between the backward pass and Adam: the L1 penalty's
/// gradient is added (`lambda * sign(p)`, zero at zero, as torch's `abs` backward), then the
/// mask multiplies it. [`Hook::NONE`] leaves the notebook's gradients untouched.
#[derive(Clone, Copy)]
pub(super) struct Hook<'a> {
    pub(super) l1: Option<f32>,
    pub(super) mask: Option<&'a Mask>,
}

impl Hook<'_> {
    pub(super) const NONE: Hook<'static> = Hook { l1: None, mask: None };

    pub(super) fn apply(&self, grad: &mut [f32], value: &[f32], mask: Option<&[f32]>) {
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
