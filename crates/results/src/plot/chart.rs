//! What every figure shares: the embedded font, colours, SVG and PNG output written
//! atomically (`render!`), reading CSV files refusing non-finite values, axes, legends and
//! bar panels.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use anyhow::Context as _;

use crate::rows::read;

pub(super) static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
pub(super) const FAMILY: &str = "sans-serif";

pub(super) fn register_font() {
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
pub(super) const MI_COLOUR: RGBColor = RGBColor(1, 115, 178);
pub(super) const FORGET_COLOUR: RGBColor = RGBColor(222, 143, 5);
pub(super) const REMAIN_COLOUR: RGBColor = RGBColor(2, 158, 115);
pub(super) const TEST_COLOUR: RGBColor = RGBColor(204, 120, 188);
pub(super) const RETRAIN_COLOUR: RGBColor = RGBColor(86, 86, 86);
pub(super) const FINETUNE_COLOUR: RGBColor = RGBColor(120, 70, 160);

pub(super) const GRID: RGBColor = RGBColor(225, 225, 225);

pub(super) const HISTORY_SIZE: (u32, u32) = (1200, 820);
pub(super) const SWEEP_SIZE: (u32, u32) = (1200, 1100);

/// Writes `<stem>.svg` and `<stem>.png` atomically, evaluating to the paths written. A macro
/// because the drawing function is generic over the backend: each expansion of the `$draw`
/// closure is typed for its own backend.
macro_rules! render {
    ($dir:expr, $stem:expr, $size:expr, $draw:expr) => {{
        super::chart::register_font();
        let dir: &std::path::Path = $dir;
        let stem: &str = $stem;
        let (width, height): (u32, u32) = $size;
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        // Both drawn in memory first, then each written by the one atomic-write helper
        // (temporary file, fsync, rename): a killed run leaves the old figure or the new one.
        let mut svg_text = String::new();
        let mut pixels = vec![0u8; width as usize * height as usize * 3];
        let drawn = {
            let root = plotters::prelude::IntoDrawingArea::into_drawing_area(
                plotters::prelude::SVGBackend::with_string(&mut svg_text, (width, height)),
            );
            $draw(&root).and_then(|()| root.present()).map_err(|e| ::anyhow::anyhow!("{e:?}"))
        }
        .and_then(|()| {
            let root = plotters::prelude::IntoDrawingArea::into_drawing_area(
                plotters::prelude::BitMapBackend::with_buffer(&mut pixels, (width, height)),
            );
            $draw(&root).and_then(|()| root.present()).map_err(|e| ::anyhow::anyhow!("{e:?}"))
        })
        .and_then(|()| {
            let png_bytes = super::chart::png_bytes(&pixels, width, height)?;
            $crate::fsutil::write_atomic(&svg, svg_text.as_bytes())?;
            $crate::fsutil::write_atomic(&png, &png_bytes)?;
            Ok(vec![svg.clone(), png.clone()])
        });
        ::anyhow::Context::with_context(drawn, || format!("cannot draw {}", svg.display()))
    }};
}
pub(super) use render;

/// RGB pixels encoded as PNG, as plotters' own bitmap encoder writes them.
pub(super) fn png_bytes(pixels: &[u8], width: u32, height: u32) -> anyhow::Result<Vec<u8>> {
    use image::ImageEncoder as _;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(pixels, width, height, image::ColorType::Rgb8)
        .context("cannot encode the PNG")?;
    Ok(out)
}

/// Columns that hold NaN where a value is unknown (an external method's losses), never drawn.
pub(super) const MAY_BE_UNKNOWN: [&str; 2] = ["ce", "loss"];

/// [`read`], refusing a NaN or infinite number anywhere but [`MAY_BE_UNKNOWN`]: the harness
/// never writes one (a diverged model fails its job), so such a file was edited or damaged,
/// and a figure of it would draw nonsense as if it were a result.
pub(super) fn read_drawn<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
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

/// Removes figures this module drew earlier in `dir` that the current runs no longer call for
/// (say, a gamma dropped from the experiment), so a results folder shows only current figures.
pub(super) fn remove_stale_figures(dir: &Path, written: &[PathBuf]) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ours =
            (name.contains("_sweep") || name.starts_with("mi_acc_") || name.starts_with("audit."))
                && (name.ends_with(".svg") || name.ends_with(".png"));
        if ours && !written.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

pub(super) fn distinct(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

/// What a mean and spread are over, from the `(seed, replicate)` of each run: `3 seeds`, or
/// `64 replicates` of one seed, or `2 seeds x 8 replicates`.
pub(super) fn over_runs(runs: impl Iterator<Item = (u64, usize)>) -> String {
    let mut runs: Vec<(u64, usize)> = runs.collect();
    runs.sort_unstable();
    runs.dedup();
    let mut seeds: Vec<u64> = runs.iter().map(|r| r.0).collect();
    seeds.dedup();
    let replicates = runs.len() / seeds.len().max(1);
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (seeds.len(), replicates) {
        (s, 1) => plural(s, "seed"),
        (1, r) => plural(r, "replicate"),
        (s, r) => format!("{} x {}", plural(s, "seed"), plural(r, "replicate")),
    }
}

pub(super) type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(super) fn font(size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

pub(super) fn padded(r: Range<f64>, frac: f64, min_span: f64) -> Range<f64> {
    let span = (r.end - r.start).max(min_span);
    let mid = (r.start + r.end) / 2.0;
    (mid - span / 2.0 * (1.0 + frac))..(mid + span / 2.0 * (1.0 + frac))
}

pub(super) fn union(ranges: impl IntoIterator<Item = Option<Range<f64>>>) -> Option<Range<f64>> {
    ranges.into_iter().flatten().reduce(|a, b| a.start.min(b.start)..a.end.max(b.end))
}

#[derive(Clone, Copy)]
pub(super) enum Line {
    Solid,
    Dashed,
    Band,
}

/// A legend in its own strip, so it never covers data.
pub(super) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(&str, RGBColor, Line)],
) -> Drawn<DB> {
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

/// A chart over two `f64` axes, as [`bar_panel`] builds it.
pub(super) type BarChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A horizontal bar panel of `n` rows (the first at the top) over `x`, captioned, with `ticks`
/// x labels of `decimals` decimals (by default 1 below 10, else 0), none past `last` (room for
/// the bars' texts beyond a bounded value): what the leaderboard's and the audit's panels are
/// drawn on.
pub(super) fn bar_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: Range<f64>,
    last: f64,
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
            if *v > last + 1e-9 { String::new() } else { format!("{v:.decimals$}") }
        })
        .label_style(font(15.0))
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()?;
    Ok(chart)
}

/// The `n` rows' labels, right-aligned in `area` beside the bars of [`bar_panel`]s drawn to its
/// right (whose plotting areas start 50 px down).
pub(super) fn row_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: impl Iterator<Item = String>,
    n: usize,
) -> Drawn<DB> {
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
pub(super) fn bar(
    i: usize,
    n: usize,
    from: f64,
    to: f64,
    colour: RGBColor,
) -> Rectangle<(f64, f64)> {
    let y = (n - 1 - i) as f64;
    Rectangle::new([(from, y + 0.18), (to, y + 0.82)], colour.filled())
}
