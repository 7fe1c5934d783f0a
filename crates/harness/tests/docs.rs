//! Docs that cannot go stale: the README and `docs/` checked against the code and the
//! committed results. A column added to a row type without its line in docs/results.md, a
//! key of an experiment file without its line in docs/experiments.md, a quoted table that no
//! longer matches the committed CSV file (with the text to paste), or a quoted mean ± std or
//! value [interval] that is no committed result fails here.

use std::path::{Path, PathBuf};

use results::rows::*;
use serde::Serialize;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The text of `doc` from the heading `heading` (a whole line) to the next heading of the same
/// level or higher.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no {heading}"));
    let level = heading.split(' ').next().unwrap().len();
    let body = &doc[start + heading.len() + 2..];
    // Lines in fenced blocks (TOML comments) are not headings.
    let end = body
        .lines()
        .scan((0, false), |(at, fenced), line| {
            let here = (*at, *fenced);
            *at += line.len() + 1;
            if line.starts_with("```") {
                *fenced = !*fenced;
            }
            Some((here, line))
        })
        .find(|((_, fenced), l)| {
            !fenced && l.starts_with('#') && l.split(' ').next().unwrap().len() <= level
        })
        .map_or(body.len(), |((at, _), _)| at);
    &body[..end]
}

/// The backticked first cells of `text`'s table rows, in order (one list per table).
fn tables(text: &str) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<String>> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("| `") {
            let name = rest.split('`').next().unwrap().to_owned();
            current.get_or_insert_with(Vec::new).push(name);
        } else if !line.starts_with('|') {
            all.extend(current.take());
        }
    }
    all.extend(current);
    all
}

fn columns<T: Serialize + Default>() -> Vec<String> {
    header::<T>()
}

fn split(columns: &str) -> Vec<String> {
    columns.split(',').map(str::to_owned).collect()
}

#[test]
fn every_results_column_is_documented_and_nothing_else() {
    let doc = read("docs/results.md");
    let metrics: Vec<String> = Metric::ALL
        .iter()
        .flat_map(|m| [format!("{}_mean", m.name()), format!("{}_std", m.name())])
        .collect();
    let summary: Vec<String> = columns::<SummaryRow>()
        .into_iter()
        .filter(|c| !metrics.contains(c))
        .flat_map(|c| match c.as_str() {
            "n_replicates" => vec![c, "<metric>_mean".into(), "<metric>_std".into()],
            _ => vec![c],
        })
        .collect();
    let files: Vec<(&str, Vec<Vec<String>>)> = vec![
        ("runs.csv", vec![columns::<RunRow>()]),
        ("history.csv", vec![columns::<HistoryRow>()]),
        ("summary.csv", vec![summary]),
        ("methods.csv", vec![columns::<MethodRow>()]),
        ("audit.csv", vec![columns::<AuditRow>()]),
        ("audit_pairs.csv", vec![columns::<PairRow>()]),
        ("audit_curve.csv", vec![columns::<CurveRow>()]),
        ("audit_epsilons.csv", vec![columns::<EpsilonRow>()]),
        ("memorization.csv", vec![columns::<MemorizationRow>()]),
        ("memorization_gallery.csv", vec![columns::<GalleryRow>()]),
        ("leaderboard.csv", vec![columns::<LeaderboardRow>()]),
        ("baseline.csv", vec![columns::<BaselineRow>()]),
    ];
    for (file, expected) in files {
        let documented = tables(section(&doc, &format!("## `{file}`")));
        assert_eq!(
            documented, expected,
            "docs/results.md's `{file}` lists other columns than the row type writes"
        );
    }
    use harness::cli::score::{COLUMNS, CURVE_COLUMNS, DIFFERENCE_COLUMNS};
    let score = tables(section(&doc, "## `harness score`'s files"));
    assert_eq!(score, [split(COLUMNS), split(DIFFERENCE_COLUMNS), split(CURVE_COLUMNS)]);
    // Every metric of summary.csv is named where its columns are described.
    let described = section(&doc, "## `summary.csv`");
    for m in Metric::ALL {
        assert!(
            described.contains(&format!("`{}`", m.name())),
            "summary.csv's metric {}",
            m.name()
        );
    }
}

