//! The experiment runner: reads a TOML experiment ([`config`]), expands it into jobs with
//! content-hashed keys ([`plan`]), trains what the model [`cache`] lacks, in parallel and
//! dependencies first ([`run`]), and writes CSV tables ([`report`], with the per-example
//! forgetting [`audit`] of populations of models; their row types, the
//! figures and leaderboards are the `results` crate's). [`commands`] are the CLI's commands.
//!
//! ```no_run
//! let exp = harness::config::Experiment::load("experiments/paper_table.toml".as_ref())?;
//! let opts = harness::run::RunOptions { jobs: 2, threads: 1, cache: "cache".into(),
//!     verbosity: harness::progress::Verbosity::Normal, shard: None,
//!     device: harness::device::Resolved::CPU };
//! let outcome = harness::run::execute(&exp, &opts)?;
//! let (summary, _figures) =
//!     harness::report::write("results/paper_table".as_ref(), &outcome, &exp)?;
//! print!("{}", harness::report::table(&summary));
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod audit;
pub mod bench;
pub mod cache;
pub mod commands;
pub mod config;
pub mod device;
pub mod external;
pub mod interrupt;
pub mod owner;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
