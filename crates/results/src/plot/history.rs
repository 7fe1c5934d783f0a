//! A swept method's parameter set's history: MI and accuracies against epoch.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::*;
use super::sweep::Curve;
use crate::rows::HistoryRow;

pub(super) struct History {
    /// The swept parameter and its value.
    pub(super) parameter: String,
    pub(super) value: f64,
    pub(super) epochs: usize,
    /// What the means and spreads are over (`3 seeds`, `64 replicates`).
    pub(super) over: String,
    pub(super) mi: Curve,
    pub(super) forget: Curve,
    pub(super) remain: Curve,
    pub(super) test: Curve,
}

impl History {
    /// The curves over the epochs the history holds (every epoch, or every `eval_every`), each
    /// point the mean and spread over the seeds evaluated then. `None` without any row.
    pub(super) fn new(
        rows: &[&HistoryRow],
        (parameter, value): (&str, f64),
        epochs: usize,
    ) -> Option<Self> {
        let mut evaluated: Vec<usize> = rows.iter().map(|r| r.epoch).collect();
        evaluated.sort_unstable();
        evaluated.dedup();
        if evaluated.is_empty() {
            return None;
        }
        let curve = |f: &dyn Fn(&HistoryRow) -> Option<f64>| {
            Curve::from_groups(
                evaluated
                    .iter()
                    .map(|&e| {
                        (
                            e as f64,
                            rows.iter().filter(|r| r.epoch == e).filter_map(|r| f(r)).collect(),
                        )
                    })
                    .collect(),
            )
        };
        Some(Self {
            parameter: parameter.to_owned(),
            value,
            epochs,
            over: over_runs(rows.iter().map(|r| (r.seed, r.replicate))),
            mi: curve(&|r| r.mi),
            forget: curve(&|r| r.forget_acc),
            remain: curve(&|r| r.remain_acc),
            test: curve(&|r| r.test_acc),
        })
    }
}

pub(super) fn draw_history<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &History,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = format!(
        "Mutual information & accuracy vs. epochs ({} = {}, mean ± 1 std over {})",
        h.parameter, h.value, h.over
    );
    let root = root.titled(&title, font(26.0))?;
    let (plot, legend_area) = root.split_vertically(root.dim_in_pixel().1 - 60);
    let x = if h.epochs == 1 { 0.5..1.5 } else { 1.0..h.epochs as f64 };
    let mi_y = padded(h.mi.range().unwrap_or(0.0..0.05), 0.1, 1e-4);
    let acc = union([h.forget.range(), h.remain.range(), h.test.range()]).unwrap_or(0.0..100.0);
    let acc_y = (acc.start - 2.0).max(0.0).floor()..100.5;

    let mut chart = ChartBuilder::on(&plot)
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(100)
        .right_y_label_area_size(90)
        .build_cartesian_2d(x.clone(), mi_y)?
        .set_secondary_coord(x, acc_y);
    chart
        .configure_mesh()
        .x_desc("epoch of unlearning")
        .y_desc("mutual information I(Y_hat; Z) (nats)")
        .y_label_formatter(&|v| format!("{v:.4}"))
        .x_label_formatter(&|v| {
            if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() }
        })
        .label_style(font(18.0))
        .axis_desc_style(font(22.0))
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("accuracy (%)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(font(18.0))
        .axis_desc_style(font(22.0))
        .draw()?;
    for (curve, colour) in
        [(&h.forget, FORGET_COLOUR), (&h.remain, REMAIN_COLOUR), (&h.test, TEST_COLOUR)]
    {
        chart.draw_secondary_series(std::iter::once(Polygon::new(
            curve.band(),
            colour.mix(0.2).filled(),
        )))?;
        chart.draw_secondary_series(DashedLineSeries::new(
            curve.mean(),
            14,
            8,
            colour.stroke_width(3),
        ))?;
        // Markers, so that a history of one evaluation (`eval_every` = epochs) shows.
        chart.draw_secondary_series(
            curve.mean().into_iter().map(|p| Circle::new(p, 5, colour.filled())),
        )?;
    }
    chart.draw_series(std::iter::once(Polygon::new(h.mi.band(), MI_COLOUR.mix(0.2).filled())))?;
    chart.draw_series(LineSeries::new(h.mi.mean(), MI_COLOUR.stroke_width(3)))?;
    chart.draw_series(h.mi.mean().into_iter().map(|p| Circle::new(p, 5, MI_COLOUR.filled())))?;
    legend(
        &legend_area,
        &[
            ("mutual information (left)", MI_COLOUR, Line::Solid),
            ("forget acc.", FORGET_COLOUR, Line::Dashed),
            ("remain acc.", REMAIN_COLOUR, Line::Dashed),
            ("test acc.", TEST_COLOUR, Line::Dashed),
        ],
    )
}
