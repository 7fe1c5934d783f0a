//! The audit's figures: `audit` (forgetting quality with F_ref, U-LiRA, the epsilon buckets
//! per method, each panel with its own key) and `audit_curve` (F and F_ref against N).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::chart::*;
use crate::rows::{AuditRow, CurveRow, EpsilonRow, MethodRow, Metric, Role};

/// A value with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Interval {
    pub(super) value: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

/// One method and parameter set of an audit, its values averaged over seeds.
pub(super) struct Audited {
    pub(super) label: String,
    /// The reference: its F is F_ref (its second population against the first).
    pub(super) reference: bool,
    pub(super) forget_quality: Option<Interval>,
    pub(super) f_tied_best: Option<bool>,
    pub(super) ulira: Option<Interval>,
    pub(super) ulira_tied_best: Option<bool>,
    /// Shares of the forget examples in [`EPSILON_GROUPS`].
    pub(super) epsilon_shares: Vec<f64>,
}

/// How the score treats an epsilon: full points, partial points, none, and the cap (a
/// distribution that does not spread at all).
pub(super) const EPSILON_GROUPS: [(&str, RGBColor); 4] = [
    ("< 0.5: full points", REMAIN_COLOUR),
    ("partial points", MI_COLOUR),
    ("past the last bucket: 0", FORGET_COLOUR),
    ("50 (cap): 0", RETRAIN_COLOUR),
];

/// U-LiRA's bars: a colour no other panel uses.
const ULIRA_COLOUR: RGBColor = TEST_COLOUR;

/// The mean of the present values of `v` over `of` (seeds).
fn mean_of(of: &[&AuditRow], v: impl Fn(&AuditRow) -> Option<f64>) -> Option<f64> {
    let present: Vec<f64> = of.iter().filter_map(|r| v(r)).collect();
    (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
}

/// `metric`'s value and 95% interval (`AuditRow::interval`), each averaged over `of`.
fn interval_of(of: &[&AuditRow], metric: Metric) -> Option<Interval> {
    let value = mean_of(of, |r| r.value(metric))?;
    let bound = |pick: fn((f64, f64)) -> f64| {
        mean_of(of, |r| r.interval(metric).map(pick)).unwrap_or(value)
    };
    Some(Interval { value, lo: bound(|i| i.0), hi: bound(|i| i.1) })
}

/// Draws `audit.svg` and `audit.png` from `audit.csv` and `audit_epsilons.csv`, and
/// `audit_curve.svg` and `.png` from `audit_curve.csv` where there is one with rows;
/// `methods` (`methods.csv`) says which is the reference.
pub fn plot_audit(dir: &Path, methods_csv: &[MethodRow]) -> anyhow::Result<Vec<PathBuf>> {
    let is_reference = |method: &str, params: &str| {
        methods_csv
            .iter()
            .any(|m| m.method == method && m.params == params && m.role == Role::Reference)
    };
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
        let all = |v: fn(&AuditRow) -> Option<bool>| {
            let v: Option<Vec<bool>> = of.iter().map(|r| v(r)).collect();
            v.map(|v| v.iter().all(|&b| b))
        };
        methods.push(Audited {
            label,
            reference: is_reference(&row.method, &row.params),
            forget_quality: interval_of(&of, Metric::ForgetQuality),
            f_tied_best: all(|r| r.f_tied_best),
            ulira: interval_of(&of, Metric::UliraAcc),
            ulira_tied_best: all(|r| r.ulira_tied_best),
            epsilon_shares: if total > 0 { shares } else { Vec::new() },
        });
    }
    anyhow::ensure!(!methods.is_empty(), "{}: no rows", dir.join("audit.csv").display());
    let reference = methods.iter().find(|m| m.reference).and_then(|m| m.forget_quality);
    let height = 230 + 46 * methods.len() as u32;
    let mut written = render!(dir, "audit", (1900, height.max(450)), |root| draw_audit(
        root, &methods, reference
    ))?;
    let curve_file = dir.join("audit_curve.csv");
    if curve_file.exists() {
        let curve: Vec<CurveRow> = read_drawn(&curve_file)?;
        if !curve.is_empty() {
            let reference = rows
                .iter()
                .find(|r| is_reference(&r.method, &r.params))
                .map(|r| (r.method.clone(), r.params.clone()));
            written.extend(render!(dir, "audit_curve", (1300, 900), |root| draw_curve(
                root,
                &curve,
                reference.as_ref()
            ))?);
        }
    }
    Ok(written)
}

