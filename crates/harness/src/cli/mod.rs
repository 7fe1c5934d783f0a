//! The command line's stage: each command of `harness` ([`commands`], returning the exit
//! code; `main.rs` only parses the command line) and the speed measurements ([`bench`]).

pub mod bench;
pub mod check;
pub mod commands;
pub mod shard;
