//! The `[methods.<name>]` sections: each is handed to its method's registration
//! (`methods::catalog::ALL`), which reads its parameters and expands its lists; the harness
//! adds only what is about recording, not training: `eval_every`.

use methods::{AnyMethod, Invalid, Registration, catalog};
use toml::{Table, Value};

use methods::method::MAX_COUNT;

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
pub fn read(methods: &Table) -> Result<Sections, (String, String)> {
    let mut out = Sections { methods: Vec::new(), eval_every: Vec::new(), resolved: Table::new() };
    if let Some(name) = methods.keys().find(|n| catalog::find(n).is_none()) {
        let names: Vec<&str> = catalog::ALL.iter().map(|r| r.name).collect();
        return Err((
            format!("methods.{name}"),
            format!("is not a method; the methods are {}", names.join(", ")),
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
