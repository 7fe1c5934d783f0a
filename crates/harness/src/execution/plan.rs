//! From a checked experiment to jobs with cache keys.
//!
//! A job is one method, one parameter set, one seed and one replicate (`[audit] replicates`:
//! runs that differ only in the method's own random streams; the original model is shared),
//! or one of U-LiRA's shadows (`[audit] shadows`: an original trained on a random half of the
//! training set and every other method unlearning its own forget set from it). With
//! replicates, the reference (retrain) gets as many again, `replicates..2 * replicates`: a
//! second population of its own streams, which the audit scores against the first (F_ref,
//! the best F reachable at that N). Its key is the SHA-256 of an explicit,
//! ordered, line-based description of everything that determines the trained model, and only
//! that (never a derived `Hash`, a path or a time):
//!
//! | line       | content                                                      | in the key of          |
//! |------------|--------------------------------------------------------------|------------------------|
//! | `schema`   | [`SCHEMA`], bumped whenever training code changes its output | every job              |
//! | `data`     | the four files' SHA-256 and any sample limits                | every job              |
//! | `model`    | architecture and initialisation scheme                       | every job              |
//! | `device`   | the kind of device it is trained on: `cpu`, `cuda`, `mps`    | every job              |
//! | `nondeterministic` | present when that device does not reproduce runs bit for bit (GPUs) | GPU jobs |
//! | `engine`   | how steps are computed, unless the reference `autograd`      | every job              |
//! | `cpu`      | the CPU's class (`methods::engine::cpu_class`), whose kernels decide autograd's bits | autograd and external jobs on the CPU |
//! | `method`   | method name                                                  | every job              |
//! | `param`    | each parameter, in the method's fixed order                  | every job              |
//! | `seed`     | the run's seed (all its random streams derive from it)       | every job              |
//! | `replicate`| the replicate's number, from 1 (its streams are its own)      | replicates but the first |
//! | `shadow`   | the U-LiRA shadow's number (its half of the training set, split and streams) | shadows' jobs |
//! | `memorization` | the memorization population's model number (its half and streams) | that population's originals |
//! | `split`    | forget class (or `all`) and fraction (drawn from the seed), or the chosen set (`memorization=high size=600 population=<key>`) | jobs that use the split|
//! | `upstream` | the original model's key                                     | jobs from the original |
//!
//! So changing gamma changes only MI-unlearn keys, and changing the forget set leaves the
//! original models cached.

use data::dataset::sha256_hex;
use methods::{AnyMethod, Role};

use crate::execution::device::Resolved;
use crate::execution::external::{DataFiles, External};
use crate::experiment::{ConfigError, Experiment};

/// Bump to invalidate every cached model (and say why in the commit).
pub const SCHEMA: u32 = 1;

/// One trained model to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub method: AnyMethod,
    pub seed: u64,
    /// Which of the seed's runs of this method and parameter set: 0, or up to
    /// `[audit] replicates - 1`.
    pub replicate: usize,
    /// The U-LiRA shadow it belongs to, if any (see `data::split::shadow_split`).
    pub shadow: Option<usize>,
    /// The model of the memorization population it is, if any (`data::memorization`).
    pub memorization: Option<usize>,
    pub key: String,
    /// The key of the original model this job starts from.
    pub upstream: Option<String>,
    /// What the key hashes, kept next to the model in the cache for humans.
    pub description: String,
    /// The engine that trains and evaluates it ([`AnyMethod::engine`]).
    pub engine: methods::Engine,
    /// Where it runs (only the kind is in the key: GPUs of one kind are interchangeable).
    pub device: tch::Device,
}

impl Job {
    /// `mi_unlearn gamma=4 epochs=5 seed=0` (and ` replicate=3` past the first, ` shadow=7`
    /// for a shadow's), for logs.
    pub fn label(&self) -> String {
        let mut label =
            format!("{} {} seed={}", self.method.name(), self.method.label(), self.seed);
        if self.replicate > 0 {
            label += &format!(" replicate={}", self.replicate);
        }
        if let Some(s) = self.shadow {
            label += &format!(" shadow={s}");
        }
        if let Some(m) = self.memorization {
            label += &format!(" memorization={m}");
        }
        label
    }
}

