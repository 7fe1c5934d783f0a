//! The gamma sweep: accuracies and MI against gamma, with retrain and finetune as bands.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::*;
use crate::rows::{RunRow, Stat};

/// Mean and ±1 std of the values at each x.
#[derive(Debug, Clone)]
pub(super) struct Curve {
    pub(super) points: Vec<(f64, Stat)>,
}

impl Curve {
    pub(super) fn from_groups(groups: Vec<(f64, Vec<f64>)>) -> Self {
        Self {
            points: groups
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(x, v)| (x, Stat::of(&v)))
                .collect(),
        }
    }

    pub(super) fn mean(&self) -> Vec<(f64, f64)> {
        self.points.iter().map(|(x, s)| (*x, s.mean)).collect()
    }

    /// The ±1 std band as a closed polygon.
    pub(super) fn band(&self) -> Vec<(f64, f64)> {
        let sd = |s: &Stat| s.std.unwrap_or(0.0);
        let upper = self.points.iter().map(|(x, s)| (*x, s.mean + sd(s)));
        let lower = self.points.iter().rev().map(|(x, s)| (*x, s.mean - sd(s)));
        upper.chain(lower).collect()
    }

    pub(super) fn range(&self) -> Option<Range<f64>> {
        let band = self.band();
        let lo = band.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = band.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        (lo <= hi).then_some(lo..hi)
    }
}

pub(super) struct Sweep {
    pub(super) epochs: usize,
    pub(super) seeds: usize,
    pub(super) forget: Curve,
    pub(super) remain: Curve,
    pub(super) test: Curve,
    pub(super) mi: Curve,
    pub(super) retrain: Option<(Stat, usize)>,
    pub(super) finetune: Option<(Stat, usize)>,
}

impl Sweep {
    pub(super) fn new(runs: &[RunRow], epochs: usize) -> Self {
        let mi_runs: Vec<&RunRow> =
            runs.iter().filter(|r| r.method == "mi_unlearn" && r.epochs == epochs).collect();
        let gammas = distinct(mi_runs.iter().filter_map(|r| r.gamma));
        let curve = |f: &dyn Fn(&RunRow) -> Option<f64>| {
            Curve::from_groups(
                gammas
                    .iter()
                    .map(|&g| {
                        (
                            g,
                            mi_runs
                                .iter()
                                .filter(|r| r.gamma == Some(g))
                                .filter_map(|r| f(r))
                                .collect(),
                        )
                    })
                    .collect(),
            )
        };
        // The reference with the most epochs, if a method ran at several.
        let reference = |method: &str| {
            let rows: Vec<&RunRow> = runs.iter().filter(|r| r.method == method).collect();
            let epochs = rows.iter().map(|r| r.epochs).max()?;
            let forget: Vec<f64> =
                rows.iter().filter(|r| r.epochs == epochs).map(|r| r.forget_acc).collect();
            Some((Stat::of(&forget), epochs))
        };
        let mut seeds: Vec<u64> = mi_runs.iter().map(|r| r.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        Self {
            epochs,
            seeds: seeds.len(),
            forget: curve(&|r| Some(r.forget_acc)),
            remain: curve(&|r| Some(r.remain_acc)),
            test: curve(&|r| Some(r.test_acc)),
            mi: curve(&|r| r.mi),
            retrain: reference("retrain"),
            finetune: reference("finetune"),
        }
    }
}

/// One panel of the sweep figure: curves with bands and optional horizontal reference bands.
pub(super) struct Panel<'a> {
    pub(super) y_desc: &'a str,
    pub(super) x_desc: Option<&'a str>,
    pub(super) curves: Vec<(&'a Curve, RGBColor)>,
    pub(super) references: Vec<(Stat, RGBColor)>,
    pub(super) decimals: usize,
}

pub(super) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: Range<f64>,
    p: &Panel<'_>,
) -> Drawn<DB> {
    let sd = |s: &Stat| s.std.unwrap_or(0.0);
    let y = union(
        p.curves
            .iter()
            .map(|(c, _)| c.range())
            .chain(p.references.iter().map(|(s, _)| Some(s.mean - sd(s)..s.mean + sd(s)))),
    )
    .unwrap_or(0.0..1.0);
    let y = padded(y, 0.12, 10f64.powi(-(p.decimals as i32)) * 4.0);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(if p.x_desc.is_some() { 60 } else { 30 })
        .y_label_area_size(90)
        .build_cartesian_2d(x.clone(), y)?;
    let decimals = p.decimals;
    let y_fmt = |v: &f64| format!("{v:.decimals$}");
    let x_fmt = |v: &f64| format!("{v}");
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(p.y_desc)
        .y_label_formatter(&y_fmt)
        .x_label_formatter(&x_fmt)
        .label_style(font(18.0))
        .axis_desc_style(font(21.0))
        .bold_line_style(GRID)
        .light_line_style(WHITE);
    if let Some(desc) = p.x_desc {
        mesh.x_desc(desc);
    }
    mesh.draw()?;
    for (st, colour) in &p.references {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x.start, st.mean - sd(st)), (x.end, st.mean + sd(st))],
            colour.mix(0.15).filled(),
        )))?;
        chart.draw_series(DashedLineSeries::new(
            vec![(x.start, st.mean), (x.end, st.mean)],
            12,
            8,
            colour.stroke_width(2),
        ))?;
    }
    for (curve, colour) in &p.curves {
        chart
            .draw_series(std::iter::once(Polygon::new(curve.band(), colour.mix(0.22).filled())))?;
        chart.draw_series(LineSeries::new(curve.mean(), colour.stroke_width(3)))?;
        chart.draw_series(curve.mean().into_iter().map(|q| Circle::new(q, 5, colour.filled())))?;
    }
    Ok(())
}

