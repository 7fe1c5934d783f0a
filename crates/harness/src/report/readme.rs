//! A results folder's `README.md`, generated with its files so that browsing `results/` on a
//! code host shows what each experiment found: the experiment's description, the command
//! that regenerates the folder, the summary table and the figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use results::rows::{Metric, Stat, SummaryRow};

use crate::experiment::Experiment;

/// Writes `out/README.md` for `exp`'s folder with its `summary` and `figures`.
pub fn write(
    out: &Path,
    exp: &Experiment,
    summary: &[SummaryRow],
    figures: &[PathBuf],
) -> anyhow::Result<()> {
    results::fsutil::write_atomic(&out.join("README.md"), text(exp, summary, figures).as_bytes())
}

/// Writes a suite's `out/README.md`: its leaderboard (`board`, as `harness` prints it), its
/// figures and a link to each cell's folder.
pub fn write_suite(
    out: &Path,
    suite: &crate::experiment::Suite,
    board: &str,
    figures: &[PathBuf],
) -> anyhow::Result<()> {
    let first = &suite.cells[0];
    let mut t = heading(&suite.name, first.description.as_deref(), &first.source);
    let _ = write!(t, "## Leaderboard\n\n```text\n{board}```\n\n## Cells\n\n");
    for cell in &suite.cells {
        let dir = suite.cell_out(out, cell);
        let name = dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let _ = writeln!(t, "- [{name}]({name}/)");
    }
    t += &embedded(figures);
    results::fsutil::write_atomic(&out.join("README.md"), t.as_bytes())
}

/// The title, the description and the commands that regenerate the folder.
fn heading(name: &str, description: Option<&str>, source: &Path) -> String {
    let source = source.display();
    let mut t = format!("# {name}\n\n");
    if let Some(d) = description {
        t += &format!("{}.\n\n", d.trim_end_matches('.'));
    }
    let _ = write!(
        t,
        "Written by unlearn-bench's harness from `{source}` (the experiment as run, every default \
         written out, is `config.toml`). To regenerate this folder:\n\n```sh\ncargo run --release \
         -p harness -- {source}\n```\n\n(`cargo run --release -p harness -- report {source}` \
         writes it from the model cache alone). The repository's docs/results.md describes \
         every file.\n\n"
    );
    t
}

fn text(exp: &Experiment, summary: &[SummaryRow], figures: &[PathBuf]) -> String {
    let mut t = heading(&exp.name, exp.description.as_deref(), &exp.source);
    t += &table(summary);
    t += &embedded(figures);
    t
}

/// Each PNG of `figures`, embedded.
fn embedded(figures: &[PathBuf]) -> String {
    let mut t = String::new();
    let pngs: Vec<String> = figures
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .filter_map(|f| f.file_name()?.to_str().map(str::to_owned))
        .collect();
    if !pngs.is_empty() {
        t += "\n## Figures\n";
        for png in pngs {
            let _ = write!(t, "\n![{png}]({png})\n");
        }
    }
    t
}

/// The summary as a Markdown table: means ± standard deviations over each row's runs (seeds x
/// replicates), and an audit's scores.
fn table(rows: &[SummaryRow]) -> String {
    let pm = |s: Option<Stat>, digits: usize| match s {
        Some(Stat { mean, std: Some(std) }) => format!("{mean:.digits$} ± {std:.digits$}"),
        Some(Stat { mean, std: None }) => format!("{mean:.digits$}"),
        None => "-".to_owned(),
    };
    let mut columns = vec![
        (Metric::RemainAcc, "remain %", 2),
        (Metric::ForgetAcc, "forget %", 2),
        (Metric::TestAcc, "test %", 2),
        (Metric::ForgetGap, "forget gap", 2),
        (Metric::Mia, "MIA %", 2),
        (Metric::AvgGap, "avg gap", 2),
    ];
    let any = |m: Metric| rows.iter().any(|r| r.metric(m).is_some());
    for (metric, name, digits) in [
        (Metric::Mi, "MI", 4),
        (Metric::ForgetQuality, "F", 3),
        (Metric::ForgetQualityRatio, "F / F_ref", 2),
        (Metric::UliraAcc, "U-LiRA acc", 3),
    ] {
        if any(metric) {
            columns.push((metric, name, digits));
        }
    }
    let mut t = "## Summary\n\nMean ± standard deviation over each row's runs (seeds × replicates).\n\n| method | parameters | runs |".to_owned();
    for (_, name, _) in &columns {
        let _ = write!(t, " {name} |");
    }
    t += "\n|---|---|---|";
    t += &"---|".repeat(columns.len());
    t += "\n";
    for r in rows {
        let _ = write!(t, "| {} | {} | {} |", r.method, r.params, r.n_seeds * r.n_replicates);
        for &(metric, _, digits) in &columns {
            let _ = write!(t, " {} |", pm(r.metric(metric), digits));
        }
        t += "\n";
    }
    t
}
