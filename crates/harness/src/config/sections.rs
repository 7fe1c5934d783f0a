//! The `[methods.<name>]` sections: each is handed to its method's registration
//! (`methods::catalog::ALL`), which reads its parameters and expands its lists; the harness
//! adds only what is about recording, not training: `eval_every`.

use std::path::{Path, PathBuf};

use methods::{AnyMethod, Invalid, Registration, catalog};
use toml::{Table, Value};

use crate::external::{DEFAULT_TIMEOUT_S, DataFiles, External, MAX_TIMEOUT_S};
use methods::method::MAX_COUNT;

/// The table of external methods under `methods`.
const EXTERNAL: &str = "external";
/// What an external method's section may say.
const EXTERNAL_KEYS: [&str; 4] = ["command", "inputs", "timeout_s", "params"];

/// The methods of an experiment, read.
#[derive(Debug, Clone)]
pub struct Sections {
    /// Every method and parameter set, in the catalog's order, each method's grid in order.
    pub methods: Vec<AnyMethod>,
    /// Per method, how many epochs apart its runs are evaluated (always after the last).
    pub eval_every: Vec<(&'static str, usize)>,
    /// The sections with every default written out, in the catalog's order.
    pub resolved: Table,
}

/// Reads the `methods` table of a file; an error is `(key, problem)` with the full key.
/// External methods (`[methods.external.<name>]`) hand their commands `data`'s files.
pub fn read(methods: &Table, data: &DataFiles) -> Result<Sections, (String, String)> {
    let mut out = Sections { methods: Vec::new(), eval_every: Vec::new(), resolved: Table::new() };
    if let Some(name) = methods.keys().find(|n| *n != EXTERNAL && catalog::find(n).is_none()) {
        let names: Vec<&str> = catalog::ALL.iter().map(|r| r.name).collect();
        return Err((
            format!("methods.{name}"),
            format!(
                "is not a method; the methods are {}, and [methods.external.NAME] for a command \
                 of yours (docs/external-methods.md)",
                names.join(", ")
            ),
        ));
    }
    for registration in catalog::ALL {
        let Some(section) = methods.get(registration.name) else { continue };
        let key = |k: &str| {
            format!("methods.{}{}{k}", registration.name, if k.is_empty() { "" } else { "." })
        };
        let Value::Table(section) = section else {
            return Err((
                key(""),
                "must be a table: [methods.NAME] followed by its parameters".into(),
            ));
        };
        let mut section = section.clone();
        let eval_every =
            take_eval_every(registration, &mut section).map_err(|(k, p)| (key(k), p))?;
        let expanded = (registration.expand)(&section)
            .map_err(|Invalid { key: k, problem }| (key(&k), problem))?;
        let mut resolved = expanded.resolved;
        if let Some(every) = eval_every {
            out.eval_every.push((registration.name, every));
            resolved.insert("eval_every".into(), Value::Integer(every as i64));
        }
        out.methods.extend(expanded.methods);
        out.resolved.insert(registration.name.into(), Value::Table(resolved));
    }
    if let Some(external) = methods.get(EXTERNAL) {
        let Value::Table(external) = external else {
            return Err((
                "methods.external".into(),
                "must be a table of methods: [methods.external.NAME] with its command".into(),
            ));
        };
        let mut resolved = Table::new();
        for (name, section) in external {
            let (methods, section) = read_external(name, section, data)?;
            out.methods.extend(methods);
            resolved.insert(name.clone(), Value::Table(section));
        }
        out.resolved.insert(EXTERNAL.into(), Value::Table(resolved));
    }
    if out.methods.is_empty() {
        let sections: Vec<String> =
            catalog::ALL.iter().map(|r| format!("[methods.{}]", r.name)).collect();
        return Err((
            "methods".into(),
            format!("is empty; add at least one of {}", sections.join(", ")),
        ));
    }
    if let Some(needs) = out.methods.iter().find(|m| m.needs_original())
        && !methods.contains_key("original")
    {
        return Err((
            format!("methods.{}", needs.name()),
            "starts from the original model; add a [methods.original] section".into(),
        ));
    }
    Ok(out)
}

/// Removes `eval_every` from a section: for methods whose runs depend on the split (their
/// history is recorded), default 1; the original has none.
fn take_eval_every(
    registration: &Registration,
    section: &mut Table,
) -> Result<Option<usize>, (&'static str, String)> {
    let given = section.remove("eval_every");
    if !registration.uses_split {
        return match given {
            None => Ok(None),
            Some(_) => Err((
                "eval_every",
                format!(
                    "is not a parameter of {}: its runs are not evaluated per epoch",
                    registration.name
                ),
            )),
        };
    }
    match given {
        None => Ok(Some(1)),
        Some(Value::Integer(n)) if (1..=MAX_COUNT as i64).contains(&n) => Ok(Some(n as usize)),
        Some(other) => {
            Err(("eval_every", format!("is {other}; it must be 1 to {MAX_COUNT} epochs")))
        }
    }
}

/// Reads `[methods.external.<name>]`: its command (resolved to a program now, so that a
/// missing one fails before any training), its input files (hashed now), its timeout and its
/// parameters (lists expand into every combination, the first varying slowest). Returns a
/// method per combination and the section with its defaults written out.
fn read_external(
    name: &str,
    section: &Value,
    data: &DataFiles,
) -> Result<(Vec<AnyMethod>, Table), (String, String)> {
    let key =
        |k: &str| format!("methods.external.{name}{}{k}", if k.is_empty() { "" } else { "." });
    let Value::Table(section) = section else {
        return Err((key(""), "must be a table: [methods.external.NAME] with its command".into()));
    };
    let well_named =
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !well_named || catalog::find(name).is_some() || name == EXTERNAL {
        return Err((
            key(""),
            format!(
                "names a method {name:?}: use letters, digits, '_' and '-', and not the name of a \
                 built-in method"
            ),
        ));
    }
    if let Some(k) = section.keys().find(|k| !EXTERNAL_KEYS.contains(&k.as_str())) {
        return Err((
            key(k),
            format!(
                "is not a key of an external method; its keys are {} (a parameter for the \
                 command goes under params)",
                EXTERNAL_KEYS.join(", ")
            ),
        ));
    }
    let strings = |k: &str, v: &Value| -> Result<Vec<String>, (String, String)> {
        let list = match v {
            Value::Array(list) => list,
            _ => return Err((key(k), "must be a list of strings".into())),
        };
        list.iter()
            .map(|e| match e {
                Value::String(s) => Ok(s.clone()),
                other => Err((key(k), format!("lists {other}, not a string"))),
            })
            .collect()
    };
    let command = match section.get("command") {
        None => {
            return Err((
                key("command"),
                "is missing: give the command that runs the method, e.g. command = [\"python\", \
                 \"examples/external/finetune.py\"]"
                    .into(),
            ));
        }
        Some(v) => strings("command", v)?,
    };
    let Some(first) = command.first() else {
        return Err((key("command"), "is empty: give the program and its arguments".into()));
    };
    let program = program(first).map_err(|problem| (key("command"), problem))?;
    let mut inputs = Vec::new();
    for path in section.get("inputs").map(|v| strings("inputs", v)).transpose()?.unwrap_or_default()
    {
        let bytes = std::fs::read(&path)
            .map_err(|e| (key("inputs"), format!("lists {path}, which cannot be read: {e}")))?;
        inputs.push((path, data::dataset::sha256_hex(&bytes)));
    }
    let seconds = match section.get("timeout_s") {
        None => Some(DEFAULT_TIMEOUT_S),
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(Value::Float(x)) => Some(*x),
        Some(_) => None,
    };
    let timeout_s = match seconds {
        Some(s) if s > 0.0 && s <= MAX_TIMEOUT_S => s,
        _ => {
            let given = match section.get("timeout_s") {
                Some(Value::Float(x)) => format!("{x:?}"),
                other => other.map_or_else(String::new, ToString::to_string),
            };
            return Err((
                key("timeout_s"),
                format!(
                    "is {given}; give seconds, more than 0 and at most {MAX_TIMEOUT_S} (30 days)"
                ),
            ));
        }
    };
    let params = match section.get("params") {
        None => Table::new(),
        Some(Value::Table(t)) => t.clone(),
        Some(_) => {
            return Err((key("params"), "must be a table: params = { name = value, ... }".into()));
        }
    };
    let mut points: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (k, v) in &params {
        let values = match v {
            Value::Array(list) if list.is_empty() => {
                return Err((key(&format!("params.{k}")), "is an empty list".into()));
            }
            Value::Array(list) => list.clone(),
            v => vec![v.clone()],
        };
        // Two equal values would be one job scheduled twice (as built-in grids say too).
        let repeated = values
            .iter()
            .enumerate()
            .find_map(|(i, v)| values[..i].iter().any(|w| same_value(w, v)).then_some(v));
        if let Some(v) = repeated {
            return Err((key(&format!("params.{k}")), format!("lists {v} twice")));
        }
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.push((k.clone(), v.clone()));
                    p
                })
            })
            .collect();
    }
    // A method's name lives as long as the process (a few bytes per section read).
    let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let methods = points
        .into_iter()
        .map(|params| {
            AnyMethod::from_arc(std::sync::Arc::new(External {
                name,
                command: command.clone(),
                program: program.clone(),
                inputs: inputs.clone(),
                timeout_s,
                params,
                data: data.clone(),
            }))
        })
        .collect();
    let mut resolved = section.clone();
    resolved.insert("timeout_s".into(), Value::Float(timeout_s));
    Ok((methods, resolved))
}

/// Whether two values of a parameter list are the same point of the grid: equal, or the
/// same number written as an integer and as a float (`1` and `1.0`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Integer(i), Value::Float(x)) | (Value::Float(x), Value::Integer(i)) => {
            *i as f64 == *x
        }
        _ => a == b,
    }
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
