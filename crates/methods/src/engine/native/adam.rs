//! Adam as PyTorch's Python `torch.optim.Adam` computes it, with the floors that keep its
//! moments from going subnormal (the module doc of `engine::native`, "Subnormals").

/// Adam's settings and step count (torch.optim.Adam's defaults).
#[derive(Debug)]
pub(super) struct Adam {
    pub(super) lr: f64,
    pub(super) beta1: f64,
    pub(super) beta2: f64,
    pub(super) eps: f64,
    pub(super) step: i32,
}

impl Adam {
    /// The next step's constants.
    pub(super) fn next(&mut self) -> AdamStep {
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
pub(super) struct AdamStep {
    pub(super) step_size: f32,
    pub(super) bias_correction2_sqrt: f32,
    pub(super) weight: f32,
    pub(super) beta2: f32,
    pub(super) one_minus_beta2: f32,
    pub(super) eps: f32,
}

/// A first Adam moment below this is stored as zero (module doc: Subnormals).
pub(super) const MOMENT_FLOOR: f32 = 1.0 / (1u128 << 100) as f32;
/// A second Adam moment below this is stored as zero.
pub(super) const SQUARE_FLOOR: f32 = MOMENT_FLOOR / (1u32 << 20) as f32;
/// A gradient below this enters Adam's second moment as zero (`0.001 g^2` would be
/// subnormal below about 2^-58).
pub(super) const GRAD_SQUARE_FLOOR: f32 = 1.0 / (1u64 << 56) as f32;

/// `x` if its magnitude is at least `floor`, else zero.
#[inline(always)]
pub(super) fn floored(x: f32, floor: f32) -> f32 {
    if x.abs() < floor { 0.0 } else { x }
}

impl AdamStep {
    pub(super) fn apply(
        &self,
        value: &mut [f32],
        grad: &[f32],
        exp_avg: &mut [f32],
        exp_avg_sq: &mut [f32],
    ) {
        // From about step 16,630 on, `sqrt(1 - beta2^t)` rounds to 1 in f32 and dividing by it
        // returns its dividend exactly (IEEE), so the loop without that division gives the
        // same bits, one division per weight cheaper (most steps of a 100-epoch run).
        if self.bias_correction2_sqrt == 1.0 {
            self.apply_with::<true>(value, grad, exp_avg, exp_avg_sq);
        } else {
            self.apply_with::<false>(value, grad, exp_avg, exp_avg_sq);
        }
    }

    #[inline(always)]
    fn apply_with<const UNIT_CORRECTION: bool>(
        &self,
        value: &mut [f32],
        grad: &[f32],
        exp_avg: &mut [f32],
        exp_avg_sq: &mut [f32],
    ) {
        let k = *self;
        for (((v, &g), m), s) in value.iter_mut().zip(grad).zip(exp_avg).zip(exp_avg_sq) {
            // exp_avg.lerp_(grad, 1 - beta1): weight < 0.5, so m + w (g - m).
            // (m is 0 or at least 2^-100, so `w (g - m)` is subnormal only if g is.)
            *m = floored(*m + k.weight * (g - *m), MOMENT_FLOOR);
            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value = 1 - beta2).
            let gs = floored(g, GRAD_SQUARE_FLOOR);
            *s = floored(*s * k.beta2 + k.one_minus_beta2 * gs * gs, SQUARE_FLOOR);
            let root = if UNIT_CORRECTION { s.sqrt() } else { s.sqrt() / k.bias_correction2_sqrt };
            let denom = root + k.eps;
            // param.addcdiv_(exp_avg, denom, value = -step_size).
            *v += -k.step_size * (*m / denom);
        }
    }
}
