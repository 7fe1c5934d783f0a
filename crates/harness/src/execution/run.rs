//! Runs a plan on a pool of workers, each job as soon as the model it starts from exists
//! (jobs that others wait for first, then the longest); every model comes from the cache when
//! it is there and goes into it when it is trained.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use data::split::run_split;
use methods::Outputs;
use methods::{Data, Images};

use crate::execution::cache::{Accuracy, Cache, Entry, Record};
use crate::execution::lock::{JobLock, Lock};
use crate::execution::memorization::{Population, choose_set, prepare};
use crate::execution::plan::{Job, Plan, split_key};
use crate::execution::progress::{Progress, Verbosity};
use crate::execution::schedule::schedule;
use crate::execution::train::{final_evaluation, train};
use crate::experiment::Experiment;

/// How to run (none of it changes the results).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Jobs trained at once.
    pub jobs: usize,
    /// libtorch threads per job.
    pub threads: usize,
    pub cache: std::path::PathBuf,
    pub verbosity: Verbosity,
    /// Run only shard `index` of `count` (see [`Plan::shard`]).
    pub shard: Option<(usize, usize)>,
    /// The device, resolved against the machine ([`crate::execution::device::resolve`]).
    pub device: crate::execution::device::Resolved,
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub job: Job,
    pub record: Record,
    pub accuracy: Accuracy,
    /// Its confidences on the scenario's population (`data::split::population`), in audits.
    pub confidences: Option<Arc<Vec<f32>>>,
    /// Whether this invocation trained it (rather than the cache holding it).
    pub trained: bool,
}

#[derive(Debug)]
pub struct Outcome {
    pub plan: Plan,
    /// In plan order.
    pub results: Vec<RunResult>,
    /// The dataset, if a job loaded it (the audit reads its labels rather than loading and
    /// verifying it again).
    pub images: Option<Arc<Images>>,
    /// The memorization population that chose the forget set (`[forget] memorization`).
    pub memorization: Option<Arc<Population>>,
}

impl Outcome {
    /// `exp` as it ran: with the forget set its memorization population chose.
    pub fn experiment(&self, exp: &Experiment) -> Experiment {
        self.memorization.as_ref().map_or_else(|| exp.clone(), |p| p.scenario(exp))
    }

    pub fn trained(&self) -> usize {
        self.results.iter().filter(|r| r.trained).count()
    }
}

struct Shared<'a> {
    exp: &'a Experiment,
    cache: Cache,
    fingerprint: String,
    images: Mutex<Option<Arc<Images>>>,
    done: AtomicUsize,
    total: usize,
    progress: Progress,
}

