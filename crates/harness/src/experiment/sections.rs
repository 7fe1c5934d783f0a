//! The `[methods.<name>]` sections: each is handed to its method's registration
//! (`methods::catalog::ALL`), which reads its parameters and expands its lists; the harness
//! adds only what is about recording, not training: `eval_every`.

use std::sync::Arc;

use methods::method::MAX_COUNT;
use methods::{AnyMethod, Invalid, Registration, Role, catalog};
use toml::{Table, Value};

/// The table of external methods under `methods`.
const EXTERNAL: &str = "external";
/// What an external method's section may say.
const EXTERNAL_KEYS: [&str; 5] = ["command", "inputs", "timeout_s", "params", "grid"];
/// What an external command's run may take, unless its section says otherwise (`timeout_s`).
pub const DEFAULT_TIMEOUT_S: f64 = 3600.0;
/// The longest `timeout_s` (30 days): more is a typo.
pub const MAX_TIMEOUT_S: f64 = 30.0 * 24.0 * 3600.0;

/// The methods of an experiment, read.
#[derive(Debug, Clone)]
pub struct Sections {
    /// Every built-in method and parameter set, in the catalog's order, each method's grid in
    /// order.
    pub methods: Vec<AnyMethod>,
    /// Every external method's parameter sets, in the file's order.
    pub external: Vec<ExternalSpec>,
    /// Per method, how many epochs apart its runs are evaluated (always after the last).
    pub eval_every: Vec<(String, usize)>,
    /// The sections with every default written out, in the catalog's order.
    pub resolved: Table,
}

/// Reads the `methods` table of a file; an error is `(key, problem)` with the full key.
pub fn read(methods: &Table) -> Result<Sections, (String, String)> {
    let mut out = Sections {
        methods: Vec::new(),
        external: Vec::new(),
        eval_every: Vec::new(),
        resolved: Table::new(),
    };
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
            out.eval_every.push((registration.name.to_owned(), every));
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
            let (specs, section) = read_external(name, section)?;
            out.external.extend(specs);
            resolved.insert(name.clone(), Value::Table(section));
        }
        out.resolved.insert(EXTERNAL.into(), Value::Table(resolved));
    }
    if out.methods.is_empty() && out.external.is_empty() {
        let sections: Vec<String> =
            catalog::ALL.iter().map(|r| format!("[methods.{}]", r.name)).collect();
        return Err((
            "methods".into(),
            format!("is empty; add at least one of {}", sections.join(", ")),
        ));
    }
    let needs = out.methods.iter().find(|m| m.needs_original()).map(|m| m.name().to_owned());
    let needs = needs.or_else(|| out.external.first().map(|e| format!("external.{}", e.name)));
    if let Some(needs) = needs
        && !out.methods.iter().any(|m| m.role() == Role::Original)
    {
        let original = catalog::ALL.iter().find(|r| r.role == Role::Original).expect("one");
        return Err((
            format!("methods.{needs}"),
            format!("starts from the original model; add a [methods.{}] section", original.name),
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

/// One point of an external method's grid as the file states it (the execution stage finds
/// its program and hashes its inputs: `execution::external`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalSpec {
    /// The section's name (`[methods.external.<name>]`), its name in every table.
    pub name: Arc<str>,
    /// The command as declared: the program's name or path, then its arguments.
    pub command: Vec<String>,
    /// Files whose contents enter the key, as declared.
    pub inputs: Vec<String>,
    pub timeout_s: f64,
    /// This run's parameters, one point of the section's grid, in declaration order.
    pub params: Vec<(String, Value)>,
    /// Its epochs: `params.epochs` if given (a whole number), else 1. The `epochs` column,
    /// and how many rows its `losses.csv` must have.
    pub epochs: usize,
}

/// Reads `[methods.external.<name>]`: its command, its input files, its timeout and its
/// parameters (lists expand as a built-in method's do: every combination, the first varying
/// slowest, or element by element with `grid = "zip"`). Returns a spec per point and the
/// section with its defaults written out.
fn read_external(
    name: &str,
    section: &Value,
) -> Result<(Vec<ExternalSpec>, Table), (String, String)> {
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
    if command.is_empty() {
        return Err((key("command"), "is empty: give the program and its arguments".into()));
    }
    let inputs =
        section.get("inputs").map(|v| strings("inputs", v)).transpose()?.unwrap_or_default();
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
    let zip = match section.get("grid") {
        None => false,
        Some(Value::String(g)) if g == "zip" || g == "product" => g == "zip",
        Some(other) => {
            return Err((key("grid"), format!("is {other}; use \"product\" or \"zip\"")));
        }
    };
    let order: Vec<String> = params.keys().cloned().collect();
    let points =
        methods::section::grid(&params, &order, zip).map_err(|Invalid { key: k, problem }| {
            let k = if k == "grid" { k } else { format!("params.{k}") };
            (key(&k), problem)
        })?;
    let name: Arc<str> = Arc::from(name);
    let specs = points
        .into_iter()
        .map(|point| {
            let epochs = match point.get("epochs") {
                None => 1,
                Some(Value::Integer(n)) if (1..=MAX_COUNT as i64).contains(n) => *n as usize,
                Some(v) => {
                    return Err((
                        key("params.epochs"),
                        format!(
                            "is {v}; `epochs` is the method's epoch count, a whole number from 1 \
                             to {MAX_COUNT} (name another parameter for anything else)"
                        ),
                    ));
                }
            };
            let params = point.into_iter().collect();
            Ok(ExternalSpec {
                name: name.clone(),
                command: command.clone(),
                inputs: inputs.clone(),
                timeout_s,
                params,
                epochs,
            })
        })
        .collect::<Result<_, _>>()?;
    let mut resolved = section.clone();
    resolved.insert("timeout_s".into(), Value::Float(timeout_s));
    Ok((specs, resolved))
}
