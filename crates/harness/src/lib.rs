//! The experiment runner, laid out by stage, each importing only the stages below it:
//!
//! - [`experiment`]: a TOML experiment read and checked into a [`experiment::Suite`] of
//!   [`experiment::Experiment`] cells (parsing and checking only: no file system, no PATH);
//! - [`execution`]: jobs with content-hashed keys ([`execution::plan`], where external
//!   programs are found and their inputs hashed), trained in parallel and dependencies first
//!   ([`execution::run`]) into the model [`execution::cache`], on a [`execution::device`];
//! - [`report`]: a results folder written from the runs ([`report::folder`]: CSV tables and
//!   figures, whose row types and drawing are the `results` crate's), with the per-example
//!   forgetting [`report::audit`] of populations of models;
//! - [`cli`]: the command line's commands, each returning the exit code.
//!
//! ```no_run
//! let text = std::fs::read_to_string("experiments/paper_table.toml")?;
//! let exp = harness::experiment::Experiment::parse(&text, "experiments/paper_table.toml".as_ref())?;
//! let opts = harness::execution::run::RunOptions { jobs: 2, threads: 1, cache: "cache".into(),
//!     verbosity: harness::execution::progress::Verbosity::Normal, shard: None,
//!     device: harness::execution::device::Resolved::CPU };
//! let outcome = harness::execution::run::execute(&exp, &opts)?;
//! let (summary, _figures) =
//!     harness::report::folder::write("results/paper_table".as_ref(), &outcome, &exp)?;
//! print!("{}", harness::report::folder::table(&summary));
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cli;
pub mod execution;
pub mod experiment;
pub mod report;