impl<'a> Shared<'a> {
    /// `images`: the dataset if the caller loaded it already, else the first job that needs it
    /// loads it.
    fn new(
        exp: &'a Experiment,
        opts: &RunOptions,
        fingerprint: String,
        total: usize,
        verbosity: Verbosity,
        images: Option<Arc<Images>>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            exp,
            cache: Cache::open(&opts.cache)?,
            fingerprint,
            images: Mutex::new(images),
            done: AtomicUsize::new(0),
            total,
            progress: Progress::new(total, verbosity),
        })
    }

    /// The dataset, loaded by the first job that needs it and shared by all.
    fn images(&self) -> anyhow::Result<Arc<Images>> {
        let mut slot = self.images.lock().expect("no job panics while loading");
        if let Some(m) = &*slot {
            return Ok(m.clone());
        }
        let t0 = Instant::now();
        let m = Arc::new(data::dataset::load(&self.exp.data_dir, &self.exp.load)?);
        self.progress.log(format_args!(
            "loaded {} ({} train / {} test images, SHA-256 verified) from {} in {:.1}s",
            self.exp.load.kind.name(),
            m.train.len(),
            m.test.len(),
            self.exp.data_dir.display(),
            t0.elapsed().as_secs_f64()
        ));
        let images = Images::new(m);
        *slot = Some(images.clone());
        Ok(images)
    }

    /// The job's cached final evaluation: its accuracies and, in an audit, its confidences
    /// (`None` if either is missing).
    fn evaluation(&self, job: &Job) -> Option<(Accuracy, Option<Arc<Vec<f32>>>)> {
        let split_key = split_key(self.exp, &self.fingerprint, job);
        let accuracy = self.cache.eval(&job.key, &split_key)?;
        let confidences = if self.exp.audit.is_some() || job.memorization.is_some() {
            Some(Arc::new(self.cache.confidences(&job.key, &split_key)?))
        } else {
            None
        };
        Some((accuracy, confidences))
    }

    /// Evaluates `model` (see [`final_evaluation`]; from `outputs` when its last epoch's
    /// evaluation made them) and caches what it found.
    fn evaluate_and_store(
        &self,
        model: &model::Classifier,
        data: &Data,
        job: &Job,
        outputs: Option<Outputs>,
    ) -> anyhow::Result<(Accuracy, Option<Arc<Vec<f32>>>)> {
        let split_key = split_key(self.exp, &self.fingerprint, job);
        let (accuracy, confidences) = final_evaluation(model, data, job, self.exp, outputs);
        if let Some(c) = &confidences {
            self.cache.store_confidences(&job.key, &split_key, c)?;
        }
        self.cache.store_eval(&job.key, &split_key, &accuracy)?;
        Ok((accuracy, confidences.map(Arc::new)))
    }

    /// The data of `job`'s seed: the shared images and that seed's forget / remain split (or
    /// its shadow's: `data::split::shadow_split`).
    fn data(&self, job: &Job) -> anyhow::Result<Data> {
        let images = self.images()?;
        let labels = &images.dataset().train.labels;
        let split = match job.memorization {
            // A population's model trains on its half; nothing is forgotten.
            Some(k) => data::split::ForgetSplit {
                forget: Vec::new(),
                remain: data::memorization::half(labels.len(), k),
            },
            None => run_split(labels, &self.exp.forget, job.seed, job.shadow)?,
        };
        Ok(Data::new(&images, &split, job.device))
    }
}

/// `exp` with its forget set chosen (and the population that chose it) if it asks for one
/// by memorization; else `exp` as it is. With `train`, the population's missing models are
/// trained (and cached); without (`harness report`), a missing model is an error.
fn resolve(exp: &Experiment, opts: &RunOptions, train: bool) -> anyhow::Result<Resolved> {
    let Some(prepared) = prepare(exp, &opts.device)? else {
        return Ok(Resolved { exp: exp.clone(), population: None, images: None });
    };
    let (plan, images) = (prepared.plan.clone(), prepared.images.clone());
    let models = plan.jobs.len();
    let outcome = if train {
        let opts = RunOptions { shard: None, ..opts.clone() };
        execute_plan(exp, plan, &opts, Some(images.clone()))
            .context("training the memorization population")?
    } else {
        let (outcome, missing) = collect_plan(exp, plan, opts, Some(images.clone()))?;
        anyhow::ensure!(
            missing.is_empty(),
            "{}: {} of the memorization population's {models} models are not in the cache; run \
             the experiment first",
            exp.source.display(),
            missing.len()
        );
        outcome
    };
    let outputs: Vec<(String, Option<Arc<Vec<f32>>>)> =
        outcome.results.into_iter().map(|r| (r.job.label(), r.confidences)).collect();
    let population = choose_set(exp, prepared, &outputs)?;
    Ok(Resolved {
        exp: population.scenario(exp),
        population: Some(Arc::new(population)),
        images: Some(images),
    })
}

/// An experiment as it runs ([`resolve`]): with its chosen forget set, the population that
/// chose it and the dataset that population loaded, if it has one.
struct Resolved {
    exp: Experiment,
    population: Option<Arc<Population>>,
    images: Option<Arc<Images>>,
}