/// The block of `docs/experiments.md` that shows every key.
fn reference_block(doc: &str) -> &str {
    let every = section(doc, "## Every key");
    let start = every.find("```toml\n").expect("a toml block") + 8;
    &every[start..start + every[start..].find("```").unwrap()]
}

#[test]
fn every_experiment_key_is_documented_and_real() {
    let doc = read("docs/experiments.md");
    let block = reference_block(&doc);
    // Every key it sets is real (unknown keys are errors) and the whole parses.
    let suite = harness::experiment::Suite::parse(block, Path::new("docs/experiments.md"))
        .unwrap_or_else(|e| panic!("docs/experiments.md's reference block: {e}"));
    // Every field of the experiment file's types is in the block (set, or commented).
    let raw = read("crates/harness/src/experiment/raw.rs");
    let mut fields = Vec::new();
    let mut in_struct = false;
    for line in raw.lines() {
        if line.starts_with("pub struct Raw") {
            in_struct = true;
        } else if line.starts_with('}') {
            in_struct = false;
        } else if in_struct && let Some(rest) = line.trim().strip_prefix("pub ") {
            fields.push(rest.split(':').next().unwrap().trim().to_owned());
        }
    }
    assert!(fields.len() > 20 && fields.contains(&"memorization".to_owned()), "{fields:?}");
    let word = |text: &str, w: &str| {
        text.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|t| t == w)
    };
    for f in &fields {
        assert!(word(block, f), "docs/experiments.md's reference block lacks the key `{f}`");
    }
    // Every parameter of every method it lists (the resolved file writes them all out) is
    // named in that method's section.
    for cell in &suite.cells {
        let resolved: toml::Table = toml::from_str(&cell.resolved).unwrap();
        for (name, section) in resolved["methods"].as_table().unwrap() {
            let header = format!("[methods.{name}]");
            let Some(at) = block.find(&header) else { continue };
            let text = &block[at..];
            let text = &text[..text[1..].find("\n[").map_or(text.len(), |i| i + 1)];
            for key in section.as_table().map(|t| t.keys().collect()).unwrap_or(Vec::new()) {
                assert!(word(text, key), "docs/experiments.md: {header} does not name `{key}`");
            }
        }
    }
}

/// `value` as the tables write it: `spec` is `column` (the cell as it is), `column:N` (N
/// decimals), `column:N±` (`<column>_mean ± <column>_std`) or `column:Ni` (`value [lo, hi]`
/// from `column`, `column_lo`, `column_hi`); an empty cell is `-`.
fn cell(row: &std::collections::HashMap<String, String>, spec: &str) -> String {
    let (column, format) = spec.split_once(':').unwrap_or((spec, ""));
    let get = |c: &str| row.get(c).unwrap_or_else(|| panic!("no column {c}")).clone();
    let num = |c: &str, d: usize| {
        let v = get(c);
        if v.is_empty() { "-".to_owned() } else { format!("{:.d$}", v.parse::<f64>().unwrap()) }
    };
    let digits = |f: &str| f.trim_end_matches(['±', 'i']).parse::<usize>().unwrap();
    match format {
        "" => {
            let v = get(column);
            if v.is_empty() { "-".to_owned() } else { v }
        }
        f if f.ends_with('±') => {
            let (m, s) = (
                num(&format!("{column}_mean"), digits(f)),
                num(&format!("{column}_std"), digits(f)),
            );
            if s == "-" { m } else { format!("{m} ± {s}") }
        }
        f if f.ends_with('i') => {
            let d = digits(f);
            let v = num(column, d);
            if v == "-" {
                v
            } else {
                format!(
                    "{v} [{}, {}]",
                    num(&format!("{column}_lo"), d),
                    num(&format!("{column}_hi"), d)
                )
            }
        }
        f => num(column, digits(f)),
    }
}

