//! The training and unlearning methods, exactly as the notebook runs them, over the dataset
//! held once per process ([`Images`]) and each job's split of it ([`Data`]).
//!
//! - [`Method`]: the interface of a method (its parameters as a serde struct, how it trains
//!   from a [`Context`]); [`catalog`]: every method, one file each, registered in
//!   [`catalog::ALL`]; [`AnyMethod`]: one configured parameter set, as the harness holds it;
//! - [`loops`]: the notebook's two training loops; [`mi::mutual_information`]: the plug-in
//!   estimate of `I(Y_hat; Z)` that MI-unlearn penalises;
//! - [`engine`]: how each step is computed: `native` (the default: plain Rust on the CPU, from
//!   each image's non-background pixels) or `autograd` (the libtorch reference); they agree to
//!   float rounding. [`engine::evaluate`]: accuracy (%) on the remain, forget and test sets;
//!   [`engine::outputs`] with [`mia::attack`]: membership-inference efficacy on the forget set.
//!
//! Every random draw comes from a stream of [`data::rng`] named after the method and the seed,
//! so a run is the same whichever thread runs it and whatever else runs beside it.
//!
//! The modules import each other as a tree (ARCHITECTURE.md shows the graph): this file only
//! declares them.

pub mod catalog;
pub mod engine;
pub mod eval;
mod kit;
pub mod loops;
pub mod method;
pub mod mi;
pub mod mia;
pub mod params;
pub mod section;
pub mod sparse;
pub mod tensors;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

pub use engine::Engine;
pub use engine::step::EpochStats;
pub use eval::{Metrics, Outputs};
pub use method::{
    AnyMethod, Context, Count, DynMethod, Failed, Invalid, Method, Rate, Role, Swept, canonical_key,
};
pub use section::Registration;
pub use sparse::SparseRows;
pub use tensors::{Data, Images};