/// Runs every job of `exp` (after its memorization population, if it chooses its forget set
/// by one: [`resolve`]).
pub fn execute(exp: &Experiment, opts: &RunOptions) -> anyhow::Result<Outcome> {
    let Resolved { exp, population, images } = resolve(exp, opts, true)?;
    let fingerprint = data::dataset::fingerprint(&exp.load);
    let mut plan = Plan::new(&exp, &fingerprint, &opts.device)?;
    if let Some((index, count)) = opts.shard {
        plan = plan.shard(index, count);
    }
    Ok(Outcome { memorization: population, ..execute_plan(&exp, plan, opts, images)? })
}

/// Runs every job of `plan`, whose scenario is `exp`'s (from `images` if loaded already).
fn execute_plan(
    exp: &Experiment,
    plan: Plan,
    opts: &RunOptions,
    images: Option<Arc<Images>>,
) -> anyhow::Result<Outcome> {
    let fingerprint = data::dataset::fingerprint(&exp.load);
    let threads = opts.threads.max(1);
    tch::set_num_threads(threads as i32);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .thread_name(|i| format!("job-{i}"))
        // libtorch's thread count is per OS thread: set it in every worker.
        .start_handler(move |_| tch::set_num_threads(threads as i32))
        .build()
        .context("cannot start the worker threads")?;
    if opts.verbosity > Verbosity::Quiet {
        let replicates = match exp.audit {
            Some(a) => format!(", {} replicates and {} shadows each", a.replicates, a.shadows),
            None => String::new(),
        };
        let what = if plan.jobs.iter().all(|j| j.memorization.is_some()) {
            "originals on random halves: the memorization population".to_owned()
        } else {
            format!("{} seeds{replicates}", exp.seeds.len())
        };
        eprintln!(
            "{}: {} jobs ({what}), {} at a time x {} libtorch thread(s), cache {}",
            exp.source.display(),
            plan.jobs.len(),
            opts.jobs,
            opts.threads,
            opts.cache.display()
        );
    }
    let shared = Shared::new(exp, opts, fingerprint, plan.jobs.len(), opts.verbosity, images)?;
    // Missing or corrupt data fails before anything is trained or cached; a run that the
    // cache holds entirely never loads the data.
    // (Presence only: each job checks its entry's hash itself when it runs.)
    let needs_data = plan
        .jobs
        .iter()
        .any(|j| !shared.cache.has_record(&j.key) || shared.evaluation(j).is_none());
    if needs_data {
        check_splits(exp, &plan, &shared.images()?.dataset().train.labels)?;
    }
    if matches!(opts.device.device, tch::Device::Cuda(_)) {
        // Kernels picked by timing would differ from run to run.
        tch::Cuda::cudnn_set_benchmark(false);
    }
    let results = schedule(&plan, opts.jobs.max(1), &pool, |job, worker| {
        // Each worker trains on its own GPU (`cuda` with several); elsewhere, the one device.
        let job = Job { device: opts.device.for_worker(worker), ..job.clone() };
        run_job(&job, &shared)
    });
    shared.progress.finish();
    let images = shared.images.into_inner().expect("no job panicked while loading");
    Ok(Outcome { plan, results: results?, images, memorization: None })
}

/// Draws every split the plan's jobs use before any of them trains, so that a forget or
/// remain set too small to train or measure on fails the run at once, naming the file and
/// the section (the limits are `data::split`'s).
fn check_splits(exp: &Experiment, plan: &Plan, labels: &[u8]) -> anyhow::Result<()> {
    let runs: std::collections::BTreeSet<(u64, Option<usize>)> =
        plan.jobs.iter().filter(|j| j.memorization.is_none()).map(|j| (j.seed, j.shadow)).collect();
    for (seed, shadow) in runs {
        run_split(labels, &exp.forget, seed, shadow).map_err(|e| {
            let whose = match shadow {
                Some(k) => format!("seed {seed}'s shadow {k} (half of the training set)"),
                None => format!("seed {seed}"),
            };
            anyhow::anyhow!(
                "{}: `forget` ({}) cannot be drawn for {whose}: {e}",
                exp.source.display(),
                exp.forget.name()
            )
        })?;
    }
    Ok(())
}

