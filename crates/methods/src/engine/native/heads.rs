//! The loss heads: each term's value over a batch's logits and its gradient with respect to
//! them, written out (softmax cross-entropy, distillation, the MI estimate), in `f32` like
//! PyTorch with `f64` totals, and no subnormal number made.

use super::adam::floored;
use crate::mi::EPS;

/// A loss gradient entry (of a logit) below this is zero.
pub(super) const LOGIT_GRAD_FLOOR: f32 = 1.0 / (1u128 << 80) as f32;
/// `exp(x)` is taken as zero below this: `exp(-83)` is 9e-37, so neither it nor its quotient
/// by a softmax sum (at most the number of classes) is subnormal.
pub(super) const EXP_CUTOFF: f32 = -83.0;

/// `exp(x)`, or zero below [`EXP_CUTOFF`].
#[inline(always)]
pub(super) fn exp_normal(x: f32) -> f32 {
    if x < EXP_CUTOFF { 0.0 } else { x.exp() }
}

/// Softmax of each row of `logits` (`classes` wide) in `f32`, like `torch.softmax`, but with
/// an `exp` below [`EXP_CUTOFF`] taken as zero (module doc: Subnormals).
pub(super) fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f32> {
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
pub(super) fn cross_entropy(
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
pub(super) fn distill(
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
pub(super) fn mutual_information(
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
