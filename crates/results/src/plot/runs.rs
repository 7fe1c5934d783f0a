//! The figures of a results folder's runs: each swept method against its swept parameter,
//! and its parameter sets' histories.

use std::path::{Path, PathBuf};

use super::audit::plot_audit;
use super::chart::{HISTORY_SIZE, SWEEP_SIZE, distinct, read_drawn, remove_stale_figures, render};
use super::history::{History, draw_history};
use super::sweep::{Sweep, draw_sweep};
use crate::rows::{HistoryRow, MethodRow, RunRow};

pub const MAX_HISTORY_FIGURES: usize = 8;

/// Draws every figure the runs in `dir` call for; returns the files written. Figures key on
/// roles and swept parameters (`methods.csv`), never on method names.
pub fn plot_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let runs: Vec<RunRow> = read_drawn(&dir.join("runs.csv"))?;
    let methods_path = dir.join("methods.csv");
    anyhow::ensure!(
        methods_path.exists(),
        "{}: missing; the folder was written before figures knew methods by their roles: \
         regenerate it (run its experiment again, or `harness report` it)",
        methods_path.display()
    );
    let methods: Vec<MethodRow> = read_drawn(&methods_path)?;
    let history_path = dir.join("history.csv");
    let history: Vec<HistoryRow> =
        if history_path.exists() { read_drawn(&history_path)? } else { Vec::new() };
    let mut written = Vec::new();
    // Each run's swept value, by its method and parameter set.
    let value_of = |r: &RunRow| {
        methods.iter().find(|m| m.method == r.method && m.params == r.params).and_then(|m| m.value)
    };
    let mut swept: Vec<&MethodRow> = Vec::new();
    for m in methods.iter().filter(|m| !m.swept.is_empty()) {
        if !swept.iter().any(|s| s.method == m.method) {
            swept.push(m);
        }
    }
    for s in swept {
        let param = &s.swept;
        let points: Vec<(&RunRow, f64)> = runs
            .iter()
            .filter(|r| r.method == s.method)
            .filter_map(|r| Some((r, value_of(r)?)))
            .collect();
        let mut sweep_epochs: Vec<usize> = Vec::new();
        for (r, _) in &points {
            let of_epochs = points.iter().filter(|p| p.0.epochs == r.epochs).map(|p| p.1);
            if distinct(of_epochs).len() >= 3 && !sweep_epochs.contains(&r.epochs) {
                sweep_epochs.push(r.epochs);
            }
        }
        sweep_epochs.sort_unstable();
        for &epochs in &sweep_epochs {
            let sweep = Sweep::new(s, &points, &runs, &methods, epochs);
            let stem = if sweep_epochs.len() == 1 {
                format!("{param}_sweep")
            } else {
                format!("{param}_sweep_epochs{epochs}")
            };
            written.extend(render!(dir, &stem, SWEEP_SIZE, |root| draw_sweep(root, &sweep))?);
        }

        let mut sets: Vec<(f64, usize)> = Vec::new();
        for &(r, value) in &points {
            let set = (value, r.epochs);
            if r.epochs >= 2 && !sets.contains(&set) {
                sets.push(set);
            }
        }
        if history.is_empty() || sets.len() > MAX_HISTORY_FIGURES {
            continue;
        }
        for (value, epochs) in sets {
            // A history row belongs to the run of the same checkpoint.
            let of_set: Vec<&str> = points
                .iter()
                .filter(|(r, v)| *v == value && r.epochs == epochs)
                .map(|(r, _)| r.checkpoint.as_str())
                .collect();
            let rows: Vec<&HistoryRow> =
                history.iter().filter(|h| of_set.contains(&h.checkpoint.as_str())).collect();
            let Some(h) = History::new(&rows, (param, value), epochs) else { continue };
            written.extend(render!(
                dir,
                &format!("mi_acc_{param}{value}_epochs{epochs}"),
                HISTORY_SIZE,
                |root| { draw_history(root, &h) }
            )?);
        }
    }
    if dir.join("audit.csv").exists() {
        written.extend(plot_audit(dir, &methods)?);
    }
    written.extend(super::memorization::plot_memorization(dir)?);
    remove_stale_figures(dir, &written)?;
    Ok(written)
}
