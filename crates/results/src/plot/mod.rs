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
//!   against 0.5, and how the forget examples' epsilons fall into the score's buckets;
//! - `memorization`: when the folder has `memorization_gallery.csv` (a forget set chosen by
//!   memorization): the most and least memorized training images and the scores' histogram.

mod audit;
mod chart;
mod history;
mod leaderboard;
mod memorization;
mod runs;
mod sweep;
#[cfg(test)]
mod tests;

pub use audit::plot_audit;
pub use leaderboard::plot_leaderboard;
pub use runs::{MAX_HISTORY_FIGURES, plot_dir};