/// The jobs of an experiment, each original before the jobs that start from it (which name
/// it as their `upstream`; the runner starts them once it exists).
#[derive(Debug, Clone)]
pub struct Plan {
    pub jobs: Vec<Job>,
}

impl Plan {
    /// The jobs of `exp` on `device` (whose kind enters the keys). Its external methods'
    /// programs are found and their inputs hashed here ([`methods`]).
    pub fn new(
        exp: &Experiment,
        data_fingerprint: &str,
        device: &Resolved,
    ) -> Result<Self, ConfigError> {
        let methods = methods(exp)?;
        let job = |m: &AnyMethod, run: Run, up: Option<String>| {
            job(exp, data_fingerprint, device, m, run, up)
        };
        let mut jobs = Vec::new();
        let shadows = exp.audit.map_or(0, |a| a.shadows);
        for &seed in &exp.seeds {
            // The seed's own runs (replicates of every method from one original), then each
            // shadow's (one original on its half, one run of every other method).
            let groups =
                std::iter::once((None, exp.replicates())).chain((0..shadows).map(|s| (Some(s), 1)));
            for (shadow, replicates) in groups {
                let run = |replicate| Run { seed, replicate, shadow, memorization: None };
                let is_original = |m: &&AnyMethod| m.role() == Role::Original;
                let original = methods.iter().find(is_original).map(|m| job(m, run(0), None));
                let upstream = original.as_ref().map(|o| o.key.clone());
                jobs.extend(original);
                for m in methods.iter().filter(|m| !is_original(m)) {
                    let up = m
                        .needs_original()
                        .then(|| upstream.clone().expect("validated: original present"));
                    // The reference's second population: as many replicates again, with
                    // streams of their own, scored against the first for F_ref.
                    let count = match (shadow, m.role()) {
                        (None, Role::Reference) if replicates >= 2 => 2 * replicates,
                        _ => replicates,
                    };
                    for replicate in 0..count {
                        jobs.push(job(m, run(replicate), up.clone()));
                    }
                }
            }
        }
        Ok(Self { jobs })
    }

    /// The memorization population of `exp`'s scenario (`[forget] memorization`): its
    /// `models` originals, model `k` trained on its own half of the training set
    /// (`data::memorization::half`) with streams of its own. Their keys leave the experiment's
    /// seeds and scenario out: every experiment with the same data, model and original
    /// protocol shares them.
    pub fn memorization(
        exp: &Experiment,
        data_fingerprint: &str,
        device: &Resolved,
        models: usize,
    ) -> Self {
        let original = exp.methods.iter().find(|m| m.role() == Role::Original);
        let original = original.expect("validated: a memorization scenario has an original");
        let jobs = (0..models)
            .map(|k| {
                let run = Run {
                    seed: data::memorization::SEED,
                    replicate: 0,
                    shadow: None,
                    memorization: Some(k),
                };
                job(exp, data_fingerprint, device, original, run, None)
            })
            .collect();
        Self { jobs }
    }

    /// Shard `index` of `count`: the jobs whose position among the plan's keys in sorted order
    /// is `index` mod `count` (stable whatever the order of the experiment file), plus the
    /// upstream models they start from, which several shards may need (the cache's locks see
    /// that one trains each and the others wait for it).
    pub fn shard(&self, index: usize, count: usize) -> Plan {
        assert!(index < count, "shard index {index} of {count}");
        let mut keys: Vec<&str> = self.jobs.iter().map(|j| j.key.as_str()).collect();
        keys.sort_unstable();
        let mine = |key: &str| keys.binary_search(&key).expect("a planned key") % count == index;
        let needed: Vec<&str> = self
            .jobs
            .iter()
            .filter(|j| mine(&j.key))
            .flat_map(|j| [Some(j.key.as_str()), j.upstream.as_deref()])
            .flatten()
            .collect();
        Plan {
            jobs: self.jobs.iter().filter(|j| needed.contains(&j.key.as_str())).cloned().collect(),
        }
    }
}

