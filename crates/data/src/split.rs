//! The forget / remain split: a seeded random `fraction` of the training samples of one class
//! is to be forgotten; every other training sample remains. The test set is never split.

use rand::seq::index;

use crate::{DataError, rng::Rng};

/// Which samples to forget: `floor(fraction * n_class)` samples of `class`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForgetSpec {
    pub class: u8,
    pub fraction: f64,
}

/// Indices into the training set, each list ascending; together they cover it exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetSplit {
    pub forget: Vec<usize>,
    pub remain: Vec<usize>,
}

/// Draws the split from `rng`.
pub fn forget_split(
    labels: &[u8],
    spec: &ForgetSpec,
    rng: &mut Rng,
) -> Result<ForgetSplit, DataError> {
    if !(spec.fraction > 0.0 && spec.fraction <= 1.0) {
        return Err(DataError::Split(format!("fraction {} is outside (0, 1]", spec.fraction)));
    }
    let of_class: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == spec.class).collect();
    let k = (spec.fraction * of_class.len() as f64).floor() as usize;
    if k == 0 {
        return Err(DataError::Split(format!(
            "class {} has {} training samples, so a fraction of {} forgets none; choose another class or a larger fraction",
            spec.class,
            of_class.len(),
            spec.fraction
        )));
    }
    let mut forget: Vec<usize> =
        index::sample(rng, of_class.len(), k).into_iter().map(|j| of_class[j]).collect();
    forget.sort_unstable();
    let mut is_forget = vec![false; labels.len()];
    for &i in &forget {
        is_forget[i] = true;
    }
    let remain = (0..labels.len()).filter(|&i| !is_forget[i]).collect();
    Ok(ForgetSplit { forget, remain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn labels() -> Vec<u8> {
        (0..1000).map(|i| (i * 7 % 10) as u8).collect()
    }

    #[test]
    fn sizes_disjointness_and_class() {
        let labels = labels();
        let spec = ForgetSpec { class: 3, fraction: 0.75 };
        let s = forget_split(&labels, &spec, &mut stream(0, "split")).unwrap();
        assert_eq!((s.forget.len(), s.remain.len()), (75, 925));
        assert!(s.forget.iter().all(|&i| labels[i] == 3));
        let mut all: Vec<_> = s.forget.iter().chain(&s.remain).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(s.forget.is_sorted() && s.remain.is_sorted());
    }

    #[test]
    fn floor_of_fraction() {
        let labels = labels(); // 100 samples of each class
        let spec = ForgetSpec { class: 5, fraction: 0.333 };
        let s = forget_split(&labels, &spec, &mut stream(0, "split")).unwrap();
        assert_eq!(s.forget.len(), 33);
    }

    #[test]
    fn deterministic_per_seed() {
        let labels = labels();
        let spec = ForgetSpec { class: 3, fraction: 0.5 };
        let draw = |seed| forget_split(&labels, &spec, &mut stream(seed, "split")).unwrap();
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1).forget, draw(2).forget);
    }

    #[test]
    fn rejects_empty_and_bad_fractions() {
        let labels = labels();
        let err = |class, fraction| {
            forget_split(&labels, &ForgetSpec { class, fraction }, &mut stream(0, "split"))
                .unwrap_err()
                .to_string()
        };
        assert!(err(3, 0.001).contains("forgets none"));
        assert!(err(3, 1.5).contains("outside (0, 1]"));
        assert!(err(3, f64::NAN).contains("outside (0, 1]"));
    }
}
