//! A memorization population's results beside the experiment's: `memorization/scores.npy`,
//! `confidence_gap.npy` (float32, one per training image), `models_in.npy` (int16: models
//! that trained on it; the others did not), `chosen.npy` (int64: the forget set),
//! `gallery.npy` (uint8, the gallery's images), `memorization.csv` (per class) and
//! `memorization_gallery.csv`; the figure is drawn from them (`results::plot`).

use std::path::Path;

use results::fsutil::write_atomic;
use results::npy::to_bytes;
use results::rows::{GalleryRow, MemorizationRow, to_csv};

use crate::execution::memorization::Population;

pub fn write(out: &Path, p: &Population) -> anyhow::Result<()> {
    let dir = out.join("memorization");
    std::fs::create_dir_all(&dir)?;
    results::fsutil::sweep_temporaries(&dir);
    let s = &p.scores;
    let n = s.memorization.len();
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let chosen = p.forget.chosen.as_ref().map_or(&[][..], |c| &c.indices[..]);
    let models_in: Vec<i16> = s.models_in.iter().map(|&c| c as i16).collect();
    let ids: Vec<i64> = chosen.iter().map(|&i| i as i64).collect();
    let flat: Vec<u8> = p.pixels.concat();
    let side = p.pixels.first().map_or(0, Vec::len);
    let arrays = [
        ("scores.npy", to_bytes(&[n], &f32s(&s.memorization))),
        ("confidence_gap.npy", to_bytes(&[n], &f32s(&s.confidence_gap))),
        ("models_in.npy", to_bytes(&[n], &models_in)),
        ("chosen.npy", to_bytes(&[ids.len()], &ids)),
        ("gallery.npy", to_bytes(&[p.pixels.len(), side], &flat)),
    ];
    for (name, bytes) in arrays {
        write_atomic(&dir.join(name), &bytes)?;
    }
    write_atomic(&out.join("memorization.csv"), &to_csv(&summary(p, chosen))?)?;
    let gallery: Vec<GalleryRow> = p
        .gallery
        .iter()
        .map(|&(side, rank, i)| GalleryRow {
            side: side.to_owned(),
            rank,
            index: i,
            label: p.labels[i],
            memorization: s.memorization[i],
            confidence_gap: s.confidence_gap[i],
            models_in: s.models_in[i],
            models_out: s.models_out[i],
        })
        .collect();
    write_atomic(&out.join("memorization_gallery.csv"), &to_csv(&gallery)?)
}

/// Per class, then over all: the distribution of the scores and how many were chosen.
fn summary(p: &Population, chosen: &[usize]) -> Vec<MemorizationRow> {
    let s = &p.scores;
    let classes = (0..data::dataset::CLASSES).map(Some).chain(std::iter::once(None));
    classes
        .map(|class| {
            let of = |i: &usize| class.is_none_or(|c| p.labels[*i] == c);
            let mut v: Vec<f64> =
                (0..s.memorization.len()).filter(of).map(|i| s.memorization[i]).collect();
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).copied();
            MemorizationRow {
                class: class.map_or_else(|| "all".to_owned(), |c| c.to_string()),
                examples: v.len(),
                models: p.models,
                population: p.key.clone(),
                mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
                median: at(0.5).unwrap_or(f64::NAN),
                p90: at(0.9).unwrap_or(f64::NAN),
                p99: at(0.99).unwrap_or(f64::NAN),
                max: v.last().copied().unwrap_or(f64::NAN),
                above_half: v.iter().filter(|&&x| x >= 0.5).count(),
                chosen: chosen.iter().filter(|i| of(i)).count(),
            }
        })
        .collect()
}
