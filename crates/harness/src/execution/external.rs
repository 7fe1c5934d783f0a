//! Methods outside the process (`[methods.external.<name>]`, docs/external-methods.md): each
//! run writes a job folder (the original model as safetensors with PyTorch's `state_dict`
//! names, the split as `.npy` indices into the training set, and `job.json`), runs the
//! declared command on it, checks the model it writes back (names, shapes, dtype, finite
//! values) and hands it to the runner, which evaluates and caches it like any other.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use data::dataset::{LoadOptions, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use methods::method::Start;
use methods::{Context, DynMethod, EpochStats, Failed};
use model::Classifier;
use serde_json::json;
use toml::Value;

use crate::execution::interrupt;
use crate::experiment::sections::ExternalSpec;

/// The version of the files' contract, in `job.json` and the cache key.
pub const CONTRACT: u32 = 1;
/// The start of a job folder's name, in the temporary directory.
const JOB_FOLDER: &str = "unlearn-bench-external";
/// Set (to anything but empty or `0`), a failed run's job folder is kept, and its error names
/// it: the inputs, the command's `stdout.log` and `stderr.log`, what it wrote.
pub const KEEP_FAILED: &str = "UNLEARN_BENCH_KEEP_FAILED";
/// The per-epoch losses a command may write in its job folder ([`read_losses`]).
const LOSSES: &str = "losses.csv";
/// Each epoch's loss and cross-entropy, as a command wrote them in [`LOSSES`].
type Losses = Vec<(f64, f64)>;
/// The lines of a failed command's stderr that its error shows.
const STDERR_LINES: usize = 20;

/// Where the experiment's data comes from, for `job.json`.
#[derive(Debug, Clone)]
pub struct DataFiles {
    pub dir: PathBuf,
    pub load: LoadOptions,
}

/// One parameter set of an external method, ready to run: its spec with its program found and
/// its input files hashed.
#[derive(Debug, Clone)]
pub struct External {
    pub spec: ExternalSpec,
    /// The program that runs the command.
    pub program: PathBuf,
    /// Each declared input file and its SHA-256.
    pub inputs: Vec<(String, String)>,
    pub data: DataFiles,
}

impl External {
    /// `spec` with its program found (so that a missing one fails before any training) and
    /// its inputs hashed; an error is `(key, problem)`, the key within the method's section.
    pub fn resolve(spec: &ExternalSpec, data: &DataFiles) -> Result<Self, (String, String)> {
        let program = program(&spec.command[0]).map_err(|p| ("command".to_owned(), p))?;
        let mut inputs = Vec::new();
        for path in &spec.inputs {
            let bytes = std::fs::read(path).map_err(|e| {
                ("inputs".to_owned(), format!("lists {path}, which cannot be read: {e}"))
            })?;
            inputs.push((path.clone(), data::dataset::sha256_hex(&bytes)));
        }
        Ok(Self { spec: spec.clone(), program, inputs, data: data.clone() })
    }
}

impl DynMethod for External {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn epochs(&self) -> usize {
        self.spec.epochs
    }

    fn key(&self) -> Vec<(String, String)> {
        let mut key = vec![
            ("contract".to_owned(), CONTRACT.to_string()),
            ("command".to_owned(), serde_json::to_string(&self.spec.command).expect("strings")),
        ];
        key.extend(self.inputs.iter().map(|(path, sha)| (format!("input {path}"), sha.clone())));
        key.extend(self.spec.params.iter().map(|(k, v)| (k.clone(), v.to_string())));
        key
    }

    fn label(&self) -> String {
        if self.spec.params.is_empty() {
            return "external".to_owned();
        }
        let shown: Vec<String> = self
            .spec
            .params
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect();
        shown.join(" ")
    }

    fn cpu_dependent(&self) -> bool {
        true
    }

    fn start(&self) -> Start {
        Start::Original
    }

    fn models_each_epoch(&self) -> bool {
        false
    }