/// Every finished run of `exp` in the cache, in plan order, training nothing (a run whose
/// model is cached but whose evaluation is not is evaluated); and the jobs with no finished
/// run.
pub fn collect(exp: &Experiment, opts: &RunOptions) -> anyhow::Result<(Outcome, Vec<Job>)> {
    let Resolved { exp, population, images } = resolve(exp, opts, false)?;
    let fingerprint = data::dataset::fingerprint(&exp.load);
    let plan = Plan::new(&exp, &fingerprint, &opts.device)?;
    let (outcome, missing) = collect_plan(&exp, plan, opts, images)?;
    Ok((Outcome { memorization: population, ..outcome }, missing))
}

/// [`collect`] for the jobs of `plan`, whose scenario is `exp`'s (from `images` if loaded
/// already).
fn collect_plan(
    exp: &Experiment,
    plan: Plan,
    opts: &RunOptions,
    images: Option<Arc<Images>>,
) -> anyhow::Result<(Outcome, Vec<Job>)> {
    let fingerprint = data::dataset::fingerprint(&exp.load);
    let shared = Shared::new(exp, opts, fingerprint, plan.jobs.len(), Verbosity::Quiet, images)?;
    let (mut results, mut missing) = (Vec::new(), Vec::new());
    for job in &plan.jobs {
        // A record without every evaluation this experiment asks for (one trained by an
        // experiment with a larger `eval_every`) needs retraining, which `collect` never does.
        let Some(record) = cached(job, &shared, "listing the run as missing")?
            .filter(|r| has_history(exp, job, r))
        else {
            missing.push(job.clone());
            continue;
        };
        let record = as_asked(exp, job, record);
        let (accuracy, confidences) = match shared.evaluation(job) {
            Some(e) => e,
            None => {
                let data = shared.data(job)?;
                let model = shared.cache.load_model(&job.key, &exp.model, job.device)?;
                shared.evaluate_and_store(&model, &data, job, None)?
            }
        };
        results.push(RunResult { job: job.clone(), record, accuracy, confidences, trained: false });
    }
    let images = shared.images.into_inner().expect("no job panicked while loading");
    Ok((Outcome { plan, results, images, memorization: None }, missing))
}

/// The job's cache entry, if it holds a trustworthy one; a corrupt entry is reported, with
/// what happens `next` ("retraining it"), and removed.
fn cached(job: &Job, s: &Shared<'_>, next: &str) -> anyhow::Result<Option<Record>> {
    match s.cache.lookup(&job.key)? {
        Entry::Found(record) => Ok(Some(record)),
        Entry::Missing => Ok(None),
        Entry::Corrupt(why) => {
            s.progress.warn(format_args!(
                "cache entry of {} is corrupt ({why}); removing it and {next}",
                job.label()
            ));
            s.cache.discard(&job.key)?;
            Ok(None)
        }
    }
}

/// Whether `record` holds every evaluation `exp` asks for in `job`'s history. The cache key
/// leaves `eval_every` out (it changes what is recorded, not the model), so an entry trained
/// by an experiment that evaluated less often may lack some.
fn has_history(exp: &Experiment, job: &Job, record: &Record) -> bool {
    (1..=job.method.epochs())
        .filter(|&e| exp.evaluates_after(&job.method, e))
        .all(|e| record.evaluated_at(e))
}

/// `record` with exactly the evaluations `exp` asks for: what a run reports never depends on
/// which experiment trained its model first.
fn as_asked(exp: &Experiment, job: &Job, mut record: Record) -> Record {
    for h in &mut record.history {
        if !exp.evaluates_after(&job.method, h.epoch) {
            h.metrics = None;
        }
    }
    record
}

/// What a run does with a corrupt entry.
const RETRAIN: &str = "retraining it";

