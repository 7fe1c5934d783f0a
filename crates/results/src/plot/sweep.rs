//! The gamma sweep: accuracies and MI against gamma, with retrain and finetune as bands.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::*;
use crate::rows::{MethodRow, Role, RunRow, Stat};

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

/// A swept method's runs of one epoch count against its swept parameter, with the
/// reference's and the control's forget accuracy as bands.
pub(super) struct Sweep<'a> {
    pub(super) swept: &'a MethodRow,
    pub(super) epochs: usize,
    /// What the means and spreads are over (`3 seeds`, `64 replicates`).
    pub(super) over: String,
    pub(super) forget: Curve,
    pub(super) remain: Curve,
    pub(super) test: Curve,
    pub(super) mi: Curve,
    /// The reference's and the control's name, forget accuracy and epochs.
    pub(super) reference: Option<(&'a str, Stat, usize)>,
    pub(super) control: Option<(&'a str, Stat, usize)>,
}

impl<'a> Sweep<'a> {
    /// `points`: the swept method's runs with their swept values.
    pub(super) fn new(
        swept: &'a MethodRow,
        points: &[(&RunRow, f64)],
        runs: &'a [RunRow],
        methods: &'a [MethodRow],
        epochs: usize,
    ) -> Self {
        let points: Vec<(&RunRow, f64)> =
            points.iter().filter(|(r, _)| r.epochs == epochs).copied().collect();
        let values = distinct(points.iter().map(|p| p.1));
        let curve = |f: &dyn Fn(&RunRow) -> Option<f64>| {
            Curve::from_groups(
                values
                    .iter()
                    .map(|&v| {
                        (v, points.iter().filter(|p| p.1 == v).filter_map(|p| f(p.0)).collect())
                    })
                    .collect(),
            )
        };
        // The method of that role, with the most epochs if it ran at several.
        let band = |role: Role| {
            let method = &methods.iter().find(|m| m.role == role)?.method;
            let rows: Vec<&RunRow> = runs.iter().filter(|r| &r.method == method).collect();
            let epochs = rows.iter().map(|r| r.epochs).max()?;
            let forget: Vec<f64> =
                rows.iter().filter(|r| r.epochs == epochs).map(|r| r.forget_acc).collect();
            Some((method.as_str(), Stat::of(&forget), epochs))
        };
        Self {
            swept,
            epochs,
            over: over_runs(points.iter().map(|p| (p.0.seed, p.0.replicate))),
            forget: curve(&|r| Some(r.forget_acc)),
            remain: curve(&|r| Some(r.remain_acc)),
            test: curve(&|r| Some(r.test_acc)),
            mi: curve(&|r| r.mi),
            reference: band(Role::Reference),
            control: band(Role::Control),
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
        "{} against {} ({} epochs, mean ± 1 std over {})",
        s.swept.title, s.swept.swept, s.epochs, s.over
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
        [(s.reference, RETRAIN_COLOUR), (s.control, FINETUNE_COLOUR)]
            .into_iter()
            .filter_map(|(r, c)| Some((r?.1, c)))
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
    let x_desc = format!("{} ({})", s.swept.swept, s.swept.about);
    draw_panel(
        &mi_area,
        x,
        &Panel {
            y_desc: "final MI (nats)",
            x_desc: Some(&x_desc),
            curves: vec![(&s.mi, MI_COLOUR)],
            references: Vec::new(),
            decimals: 3,
        },
    )?;

    let retrain = s.reference.map(|(m, _, e)| format!("{m} forget ({e} ep.)"));
    let finetune = s.control.map(|(m, _, e)| format!("{m} forget ({e} ep.)"));
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
