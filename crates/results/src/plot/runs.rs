//! The figures of a results folder's runs: the gamma sweep and the MI-unlearn histories.

use std::path::{Path, PathBuf};

use super::audit::plot_audit;
use super::chart::{HISTORY_SIZE, SWEEP_SIZE, distinct, read_drawn, remove_stale_figures, render};
use super::history::{History, draw_history};
use super::sweep::{Sweep, draw_sweep};
use crate::rows::{HistoryRow, RunRow};

pub const MAX_HISTORY_FIGURES: usize = 8;

/// Draws every figure the runs in `dir` call for; returns the files written.
pub fn plot_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let runs: Vec<RunRow> = read_drawn(&dir.join("runs.csv"))?;
    let history_path = dir.join("history.csv");
    let history: Vec<HistoryRow> =
        if history_path.exists() { read_drawn(&history_path)? } else { Vec::new() };
    let mut written = Vec::new();

    let mi_runs: Vec<&RunRow> = runs.iter().filter(|r| r.method == "mi_unlearn").collect();
    let mut sweep_epochs: Vec<usize> = Vec::new();
    for r in &mi_runs {
        let gammas =
            distinct(mi_runs.iter().filter(|o| o.epochs == r.epochs).filter_map(|o| o.gamma));
        if gammas.len() >= 3 && !sweep_epochs.contains(&r.epochs) {
            sweep_epochs.push(r.epochs);
        }
    }
    sweep_epochs.sort_unstable();
    for &epochs in &sweep_epochs {
        let sweep = Sweep::new(&runs, epochs);
        let stem = if sweep_epochs.len() == 1 {
            "gamma_sweep".to_owned()
        } else {
            format!("gamma_sweep_epochs{epochs}")
        };
        written.extend(render!(dir, &stem, SWEEP_SIZE, |root| draw_sweep(root, &sweep))?);
    }

    let mut sets: Vec<(f64, usize)> = Vec::new();
    for r in &mi_runs {
        let set = (r.gamma.unwrap_or(0.0), r.epochs);
        if r.epochs >= 2 && !sets.contains(&set) {
            sets.push(set);
        }
    }
    if !history.is_empty() && sets.len() <= MAX_HISTORY_FIGURES {
        for (gamma, epochs) in sets {
            let rows: Vec<&HistoryRow> = history
                .iter()
                .filter(|h| {
                    h.method == "mi_unlearn" && h.gamma == Some(gamma) && h.epochs == epochs
                })
                .collect();
            let Some(h) = History::new(&rows, gamma, epochs) else { continue };
            written.extend(render!(
                dir,
                &format!("mi_acc_gamma{gamma}_epochs{epochs}"),
                HISTORY_SIZE,
                |root| { draw_history(root, &h) }
            )?);
        }
    }
    if dir.join("audit.csv").exists() {
        written.extend(plot_audit(dir)?);
    }
    remove_stale_figures(dir, &written)?;
    Ok(written)
}
