//! Reading a method's `[methods.<name>]` section ([`Registration::expand`]): its parameters,
//! with every list expanded into a grid ([`grid`], shared with external methods' `params`),
//! each point checked.

use std::fmt;

use toml::{Table, Value};

use crate::method::{AnyMethod, Invalid, Method, Role};

/// One line of the catalog: a method's name and how its section is read.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    pub name: &'static str,
    pub role: Role,
    /// Whether a model of it depends on the split (the harness evaluates such runs after
    /// their epochs; it takes `eval_every` in its section).
    pub uses_split: bool,
    /// Reads a `[methods.<name>]` section: any parameter may be a list of values, and the
    /// lists expand into every combination (the struct's earlier fields varying slowest), or
    /// element by element with `grid = "zip"` where the method has a `grid` parameter.
    /// Errors name the parameter (without the `methods.<name>.` prefix).
    pub expand: fn(&Table) -> Result<Expanded, Invalid>,
}

/// A section read: every parameter set it asks for, in grid order, and the section with
/// every default written out (lists kept as given).
#[derive(Debug, Clone)]
pub struct Expanded {
    pub methods: Vec<AnyMethod>,
    pub resolved: Table,
}

impl Registration {
    pub const fn of<M: Method>() -> Self {
        Self {
            name: M::NAME,
            role: M::ROLE,
            uses_split: M::START.uses_split(),
            expand: expand::<M>,
        }
    }
}

fn expand<M: Method>(section: &Table) -> Result<Expanded, Invalid> {
    let mut default = M::default();
    default.complete();
    let order: Vec<String> = Table::try_from(default).expect("a table").keys().cloned().collect();
    if let Some(k) = section.keys().find(|k| !order.contains(k)) {
        return Err(Invalid::new(
            k,
            format!("is not a parameter of {}; its parameters are {}", M::NAME, order.join(", ")),
        ));
    }
    let zip = matches!(section.get("grid"), Some(Value::String(s)) if s == "zip");
    let points = grid(section, &order, zip)?;
    let mut methods = Vec::new();
    let mut first: Option<M> = None;
    for table in points {
        let mut m = M::deserialize(Value::Table(table.clone())).map_err(|e| {
            // serde does not say which field failed: the first one that fails alone.
            let alone = |k: &String| {
                let one = Table::from_iter([(k.clone(), table[k].clone())]);
                M::deserialize(Value::Table(one)).is_err()
            };
            let key = table.keys().find(|k| alone(k)).map_or("", String::as_str);
            Invalid::new(key, e.message().trim_end().to_owned())
        })?;
        m.complete();
        conventions(&m)?;
        m.check()?;
        first.get_or_insert_with(|| m.clone());
        methods.push(AnyMethod::new(m));
    }
    // The section as run: every field, the lists as given (in the field's type).
    let base = Table::try_from(first.expect("at least one point")).expect("a table");
    let resolved = base
        .into_iter()
        .map(|(k, v)| {
            let value = match section.get(&k) {
                Some(Value::Array(list)) => {
                    Value::Array(list.iter().map(|e| like(e, &v)).collect())
                }
                _ => v,
            };
            (k, value)
        })
        .collect();
    Ok(Expanded { methods, resolved })
}

/// Every point of a section's grid: the section with each list-valued key of `order` replaced
/// by one of its values, over every combination (the first key varying slowest), or element
/// by element when `zip` (the lists then of one length). A list that is empty or lists a value
/// twice (numbers compared as numbers), or a zip of lists of different lengths, is an error
/// naming the key. Built-in methods' sections and external methods' `params` expand here.
pub fn grid(section: &Table, order: &[String], zip: bool) -> Result<Vec<Table>, Invalid> {
    let mut axes: Vec<(&str, &Vec<Value>)> = Vec::new();
    for k in order {
        if let Some(Value::Array(values)) = section.get(k) {
            if values.is_empty() {
                return Err(Invalid::new(k, "is an empty list; give at least one value"));
            }
            if !zip && let Some(d) = duplicate(values.iter()) {
                return Err(Invalid::new(k, format!("lists {d} twice")));
            }
            axes.push((k, values));
        }
    }
    let points: Vec<Vec<(&str, &Value)>> = if zip {
        if let Some((k, v)) = axes.iter().find(|(_, v)| v.len() != axes[0].1.len()) {
            return Err(Invalid::new(
                "grid",
                format!(
                    "is \"zip\", which pairs lists element by element, but {} has {} values and {k} {}",
                    axes[0].0,
                    axes[0].1.len(),
                    v.len()
                ),
            ));
        }
        let n = axes.first().map_or(1, |(_, v)| v.len());
        let points: Vec<Vec<_>> =
            (0..n).map(|i| axes.iter().map(|(k, v)| (*k, &v[i])).collect()).collect();
        let shown: Vec<String> = points
            .iter()
            .map(|p| p.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
            .collect();
        if let Some(d) = duplicate(shown.iter()) {
            return Err(Invalid::new("grid", format!("pairs ({d}) twice")));
        }
        points
    } else {
        axes.iter().fold(vec![Vec::new()], |points, (k, values)| {
            points
                .iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push((*k, v));
                        p
                    })
                })
                .collect()
        })
    };
    Ok(points
        .into_iter()
        .map(|point| {
            let mut table = section.clone();
            for (k, v) in point {
                table.insert(k.to_owned(), v.clone());
            }
            table
        })
        .collect())
}

/// `value` in the TOML type of `like` (an integer where a float is meant becomes a float).
fn like(value: &Value, like: &Value) -> Value {
    match (value, like) {
        (Value::Integer(i), Value::Float(_)) => Value::Float(*i as f64),
        _ => value.clone(),
    }
}

/// The first value listed twice, shown (numbers compared as numbers: `4` is `4.0`).
fn duplicate<T: fmt::Display>(values: impl Iterator<Item = T>) -> Option<String> {
    let shown: Vec<String> = values.map(|v| v.to_string()).collect();
    let same = |v: &str| v.parse::<f64>().map_or_else(|_| v.to_owned(), |x| x.to_string());
    let normal: Vec<String> = shown.iter().map(|v| same(v)).collect();
    normal.iter().enumerate().find(|(i, v)| normal[..*i].contains(v)).map(|(i, _)| shown[i].clone())
}

/// Every float parameter is finite (counts and rates are checked by their types).
fn conventions<M: Method>(m: &M) -> Result<(), Invalid> {
    for (k, v) in Table::try_from(m).expect("a table") {
        if let Value::Float(x) = v
            && !x.is_finite()
        {
            return Err(Invalid::new(&k, format!("is {x}; it must be a finite number")));
        }
    }
    Ok(())
}