/// Every `<!-- table FILE: SPEC | SPEC ... -->` in `doc` is followed by a Markdown table whose
/// rows are FILE's rows in those columns; every `<!-- summary DIR -->` by a text block that is
/// DIR's summary as `harness` prints it.
fn check_quotes(name: &str, doc: &str) -> usize {
    let mut checked = 0;
    let lines: Vec<&str> = doc.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(spec) = line.strip_prefix("<!-- table ").and_then(|l| l.strip_suffix(" -->")) {
            let (file, cells) = spec.split_once(": ").unwrap();
            let rows: Vec<std::collections::HashMap<String, String>> =
                read_rows(&root().join(file));
            let specs: Vec<&str> = cells.split(" | ").collect();
            let want: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "| {} |",
                        specs.iter().map(|s| cell(r, s)).collect::<Vec<_>>().join(" | ")
                    )
                })
                .collect();
            let have: Vec<String> = lines[i + 3..]
                .iter()
                .take_while(|l| l.starts_with('|'))
                .map(|l| l.to_string())
                .collect();
            assert_eq!(
                have,
                want,
                "{name}: the table after line {} is not {file}:\n{}",
                i + 1,
                want.join("\n")
            );
            checked += 1;
        }
        if let Some(spec) = line.strip_prefix("<!-- pairs ").and_then(|l| l.strip_suffix(" -->")) {
            let (file, metric) = spec.split_once(": ").unwrap();
            let want = pair_matrix(file, metric);
            let have: Vec<Vec<String>> = lines[i + 3..]
                .iter()
                .take_while(|l| l.starts_with('|'))
                .map(|l| {
                    l.split('|')
                        .skip(2)
                        .map(|c| c.trim().to_owned())
                        .filter(|_| true)
                        .collect::<Vec<_>>()
                })
                .map(|mut cells| {
                    cells.pop(); // after the closing |
                    cells
                })
                .collect();
            assert_eq!(
                have,
                want,
                "{name}: the matrix after line {} is not {file}'s {metric}",
                i + 1
            );
            checked += 1;
        }
        if let Some(dir) = line.strip_prefix("<!-- summary ").and_then(|l| l.strip_suffix(" -->")) {
            let rows: Vec<SummaryRow> = read_rows(&root().join(dir).join("summary.csv"));
            let want = harness::report::folder::table(&rows);
            let block: Vec<&str> =
                lines[i + 2..].iter().take_while(|l| **l != "```").copied().collect();
            let have = format!("{}\n", block.join("\n"));
            assert_eq!(
                have,
                want,
                "{name}: the block after line {} is not {dir}'s summary:\n{want}",
                i + 1
            );
            checked += 1;
        }
    }
    checked
}

/// The verdicts of every pair of `file` on `metric`, rows and columns in its folder's
/// `audit.csv` order: `>` (the row's value is higher, the interval excludes 0), `<`, `=`
/// (tied), empty on the diagonal.
fn pair_matrix(file: &str, metric: &str) -> Vec<Vec<String>> {
    type Row = std::collections::HashMap<String, String>;
    let path = root().join(file);
    let pairs: Vec<Row> = read_rows(&path);
    let audit: Vec<Row> = read_rows(&path.with_file_name("audit.csv"));
    let ids: Vec<(&str, &str)> =
        audit.iter().map(|r| (r["method"].as_str(), r["params"].as_str())).collect();
    let verdict = |a: (&str, &str), b: (&str, &str)| -> String {
        let of = |x: (&str, &str), y: (&str, &str)| {
            pairs.iter().find(|r| {
                r["metric"] == metric
                    && (r["method_a"].as_str(), r["params_a"].as_str()) == x
                    && (r["method_b"].as_str(), r["params_b"].as_str()) == y
            })
        };
        let (row, sign) = match (of(a, b), of(b, a)) {
            (Some(r), _) => (r, 1.0),
            (None, Some(r)) => (r, -1.0),
            _ => panic!("{file}: no {metric} pair of {a:?} and {b:?}"),
        };
        let d: f64 = row["difference"].parse::<f64>().unwrap() * sign;
        if row["tied"] == "true" {
            "="
        } else if d > 0.0 {
            ">"
        } else {
            "<"
        }
        .to_owned()
    };
    ids.iter()
        .map(|&a| ids.iter().map(|&b| if a == b { String::new() } else { verdict(a, b) }).collect())
        .collect()
}

fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    results::rows::read(path).unwrap()
}

