//! The audit's figure: forgetting quality, U-LiRA and the epsilon buckets per method.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::*;
use crate::rows::{AuditRow, EpsilonRow};

/// One method and parameter set of an audit, its values averaged over seeds.
pub(super) struct Audited {
    pub(super) label: String,
    pub(super) forget_quality: Option<f64>,
    pub(super) floor: Option<f64>,
    pub(super) ulira: Option<f64>,
    /// Shares of the forget examples in [`EPSILON_GROUPS`].
    pub(super) epsilon_shares: Vec<f64>,
}

/// How the score treats an epsilon: full points, partial points, none, and the cap (a
/// distribution that does not spread at all).
pub(super) const EPSILON_GROUPS: [(&str, RGBColor); 4] = [
    ("epsilon < 0.5: full points", REMAIN_COLOUR),
    ("partial points", MI_COLOUR),
    ("beyond the last bucket: 0", FORGET_COLOUR),
    ("50 (cap): 0", RETRAIN_COLOUR),
];

/// Draws `audit.svg` and `audit.png` from `audit.csv` and `audit_epsilons.csv`.
pub fn plot_audit(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let rows: Vec<AuditRow> = read_drawn(&dir.join("audit.csv"))?;
    let epsilons: Vec<EpsilonRow> = read_drawn(&dir.join("audit_epsilons.csv"))?;
    let mut methods: Vec<Audited> = Vec::new();
    for row in &rows {
        let label = format!("{} ({})", row.method, row.params);
        if methods.iter().any(|m| m.label == label) {
            continue;
        }
        let of: Vec<&AuditRow> =
            rows.iter().filter(|r| r.method == row.method && r.params == row.params).collect();
        let mean = |v: fn(&AuditRow) -> Option<f64>| {
            let present: Vec<f64> = of.iter().filter_map(|r| v(r)).collect();
            (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
        };
        // The last bucket that scores: its start is below ceil(ln(N - 1)) - 0.5.
        let limit = (row.models as f64 - 1.0).ln().ceil();
        let mut shares = vec![0.0; EPSILON_GROUPS.len()];
        let mine = epsilons.iter().filter(|e| e.method == row.method && e.params == row.params);
        let total: usize = mine.clone().map(|e| e.examples).sum();
        for e in mine {
            let group = if e.bucket >= 50.0 {
                3
            } else if e.bucket + 0.5 > limit {
                2
            } else if e.bucket == 0.0 {
                0
            } else {
                1
            };
            shares[group] += e.examples as f64 / total as f64;
        }
        methods.push(Audited {
            label,
            forget_quality: mean(|r| r.forget_quality),
            floor: mean(|r| r.forget_quality_floor),
            ulira: mean(|r| r.ulira_acc),
            epsilon_shares: if total > 0 { shares } else { Vec::new() },
        });
    }
    anyhow::ensure!(!methods.is_empty(), "{}: no rows", dir.join("audit.csv").display());
    let height = 200 + 46 * methods.len() as u32;
    render!(dir, "audit", (1800, height.max(420)), |root| draw_audit(root, &methods))
}

pub(super) fn draw_audit<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    methods: &[Audited],
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Per-example forgetting audit: replicates against retrain's, shadows against U-LiRA",
        font(26.0),
    )?;
    let (body, key) = root.split_vertically(root.dim_in_pixel().1 - 50);
    let (labels, panels) = body.split_horizontally(300);
    let areas = panels.split_evenly((1, 3));
    let n = methods.len();
    row_labels(&labels, methods.iter().map(|m| m.label.clone()), n)?;
    // F, with each row's noise floor as a black tick.
    let mut chart =
        bar_panel(&areas[0], "Forgetting quality F (tick: noise floor)", 0.0..1.05, n, 5, Some(1))?;
    chart.draw_series(
        methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some(bar(i, n, 0.0, m.forget_quality?, FINETUNE_COLOUR))),
    )?;
    chart.draw_series(methods.iter().enumerate().filter_map(|(i, m)| {
        let y = (n - 1 - i) as f64;
        let f = m.floor?;
        Some(PathElement::new(vec![(f, y + 0.08), (f, y + 0.92)], BLACK.stroke_width(3)))
    }))?;
    // U-LiRA's accuracy, 0.5 being perfect unlearning.
    // Close to 0.5 on models that generalise: the axis spans what was measured.
    let top = methods.iter().filter_map(|m| m.ulira).fold(0.6f64, f64::max);
    let x = 0.45..(top + 0.02).min(1.0);
    let mut chart =
        bar_panel(&areas[1], "U-LiRA attack accuracy (0.5: perfect)", x, n, 5, Some(2))?;
    chart.draw_series(
        methods
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some(bar(i, n, 0.45, m.ulira?, FORGET_COLOUR))),
    )?;
    chart.draw_series(DashedLineSeries::new(
        vec![(0.5, 0.0), (0.5, n as f64)],
        8,
        6,
        BLACK.stroke_width(2),
    ))?;
    // The epsilons' buckets, stacked.
    let mut chart = bar_panel(&areas[2], "Forget examples by epsilon", 0.0..1.05, n, 5, Some(1))?;
    for (i, m) in methods.iter().enumerate() {
        let mut from = 0.0;
        for (share, (_, colour)) in m.epsilon_shares.iter().zip(EPSILON_GROUPS) {
            chart.draw_series(std::iter::once(bar(i, n, from, from + share, colour)))?;
            from += share;
        }
    }
    let keys = key.split_evenly((1, EPSILON_GROUPS.len()));
    for (area, (name, colour)) in keys.iter().zip(EPSILON_GROUPS) {
        area.draw(&Rectangle::new([(310, 14), (336, 34)], colour.filled()))?;
        area.draw(&Text::new(name, (344, 24), font(16.0).pos(Pos::new(HPos::Left, VPos::Center))))?;
    }
    Ok(())
}
