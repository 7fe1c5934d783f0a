//! `harness check`: an experiment run (from the cache where it can) and its `[check]` metrics
//! compared with a baseline, or the baseline rewritten.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use results::fsutil::Folder;

use crate::cli::commands::{RunArgs, load, options, run_experiment};
use crate::execution::progress::Verbosity;
use crate::experiment::Experiment;

/// Runs an experiment and compares its `[check]` metrics with `baseline` (or rewrites it).
pub fn check(
    path: &Path,
    baseline: &Path,
    update: bool,
    out: Option<&Path>,
    args: &RunArgs,
    verbosity: Verbosity,
) -> anyhow::Result<ExitCode> {
    let exp = Experiment::single(load(path)?, path)?;
    let Some(spec) = &exp.check else {
        anyhow::bail!(
            "{}: no [check] section: add one naming the metrics and tolerances",
            path.display()
        );
    };
    // Read the baseline (or see that it can be written) before the (possibly long) run, so a
    // bad one fails at once.
    let base = if update {
        anyhow::ensure!(
            !baseline.is_dir(),
            "--baseline {}: is a folder; give the path of a CSV file to write",
            baseline.display()
        );
        let folder = baseline.parent().filter(|p| !p.as_os_str().is_empty());
        results::fsutil::ensure_writable(folder.unwrap_or(Path::new(".")), Folder::Baseline)
            .with_context(|| format!("--baseline {}", baseline.display()))?;
        None
    } else {
        Some(results::check::read_baseline(baseline)?)
    };
    let out = out.map(Path::to_owned).unwrap_or_else(|| PathBuf::from("results").join(&exp.name));
    let summary = run_experiment(path, &exp, &options(args, verbosity, path, &exp)?, &out)?;
    // An audit's metrics come with intervals (one seed), which audit.csv holds.
    let audit_file = out.join("audit.csv");
    let audit: Vec<results::rows::AuditRow> = if exp.audit.is_some() && audit_file.exists() {
        results::rows::read(&audit_file)?
    } else {
        Vec::new()
    };
    let now = results::check::current(&summary, &audit, spec);
    if let Some((metric, _)) =
        spec.metrics.iter().find(|(m, _)| !now.iter().any(|r| r.metric == *m))
    {
        anyhow::bail!(
            "{}: `check.metrics` lists {metric}, but no run of this experiment has a value for \
             it{}; take it out of check.metrics, or add a method that computes it",
            path.display(),
            match metric.needs() {
                results::rows::Needs::MiEstimate =>
                    " (only a method that reports an MI estimate has)",
                _ => "",
            }
        );
    }
    match base {
        None => {
            results::fsutil::write_atomic(baseline, &results::check::baseline_csv(&now)?)
                .with_context(|| format!("--baseline {}", baseline.display()))?;
            eprintln!("wrote {} ({} rows)", baseline.display(), now.len());
            Ok(ExitCode::SUCCESS)
        }
        Some(base) => {
            let verdicts = results::check::compare(&now, &base, spec, baseline)?;
            print!("{}", results::check::table(&verdicts));
            let failed = verdicts.iter().filter(|v| !v.pass()).count();
            if failed == 0 {
                eprintln!(
                    "check passed: {} metrics within tolerance of {}",
                    verdicts.len(),
                    baseline.display()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "check FAILED: {failed} of {} metrics moved beyond tolerance",
                    verdicts.len()
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}
