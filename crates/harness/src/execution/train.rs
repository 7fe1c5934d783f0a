//! One job's training and final evaluation: the model trained with its history recorded,
//! checked for divergence and stored in the cache; its accuracies, membership-inference
//! attack and (in audits and memorization populations) per-example confidences.

use std::time::Instant;

use anyhow::Context as _;
use methods::Data;
use methods::Outputs;
use methods::engine::{evaluate, outputs};

use crate::execution::cache::{Accuracy, Cache, EpochRecord, Record};
use crate::execution::plan::Job;
use crate::execution::progress::Progress;
use crate::execution::schedule::JobFailed;
use crate::experiment::Experiment;

/// Trains `job` (holding its lock), records its history, checks that it did not diverge and
/// stores it, replacing `thin`; returns the model, its record and its last epoch's outputs.
pub fn train(
    job: &Job,
    exp: &Experiment,
    cache: &Cache,
    progress: &Progress,
    data: &Data,
    thin: Option<&Record>,
) -> anyhow::Result<(model::Classifier, Record, Option<Outputs>)> {
    let original = match &job.upstream {
        Some(key) => Some(
            cache
                .load_model(key, &exp.model, job.device)
                .with_context(|| format!("loading the original model for {}", job.label()))?,
        ),
        None => None,
    };
    let ctx = methods::Context {
        data,
        spec: &exp.model,
        seed: job.seed,
        replicate: job.replicate,
        shadow: job.shadow,
        memorization: job.memorization,
        device: job.device,
        engine: job.engine,
        original: original.as_ref(),
    };
    // Unlearning runs are evaluated after every epoch, or every `eval_every` (their trajectory
    // is the point); the original is not (its key leaves out the split, so its record must
    // too). Besides what this experiment asks for, the evaluations of the entry it replaces.
    let evaluated_before = |epoch: usize| thin.is_some_and(|t| t.evaluated_at(epoch));
    let (label, last) = (job.label(), job.method.epochs());
    let _training = crate::execution::interrupt::registry().job(label.clone());
    let bar = progress.job(&label, last);
    let (mut history, mut final_outputs, mut non_finite_loss) = (Vec::new(), None, None);
    let t0 = Instant::now();
    let model = job.method.train(&ctx, &mut |epoch, m, stats| {
        // An external method's losses are unknown (NaN), not diverged.
        if !stats.loss.is_finite() && stats.steps > 0 && non_finite_loss.is_none() {
            non_finite_loss = Some((epoch, stats.loss));
        }
        let asked = exp.evaluates_after(&job.method, epoch) || evaluated_before(epoch);
        let metrics = match m.filter(|_| asked) {
            None => None,
            // The last epoch's model is the final one: one pass serves both.
            Some(m) if epoch == last => {
                let all = outputs(m, data, job.engine, exp.audit.is_some());
                let metrics = all.metrics(data);
                final_outputs = Some(all);
                Some(metrics.into())
            }
            Some(m) => Some(evaluate(m, data, job.engine).into()),
        };
        let record = EpochRecord { epoch, loss: stats.loss, ce: stats.ce, mi: stats.mi, metrics };
        progress.detail(format_args!("  {label} epoch {epoch}: {}", describe(&record)));
        history.push(record);
        bar.epoch_done();
    });
    drop(bar);
    let model =
        model.and_then(|m| diverged(&m, non_finite_loss).map_or(Ok(m), Err)).map_err(|why| {
            progress.warn(format_args!("{}: failed: {why}", job.label()));
            JobFailed { label: job.label(), why }
        })?;
    let seconds = t0.elapsed().as_secs_f64();
    let record = Record {
        key: job.key.clone(),
        label,
        description: job.description.clone(),
        model_sha256: String::new(),
        seconds,
        history,
    };
    let record = match thin {
        None => cache.store(&model, record)?,
        Some(old) => {
            let record = cache.replace(&model, record)?;
            if record.model_sha256 != old.model_sha256 {
                progress.warn(format_args!(
                    "{}: retrained to record its history, it came out different from the cached \
                     model (SHA-256 {} instead of {}): training is not deterministic here",
                    job.label(),
                    record.model_sha256,
                    old.model_sha256
                ));
            }
            record
        }
    };
    Ok((model, record, final_outputs))
}

