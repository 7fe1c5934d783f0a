//! A method's schedule, typed: epoch counts and batch sizes ([`Count`]) and learning rates
//! ([`Rate`]), each checked when a section is read, so no code checks them by field name.

use std::fmt;

use serde::Serialize;

/// The largest epoch count or batch size a method may ask for: far beyond any real run (a
/// million MNIST epochs is months of computing), so a bigger value is a typo, caught before
/// anything is loaded or allocated.
pub const MAX_COUNT: usize = 1_000_000;

/// An epoch count or a batch size: a whole number from 1 to [`MAX_COUNT`], checked when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "i64")]
pub struct Count(usize);

impl<'de> serde::Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Whole;
        impl serde::de::Visitor<'_> for Whole {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number >= 1")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Count, E> {
                Count::try_from(n).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Count, E> {
                Count::try_from(i64::try_from(n).unwrap_or(i64::MAX)).map_err(E::custom)
            }
        }
        d.deserialize_i64(Whole)
    }
}

impl Count {
    /// `n`, which must be 1 to [`MAX_COUNT`] (a method's default).
    pub const fn new(n: usize) -> Self {
        assert!(n >= 1 && n <= MAX_COUNT, "a count is 1 to MAX_COUNT");
        Self(n)
    }

    pub const fn get(self) -> usize {
        self.0
    }
}

impl TryFrom<i64> for Count {
    type Error = String;

    fn try_from(n: i64) -> Result<Self, String> {
        match usize::try_from(n) {
            Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(Self(n)),
            _ if n < 1 => Err(format!("is {n}; it must be a whole number >= 1")),
            _ => Err(format!("is {n}; it must be at most {MAX_COUNT}")),
        }
    }
}

impl From<Count> for i64 {
    fn from(c: Count) -> i64 {
        c.0 as i64
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A learning rate: a positive, finite number, checked when read.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(into = "f64")]
pub struct Rate(f64);

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Positive;
        impl serde::de::Visitor<'_> for Positive {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive number")
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Rate, E> {
                Rate::try_from(x).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Rate, E> {
                Rate::try_from(n as f64).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Rate, E> {
                Rate::try_from(n as f64).map_err(E::custom)
            }
        }
        d.deserialize_f64(Positive)
    }
}

impl Rate {
    /// `lr`, which must be positive and finite (a method's default).
    pub const fn new(lr: f64) -> Self {
        assert!(lr > 0.0 && lr.is_finite(), "a learning rate is positive");
        Self(lr)
    }

    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Rate {
    type Error = String;

    fn try_from(lr: f64) -> Result<Self, String> {
        if lr > 0.0 && lr.is_finite() {
            Ok(Self(lr))
        } else {
            Err(format!("is {lr}; a learning rate must be positive"))
        }
    }
}

impl From<Rate> for f64 {
    fn from(r: Rate) -> f64 {
        r.0
    }
}
