//! The command line's stage: each command of `harness` ([`commands`], returning the exit
//! code; `main.rs` only parses the command line), the speed measurements ([`bench`]) and the
//! scoring of populations trained anywhere ([`score`]).

pub mod bench;
pub mod check;
pub mod commands;
pub mod score;
pub mod shard;
