//! A results folder's files, and everything made from them alone (never the model cache or
//! libtorch): [`rows`], the CSV files as types and the metrics as an enum; [`plot`], the
//! figures; [`leaderboard`], a suite's methods ranked over its cells; [`check`], a summary
//! compared with a committed baseline; [`fsutil`], the atomic writes every output goes
//! through.
//!
//! `harness plot DIR` is this crate: it draws a folder's figures from its CSV files.

pub mod check;
pub mod forget_score;
pub mod fsutil;
pub mod ks;
pub mod leaderboard;
pub mod npy;
pub mod owner;
pub mod plot;
pub mod rows;
pub mod ulira;
