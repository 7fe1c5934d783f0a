//! Reporting a run: the results folder's files ([`folder`]: `runs.csv`, `summary.csv`,
//! `history.csv`, `methods.csv`, the figures, the table on stdout), what it knows of the
//! methods ([`methods`]: roles, the reference) and the per-example forgetting [`audit`] of an
//! experiment with populations of models.

pub mod audit;
pub mod folder;
pub mod methods;
