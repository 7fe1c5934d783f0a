//! Cell formats for `serialize_with`: numbers in Rust's shortest round-trip form, times
//! with two decimals, tiny optional values in scientific notation, absent values empty.

use serde::Serializer;

/// Shortest round-trip form, never an exponent.
pub(crate) fn num<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// As [`num`], but in scientific notation for a magnitude below 1e-6 (a p-value of
/// 1e-300 would otherwise take 300 digits); absent as an empty cell.
pub(crate) fn opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) if *v != 0.0 && v.abs() < 1e-6 => s.collect_str(&format_args!("{v:e}")),
        Some(v) => s.collect_str(v),
        None => s.serialize_str(""),
    }
}

/// Two decimals (times and speed-ups).
pub(crate) fn two<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.2}"))
}

pub(crate) fn opt_two<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(&format_args!("{v:.2}")),
        None => s.serialize_str(""),
    }
}
