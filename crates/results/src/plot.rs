//! Figures drawn from the CSV files alone (never from the cache or libtorch), each written as
//! SVG and PNG with the same layout. Text in PNGs is rendered with DejaVu Sans embedded in the
//! binary (`assets/`), so no fontconfig or system font is needed.
//!
//! Which figures an output folder gets follows from its runs:
//! - `gamma_sweep`: when MI-unlearn ran at three or more gammas with the same epochs (one
//!   figure per such epochs value, suffixed `_epochs<E>` if there are several): forget, remain
//!   and test accuracy against gamma with ±1 std bands over seeds, retrain's and finetune's
//!   forget accuracy as horizontal reference bands, and the final MI on a second panel;
//! - `mi_acc_gamma<g>_epochs<E>`: for each MI-unlearn parameter set with at least two epochs,
//!   when there are at most [`MAX_HISTORY_FIGURES`] of them (the paper's figure: MI on the left
//!   axis, accuracies on the right, against epoch, means with ±1 std bands);
//! - `audit`: when the folder has `audit.csv` (an `[audit]` experiment): per method and
//!   parameter set, the forgetting quality F against its noise floor, U-LiRA's accuracy
//!   against 0.5, and how the forget examples' epsilons fall into the score's buckets.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::fsutil::write_atomic;
use crate::rows::{AuditRow, EpsilonRow, HistoryRow, LeaderboardRow, Metric, RunRow, Stat, read};
use anyhow::{Context as _, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const MAX_HISTORY_FIGURES: usize = 8;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            if plotters::style::register_font(FAMILY, style, FONT).is_err() {
                panic!("the embedded font does not parse");
            }
        }
    });
}

// Colours after the paper's figures (seaborn's "colorblind" palette).
const MI_COLOUR: RGBColor = RGBColor(1, 115, 178);
const FORGET_COLOUR: RGBColor = RGBColor(222, 143, 5);
const REMAIN_COLOUR: RGBColor = RGBColor(2, 158, 115);
const TEST_COLOUR: RGBColor = RGBColor(204, 120, 188);
const RETRAIN_COLOUR: RGBColor = RGBColor(86, 86, 86);
const FINETUNE_COLOUR: RGBColor = RGBColor(120, 70, 160);

const GRID: RGBColor = RGBColor(225, 225, 225);

const HISTORY_SIZE: (u32, u32) = (1200, 820);
const SWEEP_SIZE: (u32, u32) = (1200, 1100);

/// Writes `<stem>.svg` and `<stem>.png` atomically, evaluating to the paths written. A macro
/// because the drawing function is generic over the backend: each expansion of the `$draw`
/// closure is typed for its own backend.
macro_rules! render {
    ($dir:expr, $stem:expr, $size:expr, $draw:expr) => {{
        register_font();
        let dir: &Path = $dir;
        let stem: &str = $stem;
        let (width, height): (u32, u32) = $size;
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        // Both drawn in memory first, then each written by the one atomic-write helper
        // (temporary file, fsync, rename): a killed run leaves the old figure or the new one.
        let mut svg_text = String::new();
        let mut pixels = vec![0u8; width as usize * height as usize * 3];
        let drawn = {
            let root = SVGBackend::with_string(&mut svg_text, (width, height)).into_drawing_area();
            $draw(&root).and_then(|()| root.present()).map_err(|e| anyhow!("{e:?}"))
        }
        .and_then(|()| {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            $draw(&root).and_then(|()| root.present()).map_err(|e| anyhow!("{e:?}"))
        })
        .and_then(|()| {
            let png_bytes = png_bytes(&pixels, width, height)?;
            write_atomic(&svg, svg_text.as_bytes())?;
            write_atomic(&png, &png_bytes)?;
            Ok(vec![svg.clone(), png.clone()])
        });
        drawn.with_context(|| format!("cannot draw {}", svg.display()))
    }};
}

/// RGB pixels encoded as PNG, as plotters' own bitmap encoder writes them.
fn png_bytes(pixels: &[u8], width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, width, height, image::ColorType::Rgb8)
        .context("cannot encode the PNG")?;
    Ok(out)
}

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

/// One method and parameter set of an audit, its values averaged over seeds.
struct Audited {
    label: String,
    forget_quality: Option<f64>,
    floor: Option<f64>,
    ulira: Option<f64>,
    /// Shares of the forget examples in [`EPSILON_GROUPS`].
    epsilon_shares: Vec<f64>,
}

