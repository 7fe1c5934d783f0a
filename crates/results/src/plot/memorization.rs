//! `memorization`: a memorization population's gallery (the 24 most and 24 least memorized
//! training images, each with its label and score) over the distribution of the scores,
//! drawn from `memorization_gallery.csv`, `memorization/gallery.npy` and
//! `memorization/scores.npy`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::*;
use crate::rows::GalleryRow;

const SIZE: (u32, u32) = (1200, 1420);
/// Each image's pixels drawn as `ZOOM` x `ZOOM` squares.
const ZOOM: usize = 4;
const SIDE: usize = 28;
const COLUMNS: usize = 8;
/// Bins of the histogram over [-1, 1].
const BINS: usize = 40;

struct Gallery {
    rows: Vec<GalleryRow>,
    /// Per row, its image's 784 grey levels (0 black ... 255 white ink).
    pixels: Vec<Vec<u8>>,
    scores: Vec<f32>,
}

/// Draws the figure when `dir` has a gallery; the paths written.
pub(crate) fn plot_memorization(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let path = dir.join("memorization_gallery.csv");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let rows: Vec<GalleryRow> = read_drawn(&path)?;
    let array = |name: &str| {
        let p = dir.join("memorization").join(name);
        std::fs::read(&p).with_context(|| format!("{}: cannot read", p.display()))
    };
    let bytes = array("gallery.npy")?;
    let (shape, flat) = crate::npy::from_bytes::<u8>(&bytes)
        .context("memorization/gallery.npy: not a uint8 array")?;
    anyhow::ensure!(
        shape == [rows.len(), SIDE * SIDE],
        "memorization/gallery.npy has shape {shape:?}; {} has {} rows of {}x{} images",
        path.display(),
        rows.len(),
        SIDE,
        SIDE
    );
    let pixels = flat.chunks(SIDE * SIDE).map(<[u8]>::to_vec).collect();
    let (_, scores) = crate::npy::from_bytes::<f32>(&array("scores.npy")?)
        .context("memorization/scores.npy: not a float32 array")?;
    let g = Gallery { rows, pixels, scores };
    render!(dir, "memorization", SIZE, |root| draw(root, &g))
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, g: &Gallery) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let models = g.rows.first().map_or(0, |r| r.models_in + r.models_out);
    let title = format!(
        "Memorization over {models} models on random halves: P(correct | in) - P(correct | out)"
    );
    let root = root.titled(&title, font(24.0))?;
    let (galleries, histogram) = root.split_vertically(1000);
    let (most, least) = galleries.split_vertically(500);
    for (area, side, caption) in [
        (&most, "most", "the 24 most memorized training images (label · memorization)"),
        (&least, "least", "the 24 least memorized training images (label · memorization)"),
    ] {
        area.draw(&Text::new(caption, (30, 8), font(21.0)))?;
        let tiles: Vec<usize> = (0..g.rows.len()).filter(|&i| g.rows[i].side == side).collect();
        for (slot, &i) in tiles.iter().enumerate() {
            let (col, row) = (slot % COLUMNS, slot / COLUMNS);
            let (x, y) = (30 + col as i32 * 142, 40 + row as i32 * 152);
            area.draw(&tile((x, y), &g.pixels[i]))?;
            let r = &g.rows[i];
            let label = format!("{} · {:.2}", r.label, r.memorization);
            area.draw(&Text::new(label, (x + 4, y + (SIDE * ZOOM) as i32 + 6), font(17.0)))?;
        }
    }
    draw_histogram(&histogram, &g.scores)
}

/// An image as a bitmap element at `pos`, ink dark on white.
fn tile(pos: (i32, i32), grey: &[u8]) -> BitMapElement<'static, (i32, i32)> {
    let w = SIDE * ZOOM;
    let mut rgb = vec![0u8; w * w * 3];
    for (p, px) in rgb.chunks_mut(3).enumerate() {
        let (y, x) = (p / w / ZOOM, p % w / ZOOM);
        px.fill(255 - grey[y * SIDE + x]);
    }
    BitMapElement::with_owned_buffer(pos, (w as u32, w as u32), rgb).expect("a full buffer")
}

fn draw_histogram<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, scores: &[f32]) -> Drawn<DB> {
    let mut counts = [0usize; BINS];
    for &s in scores.iter().filter(|s| s.is_finite()) {
        let bin = ((f64::from(s) + 1.0) / 2.0 * BINS as f64).floor() as usize;
        counts[bin.min(BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .caption(format!("all {} training images", scores.len()), font(19.0))
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(-1.0..1.0, (0.8..top * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("memorization")
        .y_desc("images")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(font(16.0))
        .axis_desc_style(font(19.0))
        .bold_line_style(GRID)
        .light_line_style(WHITE)
        .draw()?;
    let width = 2.0 / BINS as f64;
    chart.draw_series(counts.iter().enumerate().filter(|&(_, &c)| c > 0).map(|(b, &c)| {
        let x0 = -1.0 + b as f64 * width;
        Rectangle::new([(x0, 0.8), (x0 + width, c as f64)], MI_COLOUR.mix(0.8).filled())
    }))?;
    Ok(())
}
