//! Running a checked experiment: its jobs and their keys ([`plan`], where external programs
//! are found and their inputs hashed), the content-addressed model [`cache`] and its job
//! [`lock`]s, the [`memorization`] population that chooses hard forget sets, the runner
//! ([`run`]) and its [`schedule`] on a [`device`], one job's training and evaluation
//! ([`train`]), with [`progress`] bars; methods outside the process ([`external`]); what an
//! interrupt stops ([`interrupt`]).

pub mod cache;
pub mod device;
pub mod external;
pub mod interrupt;
pub mod lock;
pub mod memorization;
pub mod plan;
pub mod progress;
pub mod run;
pub mod schedule;
pub mod train;
