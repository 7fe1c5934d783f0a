//! The plug-in estimate of the mutual information between a classifier's output and a binary
//! group label, as the notebook computes it (`compute_mutual_information_multiclass`).
//!
//! With `p = clamp(softmax(logits), eps, 1 - eps)`, `eps = 1e-10`, over `N` rows of `C` classes:
//!
//! ```text
//! p_z1 = mean(z),   p_z0 = 1 - p_z1
//! j1[c] = sum_i p[i,c] z[i] / N,   j0[c] = sum_i p[i,c] (1 - z[i]) / N,   p_y = j0 + j1
//! MI = sum_c j1[c] ln(j1[c] / (p_y[c] p_z1 + eps) + eps) + j0[c] ln(j0[c] / (p_y[c] p_z0 + eps) + eps)
//! ```
//!
//! The `eps` placement (inside the denominators and added after the ratio) is the notebook's;
//! it keeps the estimate and its gradient finite when a class has no mass.

use tch::{Kind, Tensor};

pub const EPS: f64 = 1e-10;

/// The MI batch of MI-unlearn, `[remain; forget]` then the remain batch again, and its group
/// labels: `Z = 0` for the first `nr + nf` rows, `Z = 1` for the last `nr`.
pub fn mi_batch(remain: &Tensor, forget: &Tensor) -> (Tensor, Tensor) {
    let (nr, nf) = (remain.size()[0], forget.size()[0]);
    let device = remain.device();
    let z = Tensor::cat(
        &[
            Tensor::zeros([nr + nf], (Kind::Float, device)),
            Tensor::ones([nr], (Kind::Float, device)),
        ],
        0,
    );
    (Tensor::cat(&[remain, forget, remain], 0), z)
}

/// `I(Y_hat; Z)` from `logits` `[N, C]` and `z` `[N]` (float, each 0 or 1); a scalar tensor
/// that carries gradients to `logits`.
pub fn mutual_information(logits: &Tensor, z: &Tensor) -> Tensor {
    let probs = logits.softmax(1, Kind::Float).clamp(EPS, 1.0 - EPS);
    let n = probs.size()[0] as f64;
    let p_z1 = z.mean(Kind::Float);
    let p_z0 = p_z1.ones_like() - &p_z1;
    let z = z.unsqueeze(1);
    let joint = |weight: &Tensor| (&probs * weight).sum_dim_intlist(0, false, Kind::Float) / n;
    let j1 = joint(&z);
    let j0 = joint(&(z.ones_like() - &z));
    let p_y = &j1 + &j0;
    let term = |j: &Tensor, p_z: &Tensor| j * ((j / (&p_y * p_z + EPS)) + EPS).log();
    term(&j1, &p_z1).sum(Kind::Float) + term(&j0, &p_z0).sum(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(rows: &[[f32; 2]]) -> Tensor {
        Tensor::from_slice(rows.as_flattened()).view([rows.len() as i64, 2])
    }

    fn mi_of(logits: &Tensor, z: &[f32]) -> f64 {
        mutual_information(logits, &Tensor::from_slice(z)).double_value(&[])
    }

    #[test]
    fn zero_when_groups_look_alike() {
        // Same output distribution in both groups (rows repeated across groups).
        let logits = tensor(&[[0.3, -1.2], [2.0, 0.5], [0.3, -1.2], [2.0, 0.5]]);
        let mi = mi_of(&logits, &[0., 0., 1., 1.]);
        assert!(mi.abs() < 1e-6, "{mi}");
        // The notebook's layout, [remain; forget] then remain again: a forget row that the
        // model treats differently makes the groups distinguishable.
        let mi = mi_of(&tensor(&[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), &[0., 0., 1.]);
        assert!(mi > 0.01, "{mi}");
    }

    #[test]
    fn matches_hand_computation() {
        // Probabilities [0.5, 0.5], [0.9, 0.1], [0.2, 0.8] with z = 0, 0, 1:
        // j1 = [0.2, 0.8] / 3, j0 = [1.4, 0.6] / 3, p_y = [1.6, 1.4] / 3, p_z1 = 1/3, so
        // MI = sum j ln(j / (p_y p_z)) = 0.116879633 (the eps terms are below 1e-9 here).
        let logits = tensor(&[[0.0, 0.0], [0.9f32.ln(), 0.1f32.ln()], [0.2f32.ln(), 0.8f32.ln()]]);
        let mi = mi_of(&logits, &[0., 0., 1.]);
        assert!((mi - 0.116_879_633).abs() < 1e-6, "{mi}");
    }

    #[test]
    fn ln2_when_output_reveals_group() {
        // Saturated softmax: the clamp is active, and MI is log 2 bits' worth in nats.
        let logits = tensor(&[[40., -40.], [40., -40.], [-40., 40.], [-40., 40.]]);
        let mi = mi_of(&logits, &[0., 0., 1., 1.]);
        assert!((mi - std::f64::consts::LN_2).abs() < 1e-6, "{mi}");
    }

    #[test]
    fn gradients_are_finite() {
        for scale in [1.0f32, 100.0] {
            let logits =
                (Tensor::from_slice(&[0.5f32, -1., 2., 0., 1., -3., 0.2, 0.1, -0.3, 4., -4., 0.])
                    .view([4, 3])
                    * scale as f64)
                    .set_requires_grad(true);
            let mi = mutual_information(&logits, &Tensor::from_slice(&[0f32, 0., 1., 1.]));
            mi.backward();
            let grad = logits.grad();
            assert!(bool::try_from(grad.isfinite().all()).unwrap(), "scale {scale}: {grad}");
            if scale == 1.0 {
                assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
            }
        }
    }
}
