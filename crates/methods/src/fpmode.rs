//! The CPU's subnormal handling for the native engine's training steps: flush-to-zero and
//! denormals-are-zero, what `torch.set_flush_denormal(True)` turns on in PyTorch.
//!
//! Why: late in a long run, well-classified images get softmax probabilities below
//! `f32::MIN_POSITIVE` (1.2e-38), so the loss gradient and everything the backward pass
//! builds from it turn subnormal; so do the Adam moments of a unit that ReLU never lets
//! through (`0.9 * m` rounds back to `m` at the smallest subnormal, so they stay there).
//! Intel CPUs take a microcode assist, about a hundred cycles, for each vector instruction that
//! reads or writes a subnormal: on a Xeon a training epoch took 1.2 s instead of 0.5 s, and
//! late epochs of a 100-epoch run slowed down further. AMD's Zen cores handle subnormals
//! without assists, which is why this went unnoticed at first.
//!
//! What changes: a value below 1.2e-38 in magnitude reads and is written as zero. Such a
//! value moves a weight by far less than its last bit (an Adam step of a subnormal moment is
//! `lr * m / eps`, about 1e-33), so runs keep their numbers (checked against runs from before
//! the change: docs/performance.md). The mode is per thread and restored when the guard
//! drops, so libtorch and evaluation (which must equal libtorch's bit for bit) never see it.
//!
//! Only x86-64 has it here (its MXCSR register, bits 15 and 6); elsewhere the guard does
//! nothing and subnormals are kept.
#![allow(unsafe_code)]

/// Flush-to-zero and denormals-are-zero on this thread while alive; the previous mode comes
/// back on drop.
#[derive(Debug)]
#[must_use = "the mode lasts as long as the guard"]
pub(crate) struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

/// MXCSR's flush-to-zero (results) and denormals-are-zero (operands) bits.
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

impl FlushSubnormals {
    pub(crate) fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read_mxcsr();
            write_mxcsr(saved | FTZ_DAZ);
            Self { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self {}
    }
}

impl Drop for FlushSubnormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut value = 0u32;
    // SAFETY: stmxcsr stores the 4-byte MXCSR into `value`, a valid, aligned local.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut value, options(nostack, preserves_flags));
    }
    value
}

/// Sets MXCSR. Only the two subnormal bits ever differ from the value read: the rounding
/// mode and the exception masks stay as Rust expects them.
#[cfg(target_arch = "x86_64")]
fn write_mxcsr(value: u32) {
    // SAFETY: ldmxcsr loads 4 bytes from `value`, a valid, aligned local; the value is the
    // current MXCSR with at most FTZ and DAZ changed, which raises no exception and leaves
    // rounding to nearest.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &value, options(nostack, preserves_flags, readonly));
    }
}

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    use super::*;

    fn tiny_product() -> f32 {
        black_box(1e-20f32) * black_box(1e-20f32)
    }

    #[test]
    fn subnormals_flush_inside_the_guard_only() {
        assert!(tiny_product().is_subnormal(), "IEEE by default");
        {
            let _guard = FlushSubnormals::new();
            if cfg!(target_arch = "x86_64") {
                assert_eq!(tiny_product(), 0.0, "flushed result");
                let subnormal = black_box(f32::from_bits(1));
                assert_eq!(subnormal * black_box(1.0), 0.0, "subnormal operand read as zero");
                assert_eq!(black_box(3e-30f32) * black_box(2.0), 6e-30, "normal values kept");
            }
            {
                let _nested = FlushSubnormals::new();
            }
            if cfg!(target_arch = "x86_64") {
                assert_eq!(tiny_product(), 0.0, "a nested guard restores the outer mode");
            }
        }
        assert!(tiny_product().is_subnormal(), "restored on drop");
    }
}