    fn train(
        &self,
        ctx: &Context<'_>,
        on_epoch: &mut methods::loops::OnEpoch<'_>,
    ) -> Result<Classifier, Failed> {
        let (model, losses) = self.run(ctx).map_err(Failed)?;
        let epochs = self.spec.epochs;
        let stats = |(loss, ce)| EpochStats { loss, ce, mi: None, steps: 0 };
        match losses {
            // Every epoch's losses; only the last epoch's model exists.
            Some(losses) => {
                for (epoch, &pair) in (1..=epochs).zip(&losses) {
                    on_epoch(epoch, (epoch == epochs).then_some(&model), &stats(pair));
                }
            }
            // Unknown (NaN): the command wrote no `losses.csv`.
            None => on_epoch(epochs, Some(&model), &stats((f64::NAN, f64::NAN))),
        }
        Ok(model)
    }
}

impl External {
    /// Writes the job folder, runs the command, reads back its model (and every epoch's loss
    /// and cross-entropy, if it wrote `losses.csv`).
    fn run(&self, ctx: &Context<'_>) -> Result<(Classifier, Option<Losses>), String> {
        let original = ctx.original.expect("an unlearning method gets the original");
        let temp = std::env::temp_dir();
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| results::owner::sweep(&temp, JOB_FOLDER));
        // Named for its process, so that a sweep can tell when it was left behind.
        let dir = tempfile::Builder::new()
            .prefix(&results::owner::temp_name(JOB_FOLDER))
            .tempdir_in(&temp)
            .map_err(|e| format!("cannot make a job folder in {}: {e}", temp.display()))?;
        let path = dir.path().to_owned();
        let _folder = interrupt::registry().cleanup(move || {
            let _ = std::fs::remove_dir_all(&path);
        });
        let result = self.run_in(dir.path(), ctx, original);
        match result {
            Err(why)
                if std::env::var_os(KEEP_FAILED).is_some_and(|v| !v.is_empty() && v != "0") =>
            {
                let kept = dir.keep();
                Err(format!("{why} (its job folder is kept for debugging: {})", kept.display()))
            }
            Err(why) => {
                Err(format!("{why} (set {KEEP_FAILED}=1 to keep its job folder for debugging)"))
            }
            ok => ok,
        }
    }

    /// [`External::run`] in the job folder `dir`.
    fn run_in(
        &self,
        dir: &Path,
        ctx: &Context<'_>,
        original: &Classifier,
    ) -> Result<(Classifier, Option<Losses>), String> {
        let job = self.write_job(dir, ctx, original)?;
        let (stdout, stderr) = (dir.join("stdout.log"), dir.join("stderr.log"));
        let file = |p: &Path| {
            std::fs::File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
        };
        let mut command = Command::new(&self.program);
        command
            .args(&self.spec.command[1..])
            .arg(&job)
            .env("UNLEARN_BENCH_JOB", &job)
            .stdin(Stdio::null())
            .stdout(file(&stdout)?)
            .stderr(file(&stderr)?);
        // Started and registered in one step: an interrupt stops it, whenever it comes.
        let (mut child, _process) = {
            let mut registry = interrupt::registry();
            let child = command
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
            let pid = child.id();
            (child, registry.cleanup(move || kill_tree(pid)))
        };
        let t0 = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if t0.elapsed().as_secs_f64() > self.spec.timeout_s => {
                    kill_all(&mut child);
                    return Err(format!(
                        "timed out after {} s (timeout_s) and was killed{}",
                        self.spec.timeout_s,
                        tail(&stderr)
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("cannot wait for the command: {e}")),
            }
        };
        if !status.success() {
            return Err(format!("the command exited with {status}{}", tail(&stderr)));
        }
        let output = dir.join("unlearned.safetensors");
        if !output.exists() {
            return Err(format!(
                "the command exited 0 but wrote no model (job.json's \"output\", {}){}",
                output.display(),
                tail(&stderr)
            ));
        }
        let model =
            read_model(&output, original).map_err(|why| format!("{why}{}", tail(&stderr)))?;
        Ok((model, read_losses(&dir.join(LOSSES), self.spec.epochs)?))
    }

    /// The job folder's inputs: `original.safetensors`, `remain.npy`, `forget.npy`,
    /// `job.json` (returned).
    fn write_job(
        &self,
        dir: &Path,
        ctx: &Context<'_>,
        original: &Classifier,
    ) -> Result<PathBuf, String> {
        let path = |name: &str| dir.join(name);
        original.save(&path("original.safetensors")).map_err(|e| e.to_string())?;
        let write = |name: &str, bytes: Vec<u8>| {
            std::fs::write(path(name), bytes).map_err(|e| format!("cannot write {name}: {e}"))
        };
        for (name, ids) in [("remain.npy", ctx.data.remain()), ("forget.npy", ctx.data.forget())] {
            write(name, results::npy::to_bytes(&[ids.len()], ids))?;
        }
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let file = |name: &str| absolute(self.data.dir.join(name)).display().to_string();
        let (mean, std) = self.data.load.kind.mean_std();
        let spec = &original.spec();
        let mut shapes = serde_json::Map::new();
        let mut names: Vec<(String, Vec<i64>)> = original
            .var_store()
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.size()))
            .collect();
        names.sort();
        for (name, size) in names {
            shapes.insert(name, json!(size));
        }
        let params: serde_json::Map<String, serde_json::Value> = self
            .spec
            .params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_value(v).expect("a TOML value is JSON")))
            .collect();
        let job = json!({
            "contract": CONTRACT,
            "method": &*self.spec.name,
            "params": params,
            "seed": ctx.seed,
            "replicate": ctx.replicate,
            "shadow": ctx.shadow,
            "device": "cpu",
            "threads": 1,
            "dataset": {
                "name": self.data.load.kind.name(),
                "train_images": file(TRAIN_IMAGES),
                "train_labels": file(TRAIN_LABELS),
                "test_images": file(TEST_IMAGES),
                "test_labels": file(TEST_LABELS),
                "train_limit": self.data.load.train_limit,
                "test_limit": self.data.load.test_limit,
                "mean": mean,
                "std": std,
            },
            "model": {
                "architecture": spec.describe(),
                "input": spec.input,
                "hidden": spec.hidden,
                "classes": spec.classes,
                "parameters": shapes,
            },
            "original": path("original.safetensors"),
            "remain": path("remain.npy"),
            "forget": path("forget.npy"),
            "output": path("unlearned.safetensors"),
            "losses": path(LOSSES),
        });
        let text = serde_json::to_string_pretty(&job).expect("JSON");
        write("job.json", text.into_bytes())?;
        Ok(path("job.json"))
    }
}

