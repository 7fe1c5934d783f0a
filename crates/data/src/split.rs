//! The forget / remain split: a seeded random `fraction` of the training samples of one class
//! (part of a class, or the whole class with fraction 1), or of the whole training set (a
//! random subset across classes), is to be forgotten; every other training sample remains.
//! The test set is never split. Or a set chosen beforehand ([`Chosen`]: the examples a
//! population of models memorized most, `crate::memorization`), forgotten whole.

use std::sync::Arc;

use rand::seq::index;

use crate::{DataError, rng::Rng};

/// Which samples to forget: `floor(fraction * n)` of the `n` training samples of `class`, or
/// of all `n` training samples when `class` is `None`; or, with `chosen`, exactly those
/// (`class` then only says where they were chosen from, and `fraction` is 1).
#[derive(Debug, Clone, PartialEq)]
pub struct ForgetSpec {
    pub class: Option<u8>,
    pub fraction: f64,
    pub chosen: Option<Chosen>,
}

/// A forget set fixed before any seed draws: training-set indices, ascending, with the name
/// and the key line that tell it apart (what chose it, e.g. a memorization population's key).
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// `memorization-high-600`.
    pub name: String,
    /// What determines the set, for cache keys: `memorization=high size=600 population=<hash>`.
    pub key: String,
    pub indices: Arc<[usize]>,
}

impl ForgetSpec {
    /// Part of one class (the notebook's scenario; fraction 1 forgets the whole class).
    pub fn class(class: u8, fraction: f64) -> Self {
        Self { class: Some(class), fraction, chosen: None }
    }

    /// A random subset across every class.
    pub fn random(fraction: f64) -> Self {
        Self { class: None, fraction, chosen: None }
    }

    /// The scenario's name: `class3-0.75`, `class3-all`, `random-0.1`, or a chosen set's
    /// (`memorization-high-600`, `class3-memorization-high-600`).
    pub fn name(&self) -> String {
        match (&self.chosen, self.class) {
            (Some(c), Some(class)) => format!("class{class}-{}", c.name),
            (Some(c), None) => c.name.clone(),
            (None, Some(c)) if self.fraction == 1.0 => format!("class{c}-all"),
            (None, Some(c)) => format!("class{c}-{}", self.fraction),
            (None, None) => format!("random-{}", self.fraction),
        }
    }
}

/// The fewest training samples a split may leave to remain: the membership-inference attack
/// fits on one half of them and measures on the other, so it needs two (retrain and every
/// method training on the remain set need one). The forget set needs one, to measure an
/// accuracy on.
pub const MIN_REMAIN: usize = 2;

/// Indices into the training set, each list ascending; together they cover it (or a shadow's
/// half of it: [`shadow_split`]) exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgetSplit {
    pub forget: Vec<usize>,
    pub remain: Vec<usize>,
}

/// The scenario's population, ascending: the training samples of `spec.class`, or every
/// training sample for a random subset. The forget set is drawn from it.
/// A chosen set is its own population.
pub fn population(labels: &[u8], spec: &ForgetSpec) -> Vec<usize> {
    if let Some(c) = &spec.chosen {
        return c.indices.to_vec();
    }
    (0..labels.len()).filter(|&i| spec.class.is_none_or(|c| labels[i] == c)).collect()
}

/// Draws the split from `rng`.
pub fn forget_split(
    labels: &[u8],
    spec: &ForgetSpec,
    rng: &mut Rng,
) -> Result<ForgetSplit, DataError> {
    if let Some(c) = &spec.chosen {
        return chosen_within(labels.len(), &(0..labels.len()).collect::<Vec<_>>(), c);
    }
    if !(spec.fraction > 0.0 && spec.fraction <= 1.0) {
        return Err(DataError::Split(format!("fraction {} is outside (0, 1]", spec.fraction)));
    }
    let of_class = population(labels, spec);
    let k = (spec.fraction * of_class.len() as f64).floor() as usize;
    if k == 0 {
        let pool = match spec.class {
            Some(c) => format!("class {c}"),
            None => "the training set".to_owned(),
        };
        return Err(DataError::Split(format!(
            "{pool} has {} samples, so a fraction of {} forgets none; choose a larger fraction{}",
            of_class.len(),
            spec.fraction,
            if spec.class.is_some() { " or another class" } else { "" }
        )));
    }
    let mut forget: Vec<usize> =
        index::sample(rng, of_class.len(), k).into_iter().map(|j| of_class[j]).collect();
    forget.sort_unstable();
    let mut is_forget = vec![false; labels.len()];
    for &i in &forget {
        is_forget[i] = true;
    }
    let remain: Vec<usize> = (0..labels.len()).filter(|&i| !is_forget[i]).collect();
    if remain.len() < MIN_REMAIN {
        let what = match spec.class {
            Some(c) => format!("{k} samples of class {c}"),
            None => format!("{k} samples"),
        };
        return Err(DataError::Split(format!(
            "forgetting {what} of the {} training samples leaves {} to remain, and at least \
             {MIN_REMAIN} must (the methods train on them; the membership-inference attack fits \
             on one half and measures on the other); choose a smaller fraction{}",
            labels.len(),
            remain.len(),
            if spec.class.is_some() { " or use more training samples" } else { " or a class" }
        )));
    }
    Ok(ForgetSplit { forget, remain })
}