/// Every method and parameter set of `exp`: its built-in ones, then its external ones with
/// their programs found and their input files hashed (which is why this is the execution
/// stage's: it reads the file system), an error naming the file and the key.
pub fn methods(exp: &Experiment) -> Result<Vec<AnyMethod>, ConfigError> {
    let data = DataFiles { dir: exp.data_dir.clone(), load: exp.load.clone() };
    let mut methods = exp.methods.clone();
    for spec in &exp.external {
        let external =
            External::resolve(spec, &data).map_err(|(key, problem)| ConfigError::Invalid {
                path: exp.source.clone(),
                key: format!("methods.external.{}.{key}", spec.name),
                problem,
                line: None,
            })?;
        methods.push(AnyMethod::from_arc(std::sync::Arc::new(external)));
    }
    Ok(methods)
}

/// Which run of a method a job is: its seed, replicate and shadow, or its place in the
/// memorization population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    seed: u64,
    replicate: usize,
    shadow: Option<usize>,
    memorization: Option<usize>,
}

/// The key of the forget / remain split of a seed (or of one of its shadows), for caching
/// evaluations.
pub fn split_key(exp: &Experiment, data_fingerprint: &str, job: &Job) -> String {
    let shadow = job.shadow.map_or_else(String::new, |s| format!("shadow {s}\n"));
    let split = match job.memorization {
        // A population's model is evaluated on the whole training set, whatever the scenario.
        Some(k) => format!("memorization {k}"),
        None => split_line(exp),
    };
    let text = format!(
        "schema {SCHEMA}\ndata {data_fingerprint}\nsplit {split}\nseed {}\n{shadow}",
        job.seed
    );
    sha256_hex(text.as_bytes())
}

/// `class=3 fraction=0.75`, or `class=all fraction=0.1` for a random subset across classes;
/// for a chosen set, what chose it (`memorization=high size=600 ... population=<key>`).
fn split_line(exp: &Experiment) -> String {
    let class = exp.forget.class.map_or_else(|| "all".to_owned(), |c| c.to_string());
    match &exp.forget.chosen {
        Some(c) => format!("class={class} {}", c.key),
        None => format!("class={class} fraction={:?}", exp.forget.fraction),
    }
}