/// Kills `child` and every process it started, then reaps it.
fn kill_all(child: &mut std::process::Child) {
    kill_tree(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills process `pid` and every process it started (found through `/proc` on Linux: the
/// command stays in the harness's process group, so that Ctrl-C stops it with the harness),
/// the descendants first, so that none is left to another parent.
fn kill_tree(pid: u32) {
    #[cfg(target_os = "linux")]
    let mut victims = descendants(pid);
    #[cfg(not(target_os = "linux"))]
    let mut victims = Vec::new();
    victims.push(pid);
    #[cfg(unix)]
    for pid in victims {
        if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// The processes descended from `root`, from each process's parent in `/proc/<pid>/stat`.
#[cfg(target_os = "linux")]
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // "pid (comm) state ppid ...": the command name may hold spaces and parentheses.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.split_off(1)
}

/// The program a command's first word names: `python` is the Python `scripts/setup`
/// installs (with torch, numpy and safetensors), a word with a `/` a file, anything else
/// looked up on `PATH`.
fn program(word: &str) -> Result<PathBuf, String> {
    if word == "python" {
        // Where scripts/setup puts it: ${UNLEARN_BENCH_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/
        // unlearn-bench}/torch-2.13.0 (and it writes UNLEARN_BENCH_PYTHON into the cargo
        // config, for processes cargo starts).
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let setup = var("UNLEARN_BENCH_PYTHON").or_else(|| {
            let home = var("UNLEARN_BENCH_HOME").or_else(|| {
                let cache = var("XDG_CACHE_HOME").or_else(|| Some(var("HOME")?.join(".cache")))?;
                Some(cache.join("unlearn-bench"))
            })?;
            Some(home.join("torch-2.13.0/bin/python"))
        });
        return match setup {
            Some(p) if p.is_file() => Ok(p),
            _ => Err("names python, the Python that scripts/setup installs, which is not there \
                 (nor is UNLEARN_BENCH_PYTHON set): run scripts/setup, or name another \
                 interpreter, e.g. python3"
                .into()),
        };
    }
    if word.contains('/') {
        let path = Path::new(word);
        return if path.is_file() {
            Ok(std::path::absolute(path).unwrap_or_else(|_| path.to_owned()))
        } else {
            Err(format!("names {word}, which is not a file"))
        };
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|d| d.join(word)).find(|p| p.is_file())
    });
    found.ok_or_else(|| format!("names {word}, which is not a program on PATH"))
}

/// Each epoch's `loss` and `ce` (`ce` defaults to `loss`) from the per-epoch losses a command
/// may write (`epoch,loss[,ce]`, one row for each of its `epochs` in order, finite values);
/// `None` if it wrote none.
fn read_losses(path: &Path, epochs: usize) -> Result<Option<Losses>, String> {
    if !path.exists() {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Row {
        epoch: usize,
        loss: f64,
        ce: Option<f64>,
    }
    let bad = |why: String| {
        format!(
            "{}: {why} (the contract: a header `epoch,loss` or `epoch,loss,ce`, then one row per epoch from 1 to the method's `epochs` ({epochs}), finite numbers)",
            path.display()
        )
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let mut losses = Vec::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let row = row.map_err(|e| bad(e.to_string()))?;
        if row.epoch != i + 1 {
            return Err(bad(format!("row {} is epoch {}, not {}", i + 1, row.epoch, i + 1)));
        }
        let ce = row.ce.unwrap_or(row.loss);
        if !(row.loss.is_finite() && ce.is_finite()) {
            return Err(bad(format!(
                "epoch {} has a loss of {} and a CE of {ce}",
                row.epoch, row.loss
            )));
        }
        losses.push((row.loss, ce));
    }
    if losses.len() != epochs {
        return Err(bad(format!("it has {} row(s) for {epochs} epoch(s)", losses.len())));
    }
    Ok(Some(losses))
}

/// `like`'s architecture with the parameters of the safetensors file at `path`, which must
/// hold exactly `like`'s names, each float32 of `like`'s shape, every value finite.
pub fn read_model(path: &Path, like: &Classifier) -> Result<Classifier, String> {
    let tensors = tch::Tensor::read_safetensors(path)
        .map_err(|e| format!("{} is not a safetensors file: {e}", path.display()))?;
    let expected = like.var_store().variables();
    let mut problems = Vec::new();
    for (name, t) in &tensors {
        match expected.get(name) {
            None => problems.push(format!("unexpected tensor {name:?}")),
            Some(e) if e.size() != t.size() => problems.push(format!(
                "{name} has shape {:?}, the model's is {:?}",
                t.size(),
                e.size()
            )),
            Some(_) if t.kind() != tch::Kind::Float => {
                problems.push(format!("{name} is {:?}, not float32", t.kind()))
            }
            Some(_) if !bool::try_from(t.isfinite().all()).unwrap_or(false) => {
                problems.push(format!("{name} has NaN or infinite values"))
            }
            Some(_) => {}
        }
    }
    let mut missing: Vec<&String> =
        expected.keys().filter(|n| !tensors.iter().any(|(t, _)| t == *n)).collect();
    missing.sort();
    problems.extend(missing.into_iter().map(|n| format!("tensor {n:?} is missing")));
    if !problems.is_empty() {
        problems.sort();
        return Err(format!(
            "the model it wrote does not fit {}: {}",
            like.spec().describe(),
            problems.join("; ")
        ));
    }
    let model = like.duplicate();
    let vars = model.var_store().variables();
    tch::no_grad(|| {
        for (name, t) in &tensors {
            vars[name].shallow_clone().copy_(t);
        }
    });
    Ok(model)
}

/// The last lines of the file at `path`, as an error's tail ("" when empty).
fn tail(path: &Path) -> String {
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    if read.is_err() || text.trim().is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let shown = &lines[lines.len().saturating_sub(STDERR_LINES)..];
    format!("; the last {} lines of its stderr:\n  {}", shown.len(), shown.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::ClassifierSpec;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn a_model_read_back_must_have_the_originals_names_shapes_dtype_and_finite_values() {
        let spec = ClassifierSpec { input: 4, hidden: vec![3], classes: 2, ..Default::default() };
        let like = Classifier::init(&spec, &mut data::rng::stream(1, "init"), Device::Cpu);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, tensors: Vec<(&str, Tensor)>| {
            let path = dir.path().join(name);
            Tensor::write_safetensors(&tensors, &path).unwrap();
            read_model(&path, &like)
        };
        let good = || -> Vec<(&str, Tensor)> {
            let mut v: Vec<_> = like.var_store().variables().into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v.into_iter().map(|(n, t)| (leak(n), t.detach() * 2.0)).collect()
        };
        let read = write("good.safetensors", good()).unwrap();
        let doubled: Vec<f32> = like.flat_parameters().iter().map(|p| p * 2.0).collect();
        assert_eq!(read.flat_parameters(), doubled);

        let mut extra = good();
        extra.push(("fc9.weight", Tensor::zeros([1], (Kind::Float, Device::Cpu))));
        let err = write("extra.safetensors", extra).unwrap_err();
        assert!(err.contains("unexpected tensor \"fc9.weight\""), "{err}");
        let missing: Vec<_> = good().into_iter().filter(|(n, _)| *n != "fc1.bias").collect();
        let err = write("missing.safetensors", missing).unwrap_err();
        assert!(err.contains("tensor \"fc1.bias\" is missing"), "{err}");
        let reshaped: Vec<_> = good()
            .into_iter()
            .map(|(n, t)| if n == "fc2.weight" { (n, t.view([-1])) } else { (n, t) })
            .collect();
        let err = write("shape.safetensors", reshaped).unwrap_err();
        assert!(err.contains("fc2.weight has shape [6], the model's is [2, 3]"), "{err}");
        assert!(!err.contains("missing"), "a tensor that is there is not missing: {err}");
        let doubles: Vec<_> = good()
            .into_iter()
            .map(|(n, t)| if n == "fc1.weight" { (n, t.to_kind(Kind::Double)) } else { (n, t) })
            .collect();
        let err = write("dtype.safetensors", doubles).unwrap_err();
        assert!(err.contains("fc1.weight is Double, not float32"), "{err}");
        let infinite: Vec<_> = good()
            .into_iter()
            .map(|(n, t)| if n == "fc2.bias" { (n, t / 0.0) } else { (n, t) })
            .collect();
        let err = write("inf.safetensors", infinite).unwrap_err();
        assert!(err.contains("fc2.bias has NaN or infinite values"), "{err}");
        assert!(!err.contains("missing"), "only what is wrong with it: {err}");
        std::fs::write(dir.path().join("junk.safetensors"), b"not a model").unwrap();
        let err = read_model(&dir.path().join("junk.safetensors"), &like).unwrap_err();
        assert!(err.contains("is not a safetensors file"), "{err}");
    }

    #[test]
    fn losses_are_read_for_every_epoch_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str, epochs: usize| {
            let path = dir.path().join("losses.csv");
            std::fs::write(&path, text).unwrap();
            read_losses(&path, epochs)
        };
        assert_eq!(read_losses(&dir.path().join("none.csv"), 2), Ok(None));
        let two = write("epoch,loss\n1,0.5\n2,0.25\n", 2);
        assert_eq!(two, Ok(Some(vec![(0.5, 0.5), (0.25, 0.25)])));
        assert_eq!(write("epoch,loss,ce\n1,0.5,0.4\n", 1), Ok(Some(vec![(0.5, 0.4)])));
        let short = write("epoch,loss\n1,0.5\n", 3).unwrap_err();
        assert!(
            short.contains("it has 1 row(s) for 3 epoch(s)") && short.contains("(3)"),
            "{short}"
        );
        let err = write("epoch,loss\n2,0.5\n", 1).unwrap_err();
        assert!(err.contains("row 1 is epoch 2, not 1"), "{err}");
        let err = write("epoch,loss\n1,NaN\n", 1).unwrap_err();
        assert!(err.contains("epoch 1 has a loss of NaN"), "{err}");
        assert!(write("epoch,loss\n", 1).unwrap_err().contains("it has 0 row(s) for 1 epoch(s)"));
        assert!(write("epoch\n1\n", 1).unwrap_err().contains("the contract: a header"));
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }
}
