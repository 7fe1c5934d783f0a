//! Reporting a run: the results folder's files ([`folder`]: `runs.csv`, `summary.csv`,
//! `history.csv`, `methods.csv`, the figures, the table on stdout), what it knows of the
//! methods ([`methods`]: roles, the reference), the per-example forgetting [`audit`] of an
//! experiment with populations of models, and the forgetting quality with its interval
//! ([`quality`]).

pub mod audit;
pub mod folder;
pub mod methods;
pub mod quality;