/// `value [lo, hi]` and the tie mark.
fn value_text(i: Interval, decimals: usize, tie: Option<bool>, best: bool) -> String {
    let mark = match (best, tie) {
        (true, _) => "  best",
        (false, Some(true)) => "  tie",
        _ => "",
    };
    format!("{:.d$} [{:.d$}, {:.d$}]{mark}", i.value, i.lo, i.hi, d = decimals)
}

/// A whisker from `lo` to `hi` across row `i` of `n`.
fn whisker(i: usize, n: usize, lo: f64, hi: f64) -> PathElement<(f64, f64)> {
    let y = (n - 1 - i) as f64 + 0.5;
    PathElement::new(vec![(lo, y), (hi, y)], BLACK.stroke_width(2))
}

fn caps(i: usize, n: usize, lo: f64, hi: f64) -> [PathElement<(f64, f64)>; 2] {
    let y = (n - 1 - i) as f64;
    [lo, hi].map(|x| PathElement::new(vec![(x, y + 0.35), (x, y + 0.65)], BLACK.stroke_width(2)))
}

/// A number written at `x` on row `i` of `n`, left-aligned.
fn note(
    i: usize,
    n: usize,
    x: f64,
    text: String,
    colour: &'static RGBColor,
) -> Text<'static, (f64, f64), String> {
    let y = (n - 1 - i) as f64 + 0.5;
    Text::new(text, (x, y), font(14.0).color(colour).pos(Pos::new(HPos::Left, VPos::Center)))
}

/// What a key's entry shows beside its text.
#[derive(Clone, Copy)]
enum Swatch {
    Bar(RGBColor),
    Whisker,
    /// Nothing: a note.
    Text,
}