/// The split a run of `seed` trains with: the seed's own (stream `split`), or its U-LiRA
/// shadow's ([`shadow_split`]).
pub fn run_split(
    labels: &[u8],
    spec: &ForgetSpec,
    seed: u64,
    shadow: Option<usize>,
) -> Result<ForgetSplit, DataError> {
    match shadow {
        None => forget_split(labels, spec, &mut crate::rng::stream(seed, "split")),
        Some(k) => shadow_split(labels, spec, seed, k),
    }
}

/// The split of U-LiRA's shadow `shadow` of `seed`: a uniformly random half of the training
/// set (`floor(n / 2)` samples, stream `shadow/<k>/half`), and within it a forget set drawn by
/// `spec` as [`forget_split`] draws one from the whole set (stream `shadow/<k>/split`); the rest
/// of the half remains. The other half is never seen.
pub fn shadow_split(
    labels: &[u8],
    spec: &ForgetSpec,
    seed: u64,
    shadow: usize,
) -> Result<ForgetSplit, DataError> {
    let mut half_rng = crate::rng::stream(seed, &format!("shadow/{shadow}/half"));
    let half = crate::rng::subset(&mut half_rng, labels.len(), labels.len() / 2);
    if let Some(c) = &spec.chosen {
        return chosen_within(labels.len(), &half, c);
    }
    let half_labels: Vec<u8> = half.iter().map(|&i| labels[i]).collect();
    let mut split_rng = crate::rng::stream(seed, &format!("shadow/{shadow}/split"));
    let within = forget_split(&half_labels, spec, &mut split_rng)?;
    let back = |v: Vec<usize>| v.into_iter().map(|j| half[j]).collect();
    Ok(ForgetSplit { forget: back(within.forget), remain: back(within.remain) })
}