/// Why a trained model must not be cached or reported, if it holds NaN or infinite weights
/// (training diverged); `loss` is the first epoch whose mean loss was not finite, and that loss.
fn diverged(model: &model::Classifier, loss: Option<(usize, f64)>) -> Option<methods::Failed> {
    let bad = model.non_finite_parameters();
    if bad.is_empty() {
        return None;
    }
    let when = match loss {
        Some((epoch, value)) => {
            format!("its loss first went non-finite ({value}) at epoch {epoch}")
        }
        None => "its loss stayed finite".to_owned(),
    };
    Some(methods::Failed(format!(
        "training diverged: {when}, and the model has NaN or infinite values in {}; nothing \
         was cached. Lower the learning rate (`lr`) or the loss weights (e.g. `gamma`)",
        bad.join(", ")
    )))
}

/// The final model's accuracies and the membership-inference attack on it (its stream drawn
/// from the run's seed), and in an audit its confidences on the scenario's population, from
/// one pass over the data.
pub fn final_evaluation(
    model: &model::Classifier,
    data: &Data,
    job: &Job,
    exp: &Experiment,
    outputs: Option<Outputs>,
) -> (Accuracy, Option<Vec<f32>>) {
    if job.memorization.is_some() {
        return member_evaluation(model, data, job);
    }
    let outputs = outputs
        .unwrap_or_else(|| methods::engine::outputs(model, data, job.engine, exp.audit.is_some()));
    let mia = outputs.mia(data, job.seed);
    let accuracy = Accuracy {
        mia: Some(mia.mia),
        mia_attack_acc: Some(mia.attack_acc),
        mia_protocol: Some(methods::mia::PROTOCOL),
        ..outputs.metrics(data).into()
    };
    let confidences = exp.audit.map(|_| {
        let labels = &data.images().dataset().train.labels;
        let population = data::split::population(labels, &exp.forget);
        population.iter().map(|&i| outputs.train_confidence[i] as f32).collect()
    });
    (accuracy, confidences)
}

/// A memorization population's model: its accuracy on its half (`remain`), on the other half
/// (`forget`: held out, not forgotten) and on the test set; and per training example its
/// logit-scaled confidence, then 1 or 0 for classified correctly (`2 n` values, as cached).
fn member_evaluation(
    model: &model::Classifier,
    data: &Data,
    job: &Job,
) -> (Accuracy, Option<Vec<f32>>) {
    let outputs = methods::engine::outputs(model, data, job.engine, true);
    // The split forgets nothing: `forget` is the other half, the examples not in `remain`.
    let mut held_out = vec![true; outputs.train_correct.len()];
    for &i in data.remain() {
        held_out[i as usize] = false;
    }
    let ok = held_out.iter().zip(&outputs.train_correct).filter(|&(&h, &ok)| h && ok).count();
    let forget = 100.0 * ok as f64 / held_out.iter().filter(|&&h| h).count().max(1) as f64;
    let accuracy = Accuracy {
        forget,
        mia_protocol: Some(methods::mia::PROTOCOL),
        ..outputs.metrics(data).into()
    };
    let mut values: Vec<f32> = outputs.train_confidence.iter().map(|&c| c as f32).collect();
    values.extend(outputs.train_correct.iter().map(|&ok| f32::from(u8::from(ok))));
    (accuracy, Some(values))
}

fn describe(e: &EpochRecord) -> String {
    let mut out = format!("loss {:.4}, CE {:.4}", e.loss, e.ce);
    if let Some(mi) = e.mi {
        out += &format!(", MI {mi:.4}");
    }
    if let Some(m) = &e.metrics {
        out += &format!("; remain {:.2}, forget {:.2}, test {:.2}", m.remain, m.forget, m.test);
    }
    out
}