/// How the score treats an epsilon: full points, partial points, none, and the cap (a
/// distribution that does not spread at all).
const EPSILON_GROUPS: [(&str, RGBColor); 4] = [
    ("epsilon < 0.5: full points", REMAIN_COLOUR),
    ("partial points", MI_COLOUR),
    ("beyond the last bucket: 0", FORGET_COLOUR),
    ("50 (cap): 0", RETRAIN_COLOUR),
];

/// Columns that hold NaN where a value is unknown (an external method's losses), never drawn.
const MAY_BE_UNKNOWN: [&str; 2] = ["ce", "loss"];

/// [`read`], refusing a NaN or infinite number anywhere but [`MAY_BE_UNKNOWN`]: the harness
/// never writes one (a diverged model fails its job), so such a file was edited or damaged,
/// and a figure of it would draw nonsense as if it were a result.
fn read_drawn<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let rows = read(path)?;
    let mut reader = csv::Reader::from_path(path)?;
    let header = reader.headers()?.clone();
    for (line, record) in reader.records().enumerate() {
        for (column, cell) in header.iter().zip(record?.iter()) {
            let non_finite = matches!(cell, "NaN" | "inf" | "-inf");
            anyhow::ensure!(
                !non_finite || MAY_BE_UNKNOWN.contains(&column),
                "{}: line {}: {column} is {cell}; results hold finite numbers only, so the file \
                 was edited or damaged: regenerate the folder (run its experiment again, or \
                 `harness report` it)",
                path.display(),
                line + 2
            );
        }
    }
    Ok(rows)
}

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

fn draw_audit<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    methods: &[Audited],
) -> DrawResult<DB> {
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

/// Removes figures this module drew earlier in `dir` that the current runs no longer call for
/// (say, a gamma dropped from the experiment), so a results folder shows only current figures.
fn remove_stale_figures(dir: &Path, written: &[PathBuf]) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ours = (name.starts_with("gamma_sweep")
            || name.starts_with("mi_acc_gamma")
            || name.starts_with("audit."))
            && (name.ends_with(".svg") || name.ends_with(".png"));
        if ours && !written.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Mean and ±1 std of the values at each x.
#[derive(Debug, Clone)]
struct Curve {
    points: Vec<(f64, Stat)>,
}

impl Curve {
    fn from_groups(groups: Vec<(f64, Vec<f64>)>) -> Self {
        Self {
            points: groups
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(x, v)| (x, Stat::of(&v)))
                .collect(),
        }
    }

    fn mean(&self) -> Vec<(f64, f64)> {
        self.points.iter().map(|(x, s)| (*x, s.mean)).collect()
    }

    /// The ±1 std band as a closed polygon.
    fn band(&self) -> Vec<(f64, f64)> {
        let sd = |s: &Stat| s.std.unwrap_or(0.0);
        let upper = self.points.iter().map(|(x, s)| (*x, s.mean + sd(s)));
        let lower = self.points.iter().rev().map(|(x, s)| (*x, s.mean - sd(s)));
        upper.chain(lower).collect()
    }

    fn range(&self) -> Option<Range<f64>> {
        let band = self.band();
        let lo = band.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = band.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        (lo <= hi).then_some(lo..hi)
    }
}

struct Sweep {
    epochs: usize,
    seeds: usize,
    forget: Curve,
    remain: Curve,
    test: Curve,
    mi: Curve,
    retrain: Option<(Stat, usize)>,
    finetune: Option<(Stat, usize)>,
}