/// A key of swatches under a panel, `per_row` to a line.
fn panel_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(&str, Swatch)],
    per_row: usize,
) -> Drawn<DB> {
    let (w, _) = area.dim_in_pixel();
    let slot = (w as i32 - 40) / per_row as i32;
    for (k, (label, swatch)) in entries.iter().enumerate() {
        let (x, y) = (20 + (k % per_row) as i32 * slot, 16 + (k / per_row) as i32 * 26);
        match swatch {
            Swatch::Text => {}
            Swatch::Bar(c) => {
                area.draw(&Rectangle::new([(x, y - 8), (x + 22, y + 8)], c.filled()))?
            }
            Swatch::Whisker => {
                area.draw(&PathElement::new(vec![(x, y), (x + 22, y)], BLACK.stroke_width(2)))?;
                for cx in [x, x + 22] {
                    area.draw(&PathElement::new(
                        vec![(cx, y - 6), (cx, y + 6)],
                        BLACK.stroke_width(2),
                    ))?;
                }
            }
        }
        area.draw(&Text::new(
            label.to_string(),
            (x + 30, y),
            font(15.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

pub(super) fn draw_audit<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    methods: &[Audited],
    reference: Option<Interval>,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Per-example forgetting audit: replicates against retrain's, shadows against U-LiRA (95% intervals)",
        font(24.0),
    )?;
    let (body, key) = root.split_vertically(root.dim_in_pixel().1 - 64);
    let (labels, panels) = body.split_horizontally(300);
    let (_, key_panels) = key.split_horizontally(300);
    let areas = panels.split_evenly((1, 3));
    let keys = key_panels.split_evenly((1, 3));
    let n = methods.len();
    row_labels(&labels, methods.iter().map(|m| m.label.clone()), n)?;

    // F on an axis scaled to the data, with room for the numbers; F_ref as a band.
    let top = methods
        .iter()
        .filter_map(|m| m.forget_quality.map(|f| f.hi))
        .chain(reference.map(|r| r.hi))
        .fold(0.02f64, f64::max);
    let end = (top * 1.9).min(1.9);
    let best_f = methods
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.reference)
        .filter_map(|(i, m)| Some((i, m.forget_quality?.value)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i);
    let caption = "Forgetting quality F (higher is better)";
    let mut chart = bar_panel(&areas[0], caption, 0.0..end, 1.0, n, 5, Some(2))?;
    if let Some(r) = reference {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(r.lo, 0.0), (r.hi, n as f64)],
            RETRAIN_COLOUR.mix(0.18).filled(),
        )))?;
        chart.draw_series(DashedLineSeries::new(
            vec![(r.value, 0.0), (r.value, n as f64)],
            8,
            6,
            RETRAIN_COLOUR.stroke_width(2),
        ))?;
    }
    for (i, m) in methods.iter().enumerate() {
        match m.forget_quality {
            Some(f) => {
                let colour = if m.reference { RETRAIN_COLOUR } else { FINETUNE_COLOUR };
                chart.draw_series(std::iter::once(bar(i, n, 0.0, f.value, colour)))?;
                chart.draw_series(std::iter::once(whisker(i, n, f.lo, f.hi)))?;
                chart.draw_series(caps(i, n, f.lo, f.hi))?;
                let text = if m.reference {
                    format!("{}  (F_ref)", value_text(f, 3, None, false))
                } else {
                    value_text(f, 3, m.f_tied_best, best_f == Some(i))
                };
                chart.draw_series(std::iter::once(note(i, n, f.hi + end * 0.02, text, &BLACK)))?;
            }
            None => {
                let text = "not scored".to_owned();
                chart.draw_series(std::iter::once(note(
                    i,
                    n,
                    end * 0.02,
                    text,
                    &RETRAIN_COLOUR,
                )))?;
            }
        }
    }
    panel_key(
        &keys[0],
        &[
            ("F", Swatch::Bar(FINETUNE_COLOUR)),
            ("F_ref (a second retrain population)", Swatch::Bar(RETRAIN_COLOUR)),
            ("95% interval", Swatch::Whisker),
            ("tie: not told apart from the best", Swatch::Text),
        ],
        2,
    )?;

    // U-LiRA's accuracy as bars from 0.5 (perfect unlearning), with intervals over targets.
    let (lo, hi) = methods
        .iter()
        .filter_map(|m| m.ulira)
        .fold((0.5f64, 0.5f64), |(a, b), u| (a.min(u.lo), b.max(u.hi)));
    let span = (hi - lo).max(0.02);
    let x = (lo - span * 0.08)..(hi + span * 0.9);
    let best_u = methods
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.reference && m.ulira_tied_best.is_some())
        .filter_map(|(i, m)| Some((i, (m.ulira?.value - 0.5).abs())))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i);
    let mut chart =
        bar_panel(&areas[1], "U-LiRA attack accuracy (0.5: perfect)", x, 1.0, n, 5, Some(3))?;
    for (i, m) in methods.iter().enumerate() {
        let Some(u) = m.ulira else { continue };
        chart.draw_series(std::iter::once(bar(i, n, 0.5, u.value, ULIRA_COLOUR)))?;
        chart.draw_series(std::iter::once(whisker(i, n, u.lo, u.hi)))?;
        chart.draw_series(caps(i, n, u.lo, u.hi))?;
        let text = value_text(u, 3, m.ulira_tied_best, best_u == Some(i));
        chart.draw_series(std::iter::once(note(i, n, u.hi + span * 0.04, text, &BLACK)))?;
    }
    chart.draw_series(DashedLineSeries::new(
        vec![(0.5, 0.0), (0.5, n as f64)],
        8,
        6,
        BLACK.stroke_width(2),
    ))?;
    panel_key(
        &keys[1],
        &[
            ("mean over targets", Swatch::Bar(ULIRA_COLOUR)),
            ("95% interval over targets", Swatch::Whisker),
            ("tie: not told apart from the nearest 0.5", Swatch::Text),
        ],
        2,
    )?;

    // The epsilons' buckets, stacked.
    let mut chart =
        bar_panel(&areas[2], "Forget examples by epsilon", 0.0..1.05, 1.0, n, 5, Some(1))?;
    for (i, m) in methods.iter().enumerate() {
        let mut from = 0.0;
        for (share, (_, colour)) in m.epsilon_shares.iter().zip(EPSILON_GROUPS) {
            chart.draw_series(std::iter::once(bar(i, n, from, from + share, colour)))?;
            from += share;
        }
    }
    let entries: Vec<(&str, Swatch)> =
        EPSILON_GROUPS.iter().map(|(name, colour)| (*name, Swatch::Bar(*colour))).collect();
    panel_key(&keys[2], &entries, 2)?;
    Ok(())
}