fn job(
    exp: &Experiment,
    data_fingerprint: &str,
    device: &Resolved,
    method: &AnyMethod,
    Run { seed, replicate, shadow, memorization }: Run,
    upstream: Option<String>,
) -> Job {
    let mut d = format!(
        "schema {SCHEMA}\ndata {data_fingerprint}\nmodel {} init=torch-linear-uniform\ndevice {}\n{}method {}\n",
        exp.model.describe(),
        device.kind(),
        if device.deterministic() { "" } else { "nondeterministic\n" },
        method.name()
    );
    // Left out for the reference engine, so that its keys predate the choice of engines.
    // The engine that trains it: the CNN runs on autograd whatever the experiment asks, and so
    // does everything off the CPU (the native engine is the CPU's MLP's).
    let engine = if device.device == tch::Device::Cpu {
        method.engine(&exp.model, exp.engine)
    } else {
        methods::Engine::Autograd
    };
    if engine != methods::Engine::Autograd {
        d += &format!("engine {}\n", engine.name());
    }
    if device.device == tch::Device::Cpu
        && (engine == methods::Engine::Autograd || method.cpu_dependent())
    {
        // libtorch's CPU kernels (and an external program's) give other bits on another
        // class of CPU: a cache shared by such machines keeps their models apart.
        d += &format!("cpu {}\n", methods::engine::cpu_class());
    }
    for (name, value) in method.key() {
        d += &format!("param {name}={value}\n");
    }
    d += &format!("seed {seed}\n");
    if replicate > 0 {
        d += &format!("replicate {replicate}\n");
    }
    if let Some(s) = shadow {
        // Its streams are its own (`methods::Context::stream`); shadows keyed before that
        // drew the seed's and stay apart in the cache.
        d += &format!("shadow {s} streams=own\n");
    }
    if let Some(m) = memorization {
        d += &format!("memorization {m}\n");
    }
    if method.uses_split() {
        d += &format!("split {}\n", split_line(exp));
    }
    if let Some(up) = &upstream {
        d += &format!("upstream {up}\n");
    }
    Job {
        method: method.clone(),
        seed,
        replicate,
        shadow,
        memorization,
        key: sha256_hex(d.as_bytes()),
        upstream,
        description: d,
        engine,
        // The first device; the runner moves each job to its worker's GPU.
        device: device.device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan(gammas: &str, fraction: &str) -> Plan {
        plan_with("", gammas, fraction)
    }

    fn plan_with(head: &str, gammas: &str, fraction: &str) -> Plan {
        plan_text(head, gammas, fraction, "")
    }

    fn plan_text(head: &str, gammas: &str, fraction: &str, tail: &str) -> Plan {
        let text = format!(
            "{head}seeds = [0, 1]\n[forget]\nclass = 3\nfraction = {fraction}\n[methods.original]\nepochs = 2\n\
             [methods.retrain]\nepochs = 2\n[methods.finetune]\nepochs = 1\n\
             [methods.mi_unlearn]\ngamma = {gammas}\nepochs = 1\n{tail}"
        );
        Plan::new(
            &Experiment::parse(&text, Path::new("t.toml")).unwrap(),
            "mnist test",
            &Resolved::CPU,
        )
        .unwrap()
    }

    fn keys(p: &Plan, name: &str) -> Vec<String> {
        p.jobs.iter().filter(|j| j.method.name() == name).map(|j| j.key.clone()).collect()
    }

    #[test]
    fn one_job_per_method_and_seed_upstream_first() {
        let p = plan("[1, 4]", "0.75");
        assert_eq!(p.jobs.len(), 2 * 5);
        let labels: Vec<_> = p.jobs.iter().take(5).map(Job::label).collect();
        assert_eq!(
            labels,
            [
                "original epochs=2 seed=0",
                "retrain epochs=2 seed=0",
                "finetune epochs=1 seed=0",
                "mi_unlearn gamma=1 epochs=1 seed=0",
                "mi_unlearn gamma=4 epochs=1 seed=0"
            ]
        );
        let (first, second): (Vec<&Job>, Vec<&Job>) =
            p.jobs.iter().partition(|j| j.upstream.is_none());
        assert_eq!(first.len(), 4, "originals and retrains start from nothing");
        assert!(
            second.iter().all(
                |j| j.upstream.as_deref() == Some(&keys(&p, "original")[(j.seed) as usize][..])
            )
        );
        let mut unique = p.jobs.iter().map(|j| &j.key).collect::<Vec<_>>();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), p.jobs.len());
    }

    /// The same job with the reference engine (whose keys have no `engine` line) and the
    /// default one.
    const PINNED_AUTOGRAD_KEY: &str =
        "cd6b8207ff2752e0e77eec6a1998d1afb280340d1b7aeeba20021f3c88120283";
    const PINNED_NATIVE_KEY: &str =
        "51785fa2317df603b4829deb06d839d4db406ba000bf131d20a00664349316ff";

    #[test]
    fn keys_are_stable_and_change_only_where_they_must() {
        let base = plan("[1, 4]", "0.75");
        assert_eq!(base.jobs, plan("[1, 4]", "0.75").jobs);
        // Pinned: if these change, every cache entry is orphaned. Change them only together
        // with SCHEMA, on purpose.
        let autograd = plan_with("engine = \"autograd\"\n", "[1, 4]", "0.75");
        // Its `cpu` line is the machine's; without it, the key of before CPU classes.
        let class = format!("cpu {}\n", methods::engine::cpu_class());
        let description = &autograd.jobs[0].description;
        assert!(description.contains(&class), "{description}");
        let classless = description.replace(&class, "");
        assert_eq!(sha256_hex(classless.as_bytes()), PINNED_AUTOGRAD_KEY);
        assert_eq!(keys(&base, "original")[0], PINNED_NATIVE_KEY);
        assert_eq!(keys(&base, "original")[0], sha256_hex(base.jobs[0].description.as_bytes()));
        assert!(
            base.jobs[0]
                .description
                .starts_with("schema 1\ndata mnist test\nmodel mlp 784-128-64-10 relu")
        );
        assert!(base.jobs[0].description.contains("\nengine native\n"));
        assert!(!autograd.jobs[0].description.contains("engine"));

        let gamma = plan("[1, 5]", "0.75");
        for name in ["original", "retrain", "finetune"] {
            assert_eq!(keys(&base, name), keys(&gamma, name), "{name}");
        }
        let (a, b) = (keys(&base, "mi_unlearn"), keys(&gamma, "mi_unlearn"));
        assert_eq!((a[0] == b[0], a[1] == b[1]), (true, false), "only gamma 4 -> 5 changed");

        let split = plan("[1, 4]", "0.5");
        assert_eq!(
            keys(&base, "original"),
            keys(&split, "original"),
            "the original ignores the split"
        );
        assert_ne!(keys(&base, "retrain"), keys(&split, "retrain"));

        // The three scenarios: part of a class, the whole class, a random subset.
        let whole = plan("[1, 4]", "1.0");
        let random = Plan::new(
            &Experiment::parse(
                "seeds = [0, 1]\n[forget]\nfraction = 0.1\n[methods.retrain]\nepochs = 2\n",
                Path::new("t.toml"),
            )
            .unwrap(),
            "mnist test",
            &Resolved::CPU,
        )
        .unwrap();
        assert!(random.jobs[0].description.contains("\nsplit class=all fraction=0.1\n"));
        assert!(whole.jobs[1].description.contains("\nsplit class=3 fraction=1.0\n"));
        // The baselines run on the experiment's engine too: their keys say which.
        let text = "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.75\n[methods.original]\nepochs = 2\n[methods.scrub]\n";
        let scrub = |engine: &str| {
            let text = format!("{engine}{text}");
            Plan::new(
                &Experiment::parse(&text, Path::new("t.toml")).unwrap(),
                "mnist test",
                &Resolved::CPU,
            )
            .unwrap()
        };
        let (native, autograd) = (scrub(""), scrub("engine = \"autograd\"\n"));
        assert!(native.jobs[0].description.contains("\nengine native\n"));
        assert!(native.jobs[1].description.contains("\nengine native\n"));
        assert!(
            !autograd.jobs[1].description.contains("engine"),
            "{}",
            autograd.jobs[1].description
        );
        // The device's kind is in every key; off the CPU everything trains on autograd.
        let exp = Experiment::parse(
            "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.75\n[methods.original]\nepochs = 2\n",
            Path::new("t.toml"),
        )
        .unwrap();
        let gpu = Resolved { device: tch::Device::Cuda(0), gpus: 1 };
        let (on_cpu, on_gpu) = (
            Plan::new(&exp, "mnist test", &Resolved::CPU).unwrap(),
            Plan::new(&exp, "mnist test", &gpu).unwrap(),
        );
        assert_ne!(on_cpu.jobs[0].key, on_gpu.jobs[0].key);
        assert!(on_gpu.jobs[0].description.contains("\ndevice cuda\nnondeterministic\nmethod "));
        assert!(
            on_cpu.jobs[0].description.contains("\ndevice cpu\nmethod original\nengine native\n")
        );
        assert_eq!(on_gpu.jobs[0].engine, methods::Engine::Autograd);
        assert_eq!(on_gpu.jobs[0].device, tch::Device::Cuda(0));
        let retrains = [&base, &whole, &random].map(|p| keys(p, "retrain")[0].clone());
        assert!(retrains[0] != retrains[1] && retrains[1] != retrains[2]);
    }

    #[test]
    fn replicates_add_jobs_with_their_own_keys_and_keep_the_first_ones() {
        let base = plan("[1]", "0.75");
        let three = plan_text("", "[1]", "0.75", "[audit]\nreplicates = 3\n");
        // Per seed: one original, three of each other method, and retrain's second population
        // of three (replicates 3 to 5).
        assert_eq!(three.jobs.len(), 2 * (1 + 3 * 3 + 3));
        let retrains = |seed| {
            let of = three.jobs.iter().filter(|j| j.method.name() == "retrain" && j.seed == seed);
            of.map(|j| j.replicate).collect::<Vec<_>>()
        };
        assert_eq!(retrains(1), [0, 1, 2, 3, 4, 5]);
        for name in ["original", "retrain", "finetune", "mi_unlearn"] {
            let first: Vec<String> = three
                .jobs
                .iter()
                .filter(|j| j.method.name() == name && j.replicate == 0)
                .map(|j| j.key.clone())
                .collect();
            assert_eq!(first, keys(&base, name), "{name}: replicate 0 keeps its key");
        }
        assert!(keys(&three, "original").len() == 2, "one original per seed");
        let r2 = three.jobs.iter().find(|j| j.method.name() == "retrain" && j.replicate == 2);
        let r2 = r2.unwrap();
        assert!(r2.description.contains("\nseed 0\nreplicate 2\nsplit "), "{}", r2.description);
        assert_eq!(r2.label(), "retrain epochs=2 seed=0 replicate=2");
        let mut unique: Vec<_> = three.jobs.iter().map(|j| &j.key).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), three.jobs.len());
        // Replicates of a method start from the seed's one original.
        let finetunes = three.jobs.iter().filter(|j| j.method.name() == "finetune" && j.seed == 1);
        assert!(
            finetunes
                .map(|j| j.upstream.clone())
                .all(|u| u == Some(keys(&base, "original")[1].clone()))
        );
    }

    #[test]
    fn shadows_bring_their_own_originals_and_keys() {
        let base = plan("[1]", "0.75");
        let with = plan_text("", "[1]", "0.75", "[audit]\nshadows = 16\n");
        // Per seed: the seed's 4 jobs, then 16 shadows x 4 jobs.
        assert_eq!(with.jobs.len(), 2 * 4 * 17);
        let own: Vec<&Job> = with.jobs.iter().filter(|j| j.shadow.is_none()).collect();
        assert_eq!(
            own.iter().map(|j| &j.key).collect::<Vec<_>>(),
            base.jobs.iter().map(|j| &j.key).collect::<Vec<_>>()
        );
        let shadow = |seed: u64, s: usize, name: &str| {
            with.jobs
                .iter()
                .find(|j| j.seed == seed && j.shadow == Some(s) && j.method.name() == name)
                .unwrap()
        };
        let original = shadow(1, 5, "original");
        assert!(
            original.description.contains("\nseed 1\nshadow 5 streams=own\n"),
            "{}",
            original.description
        );
        assert_eq!(shadow(1, 5, "finetune").upstream.as_ref(), Some(&original.key));
        assert_eq!(shadow(1, 5, "finetune").label(), "finetune epochs=1 seed=1 shadow=5");
        assert_ne!(original.key, shadow(1, 6, "original").key);
        let mut unique: Vec<_> = with.jobs.iter().map(|j| &j.key).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), with.jobs.len());
    }

    #[test]
    fn shards_cover_every_job_once_and_bring_their_upstream() {
        let p = plan("[1, 2, 4]", "0.75");
        let n = p.jobs.len();
        assert_eq!(n, 2 * 6);
        let mut owned = Vec::new();
        for i in 0..3 {
            let shard = p.shard(i, 3);
            for j in &shard.jobs {
                if let Some(up) = &j.upstream {
                    assert!(shard.jobs.iter().any(|u| &u.key == up), "upstream in the shard");
                }
            }
            owned.extend(shard.jobs.iter().map(|j| j.key.clone()));
        }
        owned.sort();
        owned.dedup();
        assert_eq!(owned.len(), n, "together the shards run every job");
        let mut sorted: Vec<_> = p.jobs.iter().map(|j| j.key.clone()).collect();
        sorted.sort();
        let own: Vec<_> =
            sorted.iter().enumerate().filter(|(i, _)| i % 3 == 1).map(|(_, k)| k).collect();
        let shard = p.shard(1, 3);
        assert!(own.iter().all(|k| shard.jobs.iter().any(|j| &&j.key == k)));
        assert_eq!(p.shard(0, 1).jobs, p.jobs, "one shard is the whole plan");
        // The order of the experiment file does not matter, only the keys.
        let reordered = Plan { jobs: p.jobs.iter().rev().cloned().collect() };
        let keys = |p: &Plan| {
            let mut k: Vec<_> = p.jobs.iter().map(|j| j.key.clone()).collect();
            k.sort();
            k
        };
        assert_eq!(keys(&reordered.shard(2, 3)), keys(&p.shard(2, 3)));
    }
}
