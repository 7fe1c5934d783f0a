//! Reporting a run: the results folder's files ([`folder`]: `runs.csv`, `summary.csv`,
//! `history.csv`, `methods.csv`, the figures, the table on stdout), what it knows of the
//! methods ([`methods`]: roles, the reference), the per-example forgetting [`audit`] of an
//! experiment with populations of models, the forgetting quality with its interval
//! ([`quality`]), the [`memorization`] population's scores and gallery, and the folder's
//! generated [`readme`].

pub mod audit;
pub mod folder;
pub mod memorization;
pub mod methods;
pub mod quality;
pub mod readme;
