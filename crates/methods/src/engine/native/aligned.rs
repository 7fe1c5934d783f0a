//! `f32` buffers that start on a cache line.

use std::ops::{Deref, DerefMut};

/// Bytes in a cache line on x86-64 and most ARM cores.
const LINE: usize = 64;

/// A fixed-length `[f32]` whose first element starts a 64-byte cache line, so that a matrix
/// row of a multiple of 16 floats occupies whole lines and no vector load of it straddles
/// two. (The allocator aligns a `Vec<f32>` to 16 bytes only: a 512-byte weight row then
/// spans nine lines, and every other 32-byte load, every 64-byte one, is split.)
///
/// Safe code: the buffer is over-allocated by a line and the slice starts where the line
/// does. A clone allocates afresh and aligns again.
#[derive(Debug, Default)]
pub(super) struct Aligned {
    buf: Vec<f32>,
    start: usize,
    len: usize,
}

impl Aligned {
    pub(super) fn zeros(len: usize) -> Self {
        let buf = vec![0.0; len + LINE / 4 - 1];
        let start = (buf.as_ptr() as usize).wrapping_neg() % LINE / 4;
        Self { buf, start, len }
    }

    pub(super) fn from_slice(values: &[f32]) -> Self {
        let mut aligned = Self::zeros(values.len());
        aligned.copy_from_slice(values);
        aligned
    }

    /// Resizes to `len` zeros (reallocating only to grow).
    pub(super) fn reset(&mut self, len: usize) {
        if len + LINE / 4 - 1 > self.buf.len() {
            *self = Self::zeros(len);
        } else {
            self.len = len;
            self.fill(0.0);
        }
    }
}

impl Clone for Aligned {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl Deref for Aligned {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[self.start..self.start + self.len]
    }
}

impl DerefMut for Aligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[self.start..self.start + self.len]
    }
}

impl<'a> IntoIterator for &'a Aligned {
    type Item = &'a f32;
    type IntoIter = std::slice::Iter<'a, f32>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Equal when the values are: where each buffer starts in its allocation does not count.
impl PartialEq for Aligned {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