/// The split of the training samples `seen` (ascending) by a chosen set: the chosen among
/// them are forgotten, the others remain.
fn chosen_within(n: usize, seen: &[usize], c: &Chosen) -> Result<ForgetSplit, DataError> {
    if let Some(&i) = c.indices.iter().find(|&&i| i >= n) {
        return Err(DataError::Split(format!(
            "{} holds training example {i}, and the training set has {n}",
            c.name
        )));
    }
    let (forget, remain): (Vec<usize>, Vec<usize>) =
        seen.iter().partition(|i| c.indices.binary_search(i).is_ok());
    if forget.is_empty() || remain.len() < MIN_REMAIN {
        return Err(DataError::Split(format!(
            "{} leaves {} of {} samples to forget and {} to remain; at least 1 and \
             {MIN_REMAIN} must",
            c.name,
            forget.len(),
            seen.len(),
            remain.len()
        )));
    }
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
        let spec = ForgetSpec::class(3, 0.75);
        let s = forget_split(&labels, &spec, &mut stream(0, "split")).unwrap();
        assert_eq!((s.forget.len(), s.remain.len()), (75, 925));
        assert!(s.forget.iter().all(|&i| labels[i] == 3));
        let mut all: Vec<_> = s.forget.iter().chain(&s.remain).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(s.forget.is_sorted() && s.remain.is_sorted());
    }

    #[test]
    fn a_shadow_forgets_within_its_own_half() {
        let labels = labels();
        let spec = ForgetSpec::class(3, 0.75);
        let a = shadow_split(&labels, &spec, 0, 0).unwrap();
        assert_eq!(a.forget.len() + a.remain.len(), 500);
        let threes = a.forget.iter().chain(&a.remain).filter(|&&i| labels[i] == 3).count();
        assert_eq!(a.forget.len(), threes * 3 / 4, "75% of the half's threes");
        assert!(a.forget.iter().all(|&i| labels[i] == 3) && a.forget.is_sorted());
        assert!(a.remain.is_sorted() && a.forget.iter().all(|i| !a.remain.contains(i)));
        let b = shadow_split(&labels, &spec, 0, 1).unwrap();
        assert_ne!(a.remain, b.remain, "each shadow its own half");
        assert_eq!(a, shadow_split(&labels, &spec, 0, 0).unwrap());
    }

    #[test]
    fn floor_of_fraction() {
        let labels = labels(); // 100 samples of each class
        let spec = ForgetSpec::class(5, 0.333);
        let s = forget_split(&labels, &spec, &mut stream(0, "split")).unwrap();
        assert_eq!(s.forget.len(), 33);
    }

    #[test]
    fn deterministic_per_seed() {
        let labels = labels();
        let spec = ForgetSpec::class(3, 0.5);
        let draw = |seed| forget_split(&labels, &spec, &mut stream(seed, "split")).unwrap();
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1).forget, draw(2).forget);
    }

    #[test]
    fn rejects_empty_and_bad_fractions() {
        let labels = labels();
        let err = |class, fraction| {
            forget_split(&labels, &ForgetSpec::class(class, fraction), &mut stream(0, "split"))
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(3, 0.001).contains("class 3 has 100 samples, so a fraction of 0.001 forgets none")
        );
        assert!(err(3, 1.5).contains("outside (0, 1]"));
        assert!(err(3, f64::NAN).contains("outside (0, 1]"));
    }

    #[test]
    fn a_whole_class_and_a_random_subset_across_classes() {
        let labels = labels();
        let whole = forget_split(&labels, &ForgetSpec::class(4, 1.0), &mut stream(0, "split"));
        let whole = whole.unwrap();
        assert_eq!(whole.forget, (0..1000).filter(|&i| labels[i] == 4).collect::<Vec<_>>());
        let random = forget_split(&labels, &ForgetSpec::random(0.1), &mut stream(0, "split"));
        let random = random.unwrap();
        assert_eq!((random.forget.len(), random.remain.len()), (100, 900));
        let mut classes: Vec<u8> = random.forget.iter().map(|&i| labels[i]).collect();
        classes.sort_unstable();
        classes.dedup();
        assert!(classes.len() >= 8, "drawn across classes: {classes:?}");
        let everything = forget_split(&labels, &ForgetSpec::random(1.0), &mut stream(0, "split"));
        let err = everything.unwrap_err().to_string();
        assert!(
            err.contains("forgetting 1000 samples of the 1000 training samples leaves 0 to remain")
                && err.contains("at least 2 must"),
            "{err}"
        );
        let threes = vec![3u8; 10];
        let split = |fraction| {
            forget_split(&threes, &ForgetSpec::class(3, fraction), &mut stream(0, "split"))
        };
        assert_eq!(split(0.8).unwrap().remain.len(), MIN_REMAIN, "the least that may remain");
        let err = split(0.9).unwrap_err().to_string();
        assert!(err.contains("9 samples of class 3 of the 10 training samples leaves 1"), "{err}");
        let none = forget_split(&labels, &ForgetSpec::random(0.0005), &mut stream(0, "split"));
        assert!(none.unwrap_err().to_string().contains("the training set has 1000 samples"));
        let names =
            [ForgetSpec::class(3, 0.75), ForgetSpec::class(3, 1.0), ForgetSpec::random(0.1)]
                .map(|s| s.name());
        assert_eq!(names, ["class3-0.75", "class3-all", "random-0.1"]);
    }

    #[test]
    fn a_chosen_set_is_forgotten_whole_and_within_a_shadow_s_half() {
        let labels = labels();
        let ids: Vec<usize> = (5..1000).step_by(25).collect();
        let chosen = Chosen {
            name: "memorization-high-40".into(),
            key: "k".into(),
            indices: ids.clone().into(),
        };
        let spec = ForgetSpec { class: None, fraction: 1.0, chosen: Some(chosen.clone()) };
        let s = forget_split(&labels, &spec, &mut stream(0, "split")).unwrap();
        assert_eq!(s.forget, ids);
        assert_eq!(s.remain.len(), 960);
        assert_eq!(population(&labels, &spec), ids);
        let a = shadow_split(&labels, &spec, 0, 0).unwrap();
        let plain = shadow_split(&labels, &ForgetSpec::random(0.5), 0, 0).unwrap();
        let mut half = [&plain.forget[..], &plain.remain[..]].concat();
        half.sort_unstable();
        let want: Vec<usize> = ids.iter().copied().filter(|i| half.contains(i)).collect();
        assert!(!want.is_empty() && want.len() < 40);
        assert_eq!(a.forget, want, "the chosen in the shadow's half, the same half as ever");
        assert_eq!(a.forget.len() + a.remain.len(), 500);
        assert_eq!(spec.name(), "memorization-high-40");
        let of3 = ForgetSpec { class: Some(3), ..spec.clone() };
        assert_eq!(of3.name(), "class3-memorization-high-40");
        let far = Chosen { indices: vec![1000].into(), ..chosen };
        let far = ForgetSpec { chosen: Some(far), ..spec };
        let err = forget_split(&labels, &far, &mut stream(0, "split")).unwrap_err().to_string();
        assert!(
            err.contains("holds training example 1000, and the training set has 1000"),
            "{err}"
        );
    }
}