/// Colours for the curve's methods, in turn.
const PALETTE: [RGBColor; 12] = [
    FINETUNE_COLOUR,
    MI_COLOUR,
    FORGET_COLOUR,
    REMAIN_COLOUR,
    TEST_COLOUR,
    RGBColor(160, 60, 40),
    RGBColor(40, 150, 190),
    RGBColor(150, 150, 30),
    RGBColor(215, 25, 28),
    RGBColor(30, 40, 120),
    RGBColor(0, 128, 128),
    RGBColor(120, 100, 80),
];

/// F against N (log scale), one line per method and parameter set with its spread over
/// draws as whiskers; the reference's (F_ref) dashed and black.
pub(super) fn draw_curve<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curve: &[CurveRow],
    reference: Option<&(String, String)>,
) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Forgetting quality F against the population size N (mean and sd over random draws)",
        font(24.0),
    )?;
    let mut series: Vec<(String, String)> = Vec::new();
    for r in curve {
        let key = (r.method.clone(), r.params.clone());
        if !series.contains(&key) {
            series.push(key);
        }
    }
    let (plot, key) = root.split_horizontally(root.dim_in_pixel().0 - 380);
    let models: Vec<f64> = distinct(curve.iter().map(|r| r.models as f64));
    let (x0, x1) = (models[0].log2() - 0.2, models[models.len() - 1].log2() + 0.2);
    let top = curve.iter().map(|r| r.forget_quality + r.sd.unwrap_or(0.0)).fold(0.05f64, f64::max);
    let mut chart = ChartBuilder::on(&plot)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..top * 1.08)?;
    chart
        .configure_mesh()
        .x_desc("models per population N")
        .y_desc("F")
        .x_labels(models.len())
        .x_label_formatter(&|v| format!("{:.0}", v.exp2()))
        .label_style(font(16.0))
        .axis_desc_style(font(18.0))
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()?;
    let mut entries = Vec::new();
    for (k, s) in series.iter().enumerate() {
        let is_reference = reference == Some(s);
        let colour = if is_reference { BLACK } else { PALETTE[k % PALETTE.len()] };
        let points: Vec<&CurveRow> =
            curve.iter().filter(|r| (&r.method, &r.params) == (&s.0, &s.1)).collect();
        let xy: Vec<(f64, f64)> =
            points.iter().map(|r| ((r.models as f64).log2(), r.forget_quality)).collect();
        if is_reference {
            chart.draw_series(DashedLineSeries::new(xy.clone(), 10, 6, colour.stroke_width(3)))?;
        } else {
            chart.draw_series(LineSeries::new(xy.clone(), colour.stroke_width(2)))?;
        }
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 5, colour.filled())))?;
        chart.draw_series(points.iter().filter_map(|r| {
            let (x, sd) = ((r.models as f64).log2(), r.sd?);
            let (a, b) = ((r.forget_quality - sd).max(0.0), r.forget_quality + sd);
            Some(PathElement::new(vec![(x, a), (x, b)], colour.stroke_width(2)))
        }))?;
        let label = if is_reference {
            format!("{} ({}): F_ref", s.0, s.1)
        } else {
            format!("{} ({})", s.0, s.1)
        };
        entries.push((label, colour, is_reference));
    }
    for (k, (label, colour, dashed)) in entries.iter().enumerate() {
        let y = 60 + k as i32 * 30;
        let style = colour.stroke_width(3);
        if *dashed {
            key.draw(&PathElement::new(vec![(10, y), (22, y)], style))?;
            key.draw(&PathElement::new(vec![(28, y), (40, y)], style))?;
        } else {
            key.draw(&PathElement::new(vec![(10, y), (40, y)], style))?;
        }
        key.draw(&Text::new(
            label.clone(),
            (48, y),
            font(15.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}
