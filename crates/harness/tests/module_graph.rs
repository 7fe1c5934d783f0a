//! The module import graphs of the crates with more than a few modules have no circles: each
//! module imports only modules below it, so a module can be read, tested and changed with
//! what it imports alone. Prints the graphs (ARCHITECTURE.md shows them):
//!
//! ```text
//! cargo test --release -p harness --test module_graph -- --nocapture
//! ```
//!
//! (`MODULE_GRAPH_CRATES=<checkout>/crates` checks another checkout's crates instead.) The
//! method files of `catalog/` are printed as one node, `catalog::*`; the check covers each.
//!
//! An edge `a -> b` is a module `a` declares, or a path in `a`'s non-test code that names
//! module `b` (`crate::b::...`, `super::...`, or a child module by name); naming the crate
//! root (`crate::Thing`, a re-export) or a parent counts as an edge to it, and since it
//! declares `a`, that is a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`engine::step`, `` for the root) -> its non-test source.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walk(src) {
        let rel = entry.strip_prefix(src).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if matches!(parts.last().map(String::as_str), Some("main" | "tests" | "testutil")) {
            continue; // the binary is a crate of its own; tests are not in the graph
        }
        if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
            parts.pop();
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        // Test modules sit at the end of a file.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap().to_owned();
        out.insert(parts.join("::"), code);
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every path `code` names after `crate::` or `super::` (braces expanded), and paths that
/// start with one of `children`.
fn paths(code: &str, children: &[String]) -> Vec<(String, String)> {
    let lines: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
    let code = lines.join("\n");
    let mut out = Vec::new();
    for prefix in ["crate::", "super::"] {
        for (i, _) in code.match_indices(prefix) {
            let before = code[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for p in expand(&code[i + prefix.len()..]) {
                out.push((prefix.trim_end_matches("::").to_owned(), p));
            }
        }
    }
    for child in children {
        let pattern = format!("{child}::");
        for (i, _) in code.match_indices(&pattern) {
            let before = code[..i].chars().last();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                out.extend(expand(&code[i..]).into_iter().map(|p| ("self".to_owned(), p)));
            }
        }
    }
    out
}

/// `a::b::{c, d::e}` -> `a::b::c`, `a::b::d::e` (the text after the path is ignored).
fn expand(text: &str) -> Vec<String> {
    let end =
        text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(text.len());
    let head = &text[..end];
    if !text[end..].starts_with('{') || !head.ends_with("::") {
        return vec![head.trim_end_matches(':').to_owned()];
    }
    let (mut depth, mut items, mut start) = (0, Vec::new(), end + 1);
    for (i, c) in text[end..].char_indices() {
        let i = i + end;
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                items.push(&text[start..i]);
                start = i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    items
        .into_iter()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .flat_map(|s| expand(s).into_iter().map(move |p| format!("{head}{p}")))
        .collect()
}

/// The module a path from `from` names: the longest module prefix (the root if none).
fn target(modules: &BTreeMap<String, String>, from: &str, base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = match base {
        "crate" => Vec::new(),
        "super" => {
            let mut p: Vec<&str> = from.split("::").filter(|s| !s.is_empty()).collect();
            p.pop();
            p
        }
        _ => from.split("::").filter(|s| !s.is_empty()).collect(),
    };
    let mut best = parts.join("::");
    for seg in path.split("::") {
        parts.push(seg);
        let candidate = parts.join("::");
        if modules.contains_key(&candidate) {
            best = candidate;
        } else {
            break;
        }
    }
    best
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let mut edges = BTreeMap::new();
    for (name, code) in &modules {
        let prefix = if name.is_empty() { String::new() } else { format!("{name}::") };
        let children: Vec<String> = modules
            .keys()
            .filter_map(|m| m.strip_prefix(&prefix).filter(|c| !c.is_empty() && !c.contains("::")))
            .map(str::to_owned)
            .collect();
        // A module depends on the modules it declares, and on those its paths name.
        let targets: BTreeSet<String> = paths(code, &children)
            .into_iter()
            .map(|(base, p)| target(&modules, name, &base, &p))
            .chain(children.iter().map(|c| format!("{prefix}{c}")))
            .filter(|t| t != name)
            .collect();
        edges.insert(name.clone(), targets);
    }
    edges
}

/// A circle through the graph, if there is one.
fn circle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == node) {
            let mut c = stack[i..].to_vec();
            c.push(node.to_owned());
            return Some(c);
        }
        if !done.insert(node.to_owned()) {
            return None;
        }
        stack.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let (mut stack, mut done) = (Vec::new(), BTreeSet::new());
    edges.keys().find_map(|n| visit(n, edges, &mut stack, &mut done))
}

fn show(name: &str) -> String {
    if name.is_empty() { "(root)".into() } else { name.into() }
}