/// Three panels sharing the gamma axis: forget accuracy against the references (its range can
/// span 0-100), remain and test accuracy (which move by points, so get their own scale), and
/// the final MI.
pub(super) fn draw_sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Sweep,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let title = format!(
        "MI-unlearn against gamma ({} epochs, mean ± 1 std over {} seeds)",
        s.epochs, s.seeds
    );
    let root = root.titled(&title, font(28.0))?;
    let (plots, legend_area) = root.split_vertically(root.dim_in_pixel().1 - 100);
    let h = plots.dim_in_pixel().1;
    let (forget_area, rest) = plots.split_vertically(h * 42 / 100);
    let (acc_area, mi_area) = rest.split_vertically(h * 29 / 100);
    let (gmin, gmax) = s
        .forget
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let x = padded(gmin..gmax, 0.06, 1.0);
    let references: Vec<(Stat, RGBColor)> =
        [(s.retrain, RETRAIN_COLOUR), (s.finetune, FINETUNE_COLOUR)]
            .into_iter()
            .filter_map(|(r, c)| Some((r?.0, c)))
            .collect();
    draw_panel(
        &forget_area,
        x.clone(),
        &Panel {
            y_desc: "forget accuracy (%)",
            x_desc: None,
            curves: vec![(&s.forget, FORGET_COLOUR)],
            references,
            decimals: 0,
        },
    )?;
    draw_panel(
        &acc_area,
        x.clone(),
        &Panel {
            y_desc: "accuracy (%)",
            x_desc: None,
            curves: vec![(&s.remain, REMAIN_COLOUR), (&s.test, TEST_COLOUR)],
            references: Vec::new(),
            decimals: 1,
        },
    )?;
    draw_panel(
        &mi_area,
        x,
        &Panel {
            y_desc: "final MI (nats)",
            x_desc: Some("gamma (weight of the MI penalty)"),
            curves: vec![(&s.mi, MI_COLOUR)],
            references: Vec::new(),
            decimals: 3,
        },
    )?;

    let retrain = s.retrain.map(|(_, e)| format!("retrain forget ({e} ep.)"));
    let finetune = s.finetune.map(|(_, e)| format!("finetune forget ({e} ep.)"));
    let mut entries = vec![
        ("forget", FORGET_COLOUR, Line::Solid),
        ("remain", REMAIN_COLOUR, Line::Solid),
        ("test", TEST_COLOUR, Line::Solid),
        ("MI", MI_COLOUR, Line::Solid),
    ];
    let (rows_top, rows_bottom) = legend_area.split_vertically(50);
    legend(&rows_top, &entries)?;
    entries.clear();
    if let Some(r) = &retrain {
        entries.push((r.as_str(), RETRAIN_COLOUR, Line::Dashed));
    }
    if let Some(f) = &finetune {
        entries.push((f.as_str(), FINETUNE_COLOUR, Line::Dashed));
    }
    entries.push(("±1 std", RETRAIN_COLOUR, Line::Band));
    legend(&rows_bottom, &entries)
}
