//! What a report knows of the methods of an outcome, from their roles and declarations,
//! never their names: their order, the reference every gap is measured against, the `gamma`
//! column and `methods.csv`'s rows.

use methods::{AnyMethod, Role};
use results::rows::MethodRow;

use crate::execution::run::RunResult;

/// The methods and parameter sets of `results`, in plan order.
pub fn methods_in(results: &[RunResult]) -> Vec<&AnyMethod> {
    let mut methods: Vec<&AnyMethod> = Vec::new();
    for r in results {
        if !methods.contains(&&r.job.method) {
            methods.push(&r.job.method);
        }
    }
    methods
}

/// The parameter set every run is compared with: of the reference method's, the first with
/// the most epochs.
pub fn reference(results: &[RunResult]) -> Option<&AnyMethod> {
    let references = methods_in(results).into_iter().filter(|m| m.role() == Role::Reference);
    let most = references.clone().map(|m| m.epochs()).max()?;
    references.into_iter().find(|m| m.epochs() == most)
}

/// The `gamma` column of the CSV files: the method's swept parameter's value where that
/// parameter is called gamma (MI-unlearn's), so that files keep the column users read.
pub fn gamma(method: &AnyMethod) -> Option<f64> {
    method.swept().filter(|(s, _)| s.parameter == "gamma").map(|(_, value)| value)
}

/// `methods.csv`: every method and parameter set of `results`, in plan order.
pub fn rows(results: &[RunResult]) -> Vec<MethodRow> {
    methods_in(results)
        .into_iter()
        .map(|m| {
            let swept = m.swept();
            MethodRow {
                method: m.name().to_owned(),
                params: m.label(),
                role: match m.role() {
                    Role::Original => results::rows::Role::Original,
                    Role::Reference => results::rows::Role::Reference,
                    Role::Control => results::rows::Role::Control,
                    Role::Unlearner => results::rows::Role::Unlearner,
                },
                swept: swept.map_or_else(String::new, |(s, _)| s.parameter.to_owned()),
                value: swept.map(|(_, v)| v),
                about: swept.map_or_else(String::new, |(s, _)| s.about.to_owned()),
                title: swept.map_or_else(String::new, |(s, _)| s.title.to_owned()),
            }
        })
        .collect()
}