#[test]
fn quoted_tables_are_the_committed_results() {
    let mut checked = 0;
    let mut files = vec![root().join("README.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        checked += check_quotes(&path.display().to_string(), &text);
    }
    assert!(checked >= 5, "{checked} quoted tables");
}

#[test]
fn the_readme_is_short_and_keeps_the_quick_start() {
    let readme = read("README.md");
    assert!(readme.len() <= 12 * 1024, "README.md is {} bytes; keep it under 12 KB", readme.len());
    for command in [
        "scripts/setup && cargo run --release -p harness -- experiments/gamma_sweep.toml",
        "scripts/setup && cargo test --workspace --release",
    ] {
        assert!(readme.contains(&format!("\n{command}\n")), "{command}");
    }
}

#[test]
fn the_docs_links_lead_somewhere() {
    let mut files = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        files.push(e.unwrap().path());
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for link in text.split("](").skip(1).map(|l| l.split(')').next().unwrap()) {
            if link.starts_with("http") || link.starts_with('#') {
                continue;
            }
            let target = path.parent().unwrap().join(link.split('#').next().unwrap());
            assert!(target.exists(), "{} links {link}, which does not exist", path.display());
        }
    }
}

/// Every number quoted with its spread (`92.7 ± 1.3`) or its interval (`0.526 [0.524,
/// 0.528]`) in the write-ups is one of the committed results, as rounded: a mean and standard
/// deviation of a `summary.csv`, a value and interval of an `audit.csv`, or a paired difference
/// of an `audit_pairs.csv` (either way round). Quotes of other sources are marked `(cited`, within a few words.
#[test]
fn quoted_numbers_are_the_committed_results() {
    type Row = std::collections::HashMap<String, String>;
    let mut known = std::collections::HashSet::new();
    let num = |s: &str| s.parse::<f64>().ok();
    let formats = |d: usize, vs: &[f64]| vs.iter().map(|v| format!("{v:.d$}")).collect::<Vec<_>>();
    for entry in walkdir::WalkDir::new(root().join("results")) {
        let path = entry.unwrap().into_path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !["summary.csv", "audit.csv", "audit_pairs.csv"].contains(&name.as_str()) {
            continue;
        }
        let rows: Vec<Row> = read_rows(&path);
        for row in &rows {
            for (column, value) in row {
                let Some(v) = num(value) else { continue };
                let base = column.strip_suffix("_mean").unwrap_or(column);
                if let Some(s) = row.get(&format!("{base}_std")).and_then(|s| num(s)) {
                    for d in 0..=4 {
                        let f = formats(d, &[v, s]);
                        known.insert(format!("{} ± {}", f[0], f[1]));
                    }
                }
                let (lo, hi) = match column.as_str() {
                    "difference" => ("lo".to_owned(), "hi".to_owned()),
                    c => (format!("{c}_lo"), format!("{c}_hi")),
                };
                if let (Some(l), Some(h)) =
                    (row.get(&lo).and_then(|s| num(s)), row.get(&hi).and_then(|s| num(s)))
                {
                    for d in 0..=4 {
                        for (a, b, c) in [(v, l, h), (-v, -h, -l)] {
                            let f = formats(d, &[a, b, c]);
                            known.insert(format!("{} [{}, {}]", f[0], f[1], f[2]));
                        }
                    }
                }
            }
        }
    }
    let (mut checked, mut stale) = (0, Vec::new());
    for doc in ["README.md", "docs/findings.md", "docs/audit.md"] {
        let text = read(doc).replace('\n', " ");
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        let clean = |w: &str| {
            let punctuation = |c: char| "()%,;:*`.".contains(c);
            w.trim_start_matches(punctuation).trim_end_matches(punctuation).to_owned()
        };
        let decimal = |w: &str| w.contains('.') && w.parse::<f64>().is_ok();
        for i in 0..words.len().saturating_sub(2) {
            let a = clean(words[i]);
            if !decimal(&a) {
                continue;
            }
            let quote = if words[i + 1] == "±" {
                format!("{a} ± {}", clean(words[i + 2]))
            } else if words[i + 1].starts_with('[') && i + 2 < words.len() {
                let lo = words[i + 1].trim_start_matches('[').trim_end_matches(',');
                let hi = words[i + 2].split(']').next().unwrap();
                format!("{a} [{lo}, {hi}]")
            } else {
                continue;
            };
            let context = words[i.saturating_sub(8)..(i + 16).min(words.len())].join(" ");
            if context.contains("(cited") {
                continue;
            }
            if !known.contains(&quote) {
                stale.push(format!("{doc}: \"{quote}\" is no committed result: ...{context}..."));
            }
            checked += 1;
        }
    }
    assert!(stale.is_empty(), "{}", stale.join("\n"));
    assert!(checked > 50, "{checked} quotes checked");
}