#[test]
fn the_module_graphs_have_no_circles() {
    let other = std::env::var("MODULE_GRAPH_CRATES").ok();
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let crates = other.as_ref().map_or(here.clone(), Into::into);
    let mut shown = String::new();
    for krate in ["methods", "harness", "results"] {
        let edges = graph(&crates.join(krate).join("src"));
        shown += &format!("crate {krate}:\n");
        // The method files as one node, so that adding a method leaves the picture alone.
        let one = |m: &str| if m.starts_with("catalog::") { "catalog::*".into() } else { show(m) };
        let mut shown_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in &edges {
            shown_edges.entry(one(from)).or_default().extend(to.iter().map(|t| one(t)));
        }
        for (from, to) in &shown_edges {
            let to: Vec<&str> = to.iter().map(String::as_str).filter(|t| t != from).collect();
            let to = if to.is_empty() { "-".into() } else { to.join(", ") };
            shown += &format!("  {from:<22} -> {to}\n");
        }
        let found = circle(&edges);
        assert!(
            found.is_none(),
            "crate {krate}: modules import each other in a circle: {}",
            found.unwrap().iter().map(|s| show(s)).collect::<Vec<_>>().join(" -> ")
        );
    }
    print!("{shown}");
    // ARCHITECTURE.md shows these graphs: it must show them as they are.
    if other.is_none() {
        let doc = std::fs::read_to_string(here.join("../ARCHITECTURE.md")).unwrap();
        assert!(
            doc.contains(&format!("```text\n{shown}```")),
            "ARCHITECTURE.md's module graphs are out of date; paste this output there"
        );
    }
}

/// The harness's stages, lowest first: each may import only the stages before it.
const STAGES: [&str; 4] = ["experiment", "execution", "report", "cli"];

/// An edge from a stage to a stage above it, if there is one.
fn upward(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<(String, String)> {
    let stage = |m: &str| STAGES.iter().position(|s| m.split("::").next() == Some(*s));
    edges.iter().find_map(|(from, to)| {
        let level = stage(from)?;
        to.iter().find(|t| stage(t).is_some_and(|l| l > level)).map(|t| (from.clone(), t.clone()))
    })
}

#[test]
fn each_harness_stage_imports_only_the_stages_below_it() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&here);
    for stage in STAGES {
        assert!(edges.contains_key(stage), "the harness has no {stage} folder");
    }
    assert_eq!(upward(&edges), None, "a stage imports one above it");
    let mut wrong = edges.clone();
    wrong.entry("experiment::raw".into()).or_default().insert("execution::plan".into());
    assert_eq!(upward(&wrong), Some(("experiment::raw".into(), "execution::plan".into())));
}

#[test]
fn a_circle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
            .collect();
    assert_eq!(circle(&edges).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(expand("a::{b, c::{d, e}};"), ["a::b", "a::c::d", "a::c::e"]);
}

/// A file's code before its test module (`#[cfg(test)] mod tests`, at the end of a file).
fn non_test(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap()
}

/// Every crate's source files but the test-only ones (`tests.rs`, `testutil.rs`).
fn sources() -> Vec<std::path::PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["data", "model", "methods", "results", "harness"] {
        files.extend(walk(&crates.join(krate).join("src")).into_iter().filter(|f| {
            !matches!(f.file_stem().and_then(|s| s.to_str()), Some("tests" | "testutil"))
        }));
    }
    files.sort();
    files
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter_map(|f| {
            let n = non_test(&std::fs::read_to_string(f).unwrap()).lines().count();
            (n > 600).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these by responsibility (tests apart): {long:?}");
}

/// The built-in method names `code` quotes as a value (`"retrain"`, not a JSON key
/// `"original":`).
fn quoted_names<'a>(code: &str, names: &[&'a str]) -> Vec<&'a str> {
    let code: Vec<&str> = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
    let code = code.join("\n");
    let quoted = |name: &str| {
        let q = format!("\"{name}\"");
        code.match_indices(&q).any(|(i, _)| !code[i + q.len()..].starts_with(':'))
    };
    names.iter().copied().filter(|n| quoted(n)).collect()
}

/// The harness and the results crate know methods by their roles and swept parameters
/// (`methods::Role`), never by name: outside the catalog and tests no code there matches a
/// built-in method's name.
#[test]
fn the_harness_and_results_match_no_method_by_name() {
    let names: Vec<&str> = methods::catalog::ALL.iter().map(|r| r.name).collect();
    assert!(names.contains(&"retrain") && names.contains(&"mi_unlearn"), "{names:?}");
    let found: Vec<String> = sources()
        .iter()
        .filter(|f| {
            let f = f.to_string_lossy();
            f.contains("/harness/src/") || f.contains("/results/src/")
        })
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let hits = quoted_names(non_test(&text), &names);
            (!hits.is_empty()).then(|| format!("{}: {hits:?}", f.display()))
        })
        .collect();
    assert!(found.is_empty(), "method names matched outside the catalog: {found:?}");
    let sample = "// \"scrub\" in a comment\nif m == \"retrain\" {}\njson!({\"original\": p})";
    assert_eq!(quoted_names(sample, &names), ["retrain"]);
}