impl Sweep {
    fn new(runs: &[RunRow], epochs: usize) -> Self {
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

fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

fn padded(r: Range<f64>, frac: f64, min_span: f64) -> Range<f64> {
    let span = (r.end - r.start).max(min_span);
    let mid = (r.start + r.end) / 2.0;
    (mid - span / 2.0 * (1.0 + frac))..(mid + span / 2.0 * (1.0 + frac))
}

fn union(ranges: impl IntoIterator<Item = Option<Range<f64>>>) -> Option<Range<f64>> {
    ranges.into_iter().flatten().reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
}

#[derive(Clone, Copy)]
enum Line {
    Solid,
    Dashed,
    Band,
}

/// A legend in its own strip, so it never covers data.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor, Line)],
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let slot = w as i32 / entries.len() as i32;
    let y = h as i32 / 2;
    for (i, (label, colour, line)) in entries.iter().enumerate() {
        let x = i as i32 * slot + 20;
        match line {
            Line::Solid => {
                area.draw(&PathElement::new(vec![(x, y), (x + 44, y)], colour.stroke_width(4)))?
            }
            Line::Dashed => {
                for k in 0..3 {
                    area.draw(&PathElement::new(
                        vec![(x + k * 16, y), (x + k * 16 + 10, y)],
                        colour.stroke_width(4),
                    ))?;
                }
            }
            Line::Band => {
                area.draw(&Rectangle::new([(x, y - 9), (x + 44, y + 9)], colour.mix(0.3).filled()))?
            }
        }
        area.draw(&Text::new(
            label.to_string(),
            (x + 54, y),
            font(21.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// One panel of the sweep figure: curves with bands and optional horizontal reference bands.
struct Panel<'a> {
    y_desc: &'a str,
    x_desc: Option<&'a str>,
    curves: Vec<(&'a Curve, RGBColor)>,
    references: Vec<(Stat, RGBColor)>,
    decimals: usize,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    x: Range<f64>,
    p: &Panel<'_>,
) -> DrawResult<DB> {
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
fn draw_sweep<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Sweep) -> DrawResult<DB> {
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

struct History {
    gamma: f64,
    epochs: usize,
    seeds: usize,
    mi: Curve,
    forget: Curve,
    remain: Curve,
    test: Curve,
}

impl History {
    /// The curves over the epochs the history holds (every epoch, or every `eval_every`), each
    /// point the mean and spread over the seeds evaluated then. `None` without any row.
    fn new(rows: &[&HistoryRow], gamma: f64, epochs: usize) -> Option<Self> {
        let mut seeds: Vec<u64> = rows.iter().map(|r| r.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
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
            gamma,
            epochs,
            seeds: seeds.len(),
            mi: curve(&|r| r.mi),
            forget: curve(&|r| Some(r.forget_acc)),
            remain: curve(&|r| Some(r.remain_acc)),
            test: curve(&|r| Some(r.test_acc)),
        })
    }
}

fn draw_history<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &History) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = format!(
        "Mutual information & accuracy vs. epochs (gamma = {}, mean ± 1 std over {} seeds)",
        h.gamma, h.seeds
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
    }
    chart.draw_series(std::iter::once(Polygon::new(h.mi.band(), MI_COLOUR.mix(0.2).filled())))?;
    chart.draw_series(LineSeries::new(h.mi.mean(), MI_COLOUR.stroke_width(3)))?;
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

const BOARD_PANELS: [(Metric, &str); 6] = [
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
/// A chart over two `f64` axes, as [`bar_panel`] builds it.
type BarChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A horizontal bar panel of `n` rows (the first at the top) over `x`, captioned, with `ticks`
/// x labels of `decimals` decimals (by default 1 below 10, else 0): what the leaderboard's and
/// the audit's panels are drawn on.
fn bar_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: Range<f64>,
    n: usize,
    ticks: usize,
    decimals: Option<usize>,
) -> Result<BarChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let x_max = x.end;
    let mut chart = ChartBuilder::on(area)
        .margin_top(12)
        .margin_right(28)
        .x_label_area_size(50)
        .y_label_area_size(0)
        .caption(caption, font(19.0))
        .build_cartesian_2d(x, 0.0..n as f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(ticks)
        .x_label_formatter(&|v| {
            let decimals = decimals.unwrap_or(if x_max < 10.0 { 1 } else { 0 });
            format!("{v:.decimals$}")
        })
        .label_style(font(15.0))
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()?;
    Ok(chart)
}

/// The `n` rows' labels, right-aligned in `area` beside the bars of [`bar_panel`]s drawn to its
/// right (whose plotting areas start 50 px down).
fn row_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: impl Iterator<Item = String>,
    n: usize,
) -> DrawResult<DB> {
    let (_, h) = area.dim_in_pixel();
    let top = 12 + 40;
    let slot = (h as i32 - top - 50) as f64 / n as f64;
    for (i, label) in labels.enumerate() {
        let y = top + ((i as f64 + 0.5) * slot) as i32;
        area.draw(&Text::new(
            label,
            (290, y),
            font(17.0).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Row `i`'s bar (of `n`, the first at the top) from `from` to `to`.
fn bar(i: usize, n: usize, from: f64, to: f64, colour: RGBColor) -> Rectangle<(f64, f64)> {
    let y = (n - 1 - i) as f64;
    Rectangle::new([(from, y + 0.18), (to, y + 0.82)], colour.filled())
}

pub fn plot_leaderboard(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let rows: Vec<LeaderboardRow> = read_drawn(&dir.join("leaderboard.csv"))?;
    anyhow::ensure!(!rows.is_empty(), "{}: no rows", dir.join("leaderboard.csv").display());
    let height = 160 + 46 * rows.len() as u32;
    render!(dir, "leaderboard", (1800, height.max(400)), |root| draw_leaderboard(root, &rows))
}

fn draw_leaderboard<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[LeaderboardRow],
) -> DrawResult<DB> {
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
    let retrain = rows.iter().find(|r| r.method == "retrain");
    for (area, (column, desc)) in areas.iter().zip(BOARD_PANELS) {
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.value(column)).collect();
        let max = values.iter().flatten().copied().fold(0.0f64, f64::max);
        let percent =
            matches!(column, Metric::ForgetAcc | Metric::RemainAcc | Metric::TestAcc | Metric::Mia);
        let x_max = if percent { 100.0 } else { (max * 1.1).max(1e-3) };
        let mut chart = bar_panel(area, desc, 0.0..x_max, n, 3, None)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// MI-unlearn at gammas 0, 1, 2 for 3 epochs over 2 seeds, with retrain and finetune,
    /// written by the same row types the harness writes.
    fn fixture(dir: &Path) {
        let (mut runs, mut history) = (Vec::new(), Vec::new());
        for seed in 0..2u64 {
            let s = seed as f64;
            let run = |method: &str, gamma: Option<f64>, epochs: usize, forget_acc: f64| RunRow {
                method: method.into(),
                gamma,
                epochs,
                seed,
                remain_acc: 99.8,
                forget_acc,
                test_acc: 97.5,
                ..RunRow::default()
            };
            runs.push(run("retrain", None, 100, 92.0 + s));
            runs.push(run("finetune", None, 100, 97.5 + s));
            for gamma in [0.0, 1.0, 2.0] {
                let forget = |e: f64| 99.0 - gamma * e * 2.0 - s;
                let mi = |e: f64| 0.048 - gamma * e * 0.001;
                runs.push(RunRow {
                    mi: Some(mi(3.0)),
                    ..run("mi_unlearn", Some(gamma), 3, forget(3.0))
                });
                for epoch in 1..=3 {
                    let e = epoch as f64;
                    history.push(HistoryRow {
                        method: "mi_unlearn".into(),
                        gamma: Some(gamma),
                        epochs: 3,
                        seed,
                        epoch,
                        remain_acc: 99.8,
                        forget_acc: forget(e),
                        test_acc: 97.5,
                        mi: Some(mi(e)),
                        ..HistoryRow::default()
                    });
                }
            }
        }
        std::fs::write(dir.join("runs.csv"), crate::rows::to_csv(&runs).unwrap()).unwrap();
        std::fs::write(dir.join("history.csv"), crate::rows::to_csv(&history).unwrap()).unwrap();
    }

    #[test]
    fn draws_the_audit_from_its_csv_files() {
        let dir = tempfile::tempdir().unwrap();
        let row = |method: &str, f: Option<f64>, ulira: f64| AuditRow {
            method: method.into(),
            epochs: 5,
            params: "epochs=5".into(),
            models: 64,
            examples: 100,
            forget_quality: f,
            forget_quality_floor: Some(0.3),
            ulira_acc: Some(ulira),
            shadows: 64,
            ..AuditRow::default()
        };
        let rows = [
            row("original", Some(0.0), 0.8),
            row("retrain", None, 0.5),
            row("finetune", Some(0.1), 0.6),
        ];
        std::fs::write(dir.path().join("audit.csv"), crate::rows::to_csv(&rows).unwrap()).unwrap();
        let eps = |method: &str, bucket: f64, examples: usize| EpsilonRow {
            method: method.into(),
            params: "epochs=5".into(),
            seed: 0,
            bucket,
            examples,
        };
        let epsilons = [
            eps("original", 50.0, 100),
            eps("finetune", 0.0, 20),
            eps("finetune", 2.5, 30),
            eps("finetune", 4.5, 50),
        ];
        std::fs::write(
            dir.path().join("audit_epsilons.csv"),
            crate::rows::to_csv(&epsilons).unwrap(),
        )
        .unwrap();
        let written = plot_audit(dir.path()).unwrap();
        assert_eq!(written.len(), 2);
        let svg = std::fs::read_to_string(dir.path().join("audit.svg")).unwrap();
        for text in ["finetune (epochs=5)", "U-LiRA attack accuracy", "50 (cap): 0", "noise floor"]
        {
            assert!(svg.contains(text), "{text}");
        }
    }

    #[test]
    fn draws_well_formed_svg_and_png_with_text() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let written = plot_dir(dir.path()).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(
            names,
            [
                "gamma_sweep.svg",
                "gamma_sweep.png",
                "mi_acc_gamma0_epochs3.svg",
                "mi_acc_gamma0_epochs3.png",
                "mi_acc_gamma1_epochs3.svg",
                "mi_acc_gamma1_epochs3.png",
                "mi_acc_gamma2_epochs3.svg",
                "mi_acc_gamma2_epochs3.png",
            ]
        );
        for path in &written {
            if path.extension().unwrap() == "svg" {
                let svg = std::fs::read_to_string(path).unwrap();
                assert!(
                    svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                    "{}",
                    path.display()
                );
                assert!(
                    svg.contains("accuracy (%)") && svg.contains("<polygon"),
                    "{}",
                    path.display()
                );
            } else {
                let img = image::open(path).unwrap().to_rgb8();
                let expected = if path.to_string_lossy().contains("gamma_sweep") {
                    SWEEP_SIZE
                } else {
                    HISTORY_SIZE
                };
                assert_eq!(img.dimensions(), expected);
                // The title strip holds rendered text: dark pixels on white.
                let dark = (0..expected.0)
                    .flat_map(|x| (0..40).map(move |y| (x, y)))
                    .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
                    .count();
                assert!(dark > 500, "{}: {dark} dark pixels in the title", path.display());
            }
        }
        let svg = std::fs::read_to_string(dir.path().join("gamma_sweep.svg")).unwrap();
        assert!(svg.contains("retrain forget (100 ep.)") && svg.contains("over 2 seeds"));
        let svg = std::fs::read_to_string(dir.path().join("mi_acc_gamma2_epochs3.svg")).unwrap();
        assert!(svg.contains("gamma = 2,"));
        // A figure the runs no longer call for is removed; other files are left alone.
        std::fs::write(dir.path().join("mi_acc_gamma9_epochs3.png"), b"old").unwrap();
        std::fs::write(dir.path().join("notes.png"), b"mine").unwrap();
        assert_eq!(plot_dir(dir.path()).unwrap(), written);
        assert!(!dir.path().join("mi_acc_gamma9_epochs3.png").exists());
        assert!(dir.path().join("notes.png").exists());
        std::fs::remove_file(dir.path().join("notes.png")).unwrap();
        // No temporary files left behind.
        let stray: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.starts_with('.').then_some(name)
            })
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }

    #[test]
    fn curves_have_means_and_bands() {
        let c = Curve::from_groups(vec![(1.0, vec![1.0, 3.0]), (2.0, vec![5.0])]);
        assert_eq!(c.mean(), vec![(1.0, 2.0), (2.0, 5.0)]);
        let sd = 2f64.sqrt();
        assert_eq!(c.band(), vec![(1.0, 2.0 + sd), (2.0, 5.0), (2.0, 5.0), (1.0, 2.0 - sd)]);
        assert_eq!(c.range(), Some(2.0 - sd..5.0));
    }

    #[test]
    fn malformed_csv_names_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("runs.csv"),
            "method,gamma,epochs,params,seed\nmi_unlearn,1,x,gamma=1 epochs=x,0\n",
        )
        .unwrap();
        let err = format!("{:#}", plot_dir(dir.path()).unwrap_err());
        assert!(err.contains("runs.csv: malformed row 2"), "{err}");
        let err = format!("{:#}", plot_dir(&dir.path().join("missing")).unwrap_err());
        assert!(err.contains("runs.csv"), "{err}");
    }
}
