//! The memorization population behind `[forget] memorization`: `models` originals, each on its
//! own random half of the training set (`data::memorization::half`), trained and cached like
//! any job ([`Plan::memorization`]), evaluated on the whole training set; their estimates
//! choose the forget set before the experiment's own jobs are planned ([`prepare`], then the
//! runner trains the plan, then [`choose_set`]: `run::resolve`).

use std::sync::Arc;

use anyhow::{Context as _, bail};
use data::dataset::sha256_hex;
use data::memorization::{Level, Scores, choose, estimate, half, ranked, sides};
use data::split::{Chosen, ForgetSpec};

use crate::execution::device::Resolved;
use crate::execution::plan::Plan;
use crate::experiment::{ConfigError, Experiment};

/// A trained population, its estimates and the set it chose.
#[derive(Debug)]
pub struct Population {
    pub models: usize,
    /// The SHA-256 of its models' keys, one a line: the chosen set's key names it.
    pub key: String,
    pub scores: Scores,
    /// The training labels, for the tables and the gallery.
    pub labels: Vec<u8>,
    /// The scenario with its chosen set.
    pub forget: ForgetSpec,
    /// The gallery: the [`GALLERY`] most memorized training examples, then the as many least,
    /// each as (`most` or `least`, rank from 1, training index) with its 784 grey levels.
    pub gallery: Vec<(&'static str, usize, usize)>,
    pub pixels: Vec<Vec<u8>>,
}

/// Images per side of the gallery.
pub const GALLERY: usize = 24;

impl Population {
    /// `exp` with the forget set this population chose.
    pub fn scenario(&self, exp: &Experiment) -> Experiment {
        Experiment { forget: self.forget.clone(), ..exp.clone() }
    }
}

/// What [`prepare`] checked and planned, for [`choose_set`] once the models are trained.
#[derive(Debug)]
pub struct Prepared {
    pub plan: Plan,
    memorization: crate::experiment::Memorization,
    halves: Vec<Vec<usize>>,
    pool: Vec<usize>,
    key: String,
    /// The dataset, loaded once: the runner trains from it (`Shared`'s images).
    pub images: Arc<methods::Images>,
}

/// The population's plan if `exp` chooses its forget set by memorization (`None` if not).
///
/// A population too small for an estimate of every example of the pool (one with no model
/// on one side), or a `size` larger than the pool, fails here, before anything trains, naming
/// the file and the key (exit 2).
pub fn prepare(exp: &Experiment, device: &Resolved) -> anyhow::Result<Option<Prepared>> {
    let Some(m) = exp.memorization else {
        return Ok(None);
    };
    let images = methods::Images::new(Arc::new(data::dataset::load(&exp.data_dir, &exp.load)?));
    let labels = &images.dataset().train.labels;
    let n = labels.len();
    let invalid = |key: &str, problem: String| ConfigError::Invalid {
        path: exp.source.clone(),
        key: key.to_owned(),
        problem,
        line: None,
    };
    // The scenario's population (no set is chosen yet): the class, or the whole training set.
    let pool = data::split::population(labels, &exp.forget);
    let room = match exp.forget.class {
        Some(_) => pool.len(),
        None => n.saturating_sub(data::split::MIN_REMAIN),
    };
    if m.size > room {
        let whose = exp
            .forget
            .class
            .map_or_else(|| "the training set".to_owned(), |c| format!("class {c}"));
        let remain = if exp.forget.class.is_none() { " (and 2 must remain)" } else { "" };
        let problem = format!(
            "is {}; {whose} has {} examples to choose from{remain}: give a smaller size",
            m.size,
            pool.len()
        );
        return Err(invalid("forget.size", problem).into());
    }
    let halves: Vec<Vec<usize>> = (0..m.models).map(|k| half(n, k)).collect();
    let (ins, outs) = sides(n, &halves);
    let lonely: Vec<usize> =
        pool.iter().copied().filter(|&i| ins[i] == 0 || outs[i] == 0).collect();
    if let Some(&first) = lonely.first() {
        let problem = format!(
            "is {}: {} examples of the pool (the first, training example {first}, in {} of the \
             halves) have no model on one side, so their memorization cannot be estimated; use \
             more models (64 is usual)",
            m.models,
            lonely.len(),
            ins[first]
        );
        return Err(invalid("forget.models", problem).into());
    }
    let fingerprint = data::dataset::fingerprint(&exp.load);
    let plan = Plan::memorization(exp, &fingerprint, device, m.models);
    let keys: String = plan.jobs.iter().map(|j| format!("{}\n", j.key)).collect();
    let key = sha256_hex(keys.as_bytes());
    Ok(Some(Prepared { plan, memorization: m, halves, pool, key, images }))
}

/// The population and the forget set it chose ([`Population::scenario`]), from each of the
/// plan's models' cached outputs (in plan order; see `train::member_evaluation`).
pub fn choose_set(
    exp: &Experiment,
    prepared: Prepared,
    outputs: &[(String, Option<Arc<Vec<f32>>>)],
) -> anyhow::Result<Population> {
    let Prepared { memorization: m, halves, pool, key, images, .. } = prepared;
    let train = &images.dataset().train;
    let n = train.labels.len();
    let (mut correct, mut confidence) = (Vec::new(), Vec::new());
    for (label, values) in outputs {
        let c = values.as_ref().with_context(|| format!("{label} has no outputs"))?;
        if c.len() != 2 * n {
            bail!("{label}: {} cached outputs for {n} training examples", c.len());
        }
        confidence.push(c[..n].to_vec());
        correct.push(c[n..].iter().map(|&v| v > 0.5).collect());
    }
    let scores = estimate(&halves, &correct, &confidence);
    let indices = choose(&scores, &pool, m.level, m.size);
    let chosen = Chosen {
        name: m.name(),
        key: format!("memorization={} size={} population={key}", m.level.name(), m.size),
        indices: indices.into(),
    };
    let forget = ForgetSpec { chosen: Some(chosen), ..exp.forget.clone() };
    let everything: Vec<usize> = (0..n).collect();
    let mut gallery = Vec::new();
    for (side, level) in [("most", Level::High), ("least", Level::Low)] {
        let order = ranked(&scores, &everything, level);
        gallery.extend(order.iter().take(GALLERY).enumerate().map(|(r, &i)| (side, r + 1, i)));
    }
    let (mean, std) = exp.load.kind.mean_std();
    let grey = |x: f32| ((x * std + mean) * 255.0).round().clamp(0.0, 255.0) as u8;
    let pixels = gallery
        .iter()
        .map(|&(_, _, i)| {
            train.features[i * train.dim..(i + 1) * train.dim].iter().map(|&x| grey(x)).collect()
        })
        .collect();
    let labels = train.labels.clone();
    Ok(Population { models: m.models, key, scores, labels, forget, gallery, pixels })
}
