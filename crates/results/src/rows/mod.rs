//! The CSV files of a results folder as types: every writer serialises these rows and every
//! reader deserialises them, so a renamed or reordered column is a compile error, not a
//! silently wrong figure. Numbers are written in Rust's shortest round-trip form (`4`, not
//! `4.0`; `0.00003`, not `3e-5`), times with two decimals, optional values of magnitude below
//! 1e-6 (p-values) in scientific notation (`6.04e-40`), absent values as empty cells.
//! The files: [`RunRow`], [`HistoryRow`], [`SummaryRow`] (over every [`Metric`]),
//! [`AuditRow`], [`PairRow`], [`CurveRow`] and [`EpsilonRow`] (audits), [`MemorizationRow`]
//! and [`GalleryRow`] (memorization-chosen forget sets), [`LeaderboardRow`] and
//! [`BaselineRow`] (`harness check`).

mod audit;
mod board;
mod cell;
mod io;
mod memorization;
pub(crate) mod metric;
mod run;
#[cfg(test)]
mod tests;

pub use audit::{AuditRow, CurveRow, EpsilonRow, PairRow};
pub use board::{BaselineRow, LeaderboardRow};
pub use io::{header, read, to_csv};
pub use memorization::{GalleryRow, MemorizationRow};
pub use metric::{Metric, Needs, Stat, SummaryRow};
pub use run::{HistoryRow, MethodRow, Role, RunRow};
