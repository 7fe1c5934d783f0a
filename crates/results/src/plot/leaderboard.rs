//! A suite's leaderboard figure: every method's cell means, one bar panel per metric.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::*;
use crate::rows::{LeaderboardRow, MethodRow, Metric, Role};

pub(super) const BOARD_PANELS: [(Metric, &str); 6] = [
    (Metric::AvgGap, "avg gap to retrain (points)"),
    (Metric::ForgetAcc, "forget acc. (%)"),
    (Metric::RemainAcc, "remain acc. (%)"),
    (Metric::TestAcc, "test acc. (%)"),
    (Metric::Mia, "MIA efficacy (%)"),
    (Metric::Rte, "run time (s)"),
];

/// Draws `leaderboard.svg/png` in `dir` from its `leaderboard.csv` alone: one row per method
/// in rank order (retrain, the reference, on top), one panel of horizontal bars per metric,
/// retrain's value as a dashed line in each.
pub fn plot_leaderboard(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let rows: Vec<LeaderboardRow> = read_drawn(&dir.join("leaderboard.csv"))?;
    anyhow::ensure!(!rows.is_empty(), "{}: no rows", dir.join("leaderboard.csv").display());
    let methods: Vec<MethodRow> = read_drawn(&dir.join("methods.csv"))?;
    let height = 160 + 46 * rows.len() as u32;
    render!(dir, "leaderboard", (1800, height.max(400)), |root| draw_leaderboard(
        root, &rows, &methods
    ))
}

pub(super) fn draw_leaderboard<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[LeaderboardRow],
    methods: &[MethodRow],
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = if rows.iter().any(|r| r.ranked_by == Some(Metric::TrainGap)) {
        "Methods ranked by their mean absolute remain and forget gap to retrain"
    } else {
        "Methods ranked by their mean absolute gap to retrain"
    };
    let root = root.titled(title, font(26.0))?;
    let (labels, panels) = root.split_horizontally(300);
    let areas = panels.split_evenly((1, BOARD_PANELS.len()));
    let n = rows.len();
    let label = |r: &LeaderboardRow| {
        let rank = r.rank.map_or_else(|| "ref".to_owned(), |k| format!("{k}."));
        format!("{rank} {} ({})", r.method, r.parameters)
    };
    row_labels(&labels, rows.iter().map(label), n)?;
    let retrain = rows
        .iter()
        .find(|r| methods.iter().any(|m| m.method == r.method && m.role == Role::Reference));
    for (area, (column, desc)) in areas.iter().zip(BOARD_PANELS) {
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.value(column)).collect();
        let max = values.iter().flatten().copied().fold(0.0f64, f64::max);
        let percent =
            matches!(column, Metric::ForgetAcc | Metric::RemainAcc | Metric::TestAcc | Metric::Mia);
        let x_max = if percent { 100.0 } else { (max * 1.1).max(1e-3) };
        let mut chart = bar_panel(area, desc, 0.0..x_max, x_max, n, 3, None)?;
        let colour = match column {
            Metric::ForgetAcc => FORGET_COLOUR,
            Metric::RemainAcc => REMAIN_COLOUR,
            Metric::TestAcc => TEST_COLOUR,
            Metric::Mia => MI_COLOUR,
            Metric::Rte => RETRAIN_COLOUR,
            _ => FINETUNE_COLOUR,
        };
        chart.draw_series(
            values.iter().enumerate().filter_map(|(i, v)| v.map(|v| bar(i, n, 0.0, v, colour))),
        )?;
        if let Some(reference) = retrain.and_then(|r| r.value(column)) {
            chart.draw_series(DashedLineSeries::new(
                vec![(reference, 0.0), (reference, n as f64)],
                8,
                6,
                BLACK.stroke_width(2),
            ))?;
        }
    }
    Ok(())
}