fn run_job(job: &Job, s: &Shared<'_>) -> anyhow::Result<RunResult> {
    let exp = s.exp;
    let mut claim = Claim::look(job, s)?;
    if let Some(record) = &claim.found
        && let Some((accuracy, confidences)) = s.evaluation(job)
    {
        finish(s, job, "cached", &accuracy);
        let record = as_asked(exp, job, record.clone());
        return Ok(RunResult { job: job.clone(), record, accuracy, confidences, trained: false });
    }
    if claim.found.is_none() {
        claim.lock_or_wait(job, s)?;
    }
    let data = s.data(job)?;
    let (model, record, outputs, trained) = match claim.found.take() {
        Some(record) => {
            (s.cache.load_model(&job.key, &exp.model, job.device)?, record, None, false)
        }
        None => {
            let (model, record, outputs) =
                train(job, exp, &s.cache, &s.progress, &data, claim.thin.as_ref())?;
            (model, record, outputs, true)
        }
    };
    drop(claim);
    let (accuracy, confidences) = s.evaluate_and_store(&model, &data, job, outputs)?;
    let how =
        if trained { format!("trained in {:.1}s", record.seconds) } else { "evaluated".to_owned() };
    finish(s, job, &how, &accuracy);
    let record = as_asked(exp, job, record);
    Ok(RunResult { job: job.clone(), record, accuracy, confidences, trained })
}

/// What the cache holds for a job and this process's right to train it: a usable record, or
/// the record it replaces (one whose history lacks evaluations this experiment asks for: the
/// same model, retrained to record them), and the job's lock while it is held.
struct Claim {
    found: Option<Record>,
    thin: Option<Record>,
    lock: Option<JobLock>,
}

impl Claim {
    /// The job's entry, as found now.
    fn look(job: &Job, s: &Shared<'_>) -> anyhow::Result<Self> {
        let mut claim = Self { found: None, thin: None, lock: None };
        claim.found = claim.usable(cached(job, s, RETRAIN)?, job, s);
        Ok(claim)
    }

    /// `found` if its history holds what the experiment asks for; else it becomes `thin`.
    fn usable(&mut self, found: Option<Record>, job: &Job, s: &Shared<'_>) -> Option<Record> {
        match found {
            Some(r) if !has_history(s.exp, job, &r) => {
                if self.thin.is_none() {
                    s.progress.log(format_args!(
                        "{}: its cached history lacks evaluations this experiment asks for \
                         (`eval_every`); retraining it to record them",
                        job.label()
                    ));
                }
                self.thin = Some(r);
                None
            }
            found => found,
        }
    }

    /// Takes the job's lock to train it, unless another process is training it: then waits
    /// for its entry (or takes over its lock if it dies).
    fn lock_or_wait(&mut self, job: &Job, s: &Shared<'_>) -> anyhow::Result<()> {
        let mut waiting = false;
        while self.found.is_none() {
            match s.cache.lock(&job.key)? {
                Lock::Acquired(lock) => {
                    self.lock = Some(lock);
                    // It may have been stored between the lookup and the lock.
                    self.found = self.usable(cached(job, s, RETRAIN)?, job, s);
                    return Ok(());
                }
                Lock::Busy(holder) => {
                    if !waiting {
                        s.progress.log(format_args!(
                            "{}: {holder} is training it; waiting for its cache entry",
                            job.label()
                        ));
                        waiting = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(250));
                    self.found = self.usable(cached(job, s, RETRAIN)?, job, s);
                }
            }
        }
        Ok(())
    }
}

fn finish(s: &Shared<'_>, job: &Job, how: &str, a: &Accuracy) {
    let n = s.done.fetch_add(1, Ordering::Relaxed) + 1;
    s.progress.job_done();
    s.progress.log(format_args!(
        "[{n}/{}] {}: {how} (remain {:.2}, forget {:.2}, test {:.2})",
        s.total,
        job.label(),
        a.remain,
        a.forget,
        a.test
    ));
}
