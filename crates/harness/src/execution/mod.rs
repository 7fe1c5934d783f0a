//! Running a checked experiment: its jobs and their keys ([`plan`], where external programs
//! are found and their inputs hashed), the content-addressed model [`cache`] and its locks,
//! the scheduler ([`run`]) on a [`device`], with [`progress`] bars; methods outside the
//! process ([`external`]); what an interrupt stops ([`interrupt`]) and who left a temporary
//! behind ([`owner`]).

pub mod cache;
pub mod device;
pub mod external;
pub mod interrupt;
pub mod owner;
pub mod plan;
pub mod progress;
pub mod run;
