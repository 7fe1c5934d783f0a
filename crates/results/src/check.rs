//! `harness check`: compares an experiment's summary metrics with a committed baseline, for
//! regression checks in CI.
//!
//! The baseline is a CSV file of [`BaselineRow`]s, one per checked metric, method and
//! parameter set: `metric,method,gamma,epochs,params,n_seeds,mean,std,lo,hi`, where `params` is the
//! parameter set as `runs.csv` and `summary.csv` write it (`alpha=0.01 epochs=5 lr=0.0001`):
//! rows are keyed by metric, method and `params`, so a grid over any parameter gets one row per
//! point. A metric passes when the change of its mean over seeds is within tolerance (see
//! [`CheckSpec`]), in either direction. Every run must have a baseline row and every baseline
//! row a run: anything else is unusable input, not a verdict.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::rows::BaselineRow;
use crate::rows::{AuditRow, Metric, SummaryRow, header, to_csv};

/// An experiment's `[check]` section as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// Summary metrics to compare, e.g. `["forget_gap", "test_gap"]`.
    pub metrics: Vec<Metric>,
    /// Absolute tolerance for every metric, in its unit (percentage points for accuracies and
    /// gaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Per-metric absolute tolerances, overriding `tolerance`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tolerances: BTreeMap<Metric, f64>,
    /// Tolerance in standard errors of the difference of the two means over seeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard_errors: Option<f64>,
}

/// A checked `[check]` section: a metric passes when `|now - baseline|` is at most the larger
/// of its absolute tolerance and `standard_errors * sqrt(se_now^2 + se_base^2)`, a value's
/// standard error being `std / sqrt(n)` over seeds, or for an audit's metric on one seed (F,
/// F / F_ref, U-LiRA's), which has no spread over seeds, its 95% interval's half-width / 1.96.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Each checked metric with its absolute tolerance, if any.
    pub metrics: Vec<(Metric, Option<f64>)>,
    pub standard_errors: Option<f64>,
}

impl CheckSection {
    /// The section checked; an error is `(key, problem)`, the key under `check.`.
    pub fn validate(&self) -> Result<CheckSpec, (String, String)> {
        let invalid = |key: &str, problem: String| (format!("check.{key}"), problem);
        let known = || Metric::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ");
        let tolerance_ok = |key: &str, t: f64| {
            if t.is_finite() && t >= 0.0 {
                Ok(())
            } else {
                Err(invalid(key, format!("is {t}; a tolerance must be a finite number >= 0")))
            }
        };
        if self.metrics.is_empty() {
            return Err(invalid("metrics", format!("is empty; name some of: {}", known())));
        }
        let listed = |i: usize| &self.metrics[..i];
        if let Some((_, m)) = self.metrics.iter().enumerate().find(|(i, m)| listed(*i).contains(m))
        {
            return Err(invalid("metrics", format!("lists {m} twice")));
        }
        if let Some(t) = self.tolerance {
            tolerance_ok("tolerance", t)?;
        }
        if let Some(k) = self.standard_errors {
            tolerance_ok("standard_errors", k)?;
        }
        for (metric, &t) in &self.tolerances {
            let key = format!("tolerances.{metric}");
            tolerance_ok(&key, t)?;
            if !self.metrics.contains(metric) {
                return Err(invalid(
                    &key,
                    "names a metric that check.metrics does not list".into(),
                ));
            }
        }
        let mut metrics = Vec::new();
        for &m in &self.metrics {
            let abs = self.tolerances.get(&m).copied().or(self.tolerance);
            if abs.is_none() && self.standard_errors.is_none() {
                return Err((
                    "check".into(),
                    format!(
                        "gives {m} no tolerance; set tolerance, tolerances.{m} or standard_errors"
                    ),
                ));
            }
            metrics.push((m, abs));
        }
        Ok(CheckSpec { metrics, standard_errors: self.standard_errors })
    }
}

/// Input that cannot be checked (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{path}: cannot read the baseline (create it with --update-baseline)")]
    Missing { path: PathBuf, source: std::io::Error },
    #[error("{path}: malformed baseline: {problem}")]
    Malformed { path: PathBuf, problem: String },
    #[error("{path}: {problem}")]
    Mismatch { path: PathBuf, problem: String },
}

impl BaselineRow {
    fn same_cell(&self, other: &BaselineRow) -> bool {
        (&self.metric, &self.method, &self.params) == (&other.metric, &other.method, &other.params)
    }

    fn describe(&self) -> String {
        format!("{} of {} {}", self.metric, self.method, self.params)
    }
}

/// The checked metrics of `summary`, as baseline rows; an audit's metric on one seed with its
/// interval from `audit` (`audit.csv`'s rows).
pub fn current(summary: &[SummaryRow], audit: &[AuditRow], spec: &CheckSpec) -> Vec<BaselineRow> {
    let mut rows = Vec::new();
    for &(metric, _) in &spec.metrics {
        for s in summary {
            if let Some(stat) = s.metric(metric) {
                let of: Vec<&AuditRow> =
                    audit.iter().filter(|a| a.method == s.method && a.params == s.params).collect();
                let interval = match of.as_slice() {
                    [one] => one.interval(metric),
                    _ => None,
                };
                rows.push(BaselineRow {
                    metric,
                    method: s.method.clone(),
                    gamma: s.gamma,
                    epochs: s.epochs,
                    params: s.params.clone(),
                    n_seeds: s.n_seeds * s.n_replicates,
                    mean: stat.mean,
                    std: stat.std,
                    lo: interval.map(|i| i.0),
                    hi: interval.map(|i| i.1),
                });
            }
        }
    }
    rows
}

/// The rows as CSV, numbers written like the other CSV files (`4`, not `4.0`).
pub fn baseline_csv(rows: &[BaselineRow]) -> anyhow::Result<Vec<u8>> {
    to_csv(rows)
}

pub fn read_baseline(path: &Path) -> Result<Vec<BaselineRow>, CheckError> {
    let bytes = std::fs::read(path)
        .map_err(|source| CheckError::Missing { path: path.to_owned(), source })?;
    let malformed = |problem: String| CheckError::Malformed { path: path.to_owned(), problem };
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    let found: Vec<String> =
        reader.headers().map_err(|e| malformed(e.to_string()))?.iter().map(String::from).collect();
    let expected = header::<BaselineRow>();
    if found.is_empty() {
        return Err(malformed("the file is empty; create it with --update-baseline".into()));
    }
    // Baselines written before intervals lack the last two columns, which default to none.
    let before_intervals = expected[..expected.len() - 2].to_vec();
    if found != expected && found != before_intervals {
        let old =
            found.iter().all(|h| expected.contains(h)) && !found.iter().any(|h| h == "params");
        return Err(malformed(format!(
            "the header is {:?}, expected {}{}",
            found.join(","),
            expected.join(","),
            if old {
                " (a baseline from before parameter sets were keyed by `params`; regenerate it \
                 with --update-baseline)"
            } else {
                ""
            }
        )));
    }
    let rows: Vec<BaselineRow> = reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| malformed(format!("line {}: {e}", i + 2))))
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        return Err(malformed("no rows; regenerate it with --update-baseline".into()));
    }
    for (i, row) in rows.iter().enumerate() {
        if !row.mean.is_finite() {
            return Err(malformed(format!("line {}: mean {} is not a number", i + 2, row.mean)));
        }
        if rows[..i].iter().any(|o| o.same_cell(row)) {
            return Err(malformed(format!("line {}: {} appears twice", i + 2, row.describe())));
        }
    }
    Ok(rows)
}

/// One metric's comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub row: BaselineRow,
    pub now: f64,
    pub tolerance: f64,
}

impl Verdict {
    pub fn delta(&self) -> f64 {
        self.now - self.row.mean
    }

    pub fn pass(&self) -> bool {
        // A hair of slack so that a tolerance of 0 accepts the same numbers re-read from CSV.
        self.delta().abs() <= self.tolerance + 1e-9
    }
}

/// Compares the current rows with the baseline.
pub fn compare(
    now: &[BaselineRow],
    baseline: &[BaselineRow],
    spec: &CheckSpec,
    path: &Path,
) -> Result<Vec<Verdict>, CheckError> {
    let mismatch = |problem: String| CheckError::Mismatch { path: path.to_owned(), problem };
    if let Some(b) = baseline.iter().find(|b| !now.iter().any(|n| n.same_cell(b))) {
        return Err(mismatch(format!(
            "the baseline has {} but the experiment has no such run or checked metric; \
             fix the experiment or regenerate the baseline with --update-baseline",
            b.describe()
        )));
    }
    now.iter()
        .map(|n| {
            let b = baseline.iter().find(|b| b.same_cell(n)).ok_or_else(|| {
                mismatch(format!(
                    "no baseline row for {}; add it with --update-baseline",
                    n.describe()
                ))
            })?;
            let abs = spec.metrics.iter().find(|(m, _)| *m == n.metric).and_then(|(_, t)| *t);
            let se = spec.standard_errors.map(|k| {
                let var = |r: &BaselineRow| match (r.lo, r.hi) {
                    (Some(lo), Some(hi)) => ((hi - lo) / 2.0 / 1.96).powi(2),
                    _ => r.std.unwrap_or(0.0).powi(2) / r.n_seeds as f64,
                };
                k * (var(n) + var(b)).sqrt()
            });
            let tolerance = abs.unwrap_or(0.0).max(se.unwrap_or(0.0));
            Ok(Verdict { row: b.clone(), now: n.mean, tolerance })
        })
        .collect()
}

/// The verdicts as a table.
pub fn table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<20} {:<12} {:<28} {:>9} {:>9} {:>8} {:>9}  {}\n",
        "metric", "method", "parameters", "baseline", "now", "delta", "tolerance", "result"
    );
    for v in verdicts {
        out += &format!(
            "{:<20} {:<12} {:<28} {:>9.3} {:>9.3} {:>+8.3} {:>9.3}  {}\n",
            v.row.metric.name(),
            v.row.method,
            v.row.params,
            v.row.mean,
            v.now,
            v.delta(),
            v.tolerance,
            if v.pass() { "PASS" } else { "FAIL" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(metric: Metric, gamma: Option<f64>, mean: f64, std: Option<f64>) -> BaselineRow {
        BaselineRow {
            metric,
            method: if gamma.is_some() { "mi_unlearn" } else { "finetune" }.into(),
            gamma,
            epochs: 5,
            params: gamma.map(|g| format!("gamma={g} ")).unwrap_or_default() + "epochs=5",
            n_seeds: 3,
            mean,
            std,
            lo: None,
            hi: None,
        }
    }

    fn spec(abs: Option<f64>, k: Option<f64>) -> CheckSpec {
        CheckSpec {
            metrics: vec![(Metric::ForgetGap, abs), (Metric::TestGap, abs)],
            standard_errors: k,
        }
    }

    #[test]
    fn tolerance_is_the_larger_of_absolute_and_standard_errors() {
        let base = [row(Metric::ForgetGap, Some(4.0), -1.0, Some(1.5))];
        let now = [row(Metric::ForgetGap, Some(4.0), 0.2, Some(1.5))];
        let p = Path::new("b.csv");
        // k * sqrt(1.5^2/3 + 1.5^2/3) = 2 * 1.2247 = 2.449
        let v = compare(&now, &base, &spec(Some(0.5), Some(2.0)), p).unwrap();
        assert!((v[0].tolerance - 2.449_489_742_783_178).abs() < 1e-12);
        assert!((v[0].delta() - 1.2).abs() < 1e-12 && v[0].pass());
        let v = compare(&now, &base, &spec(Some(0.5), None), p).unwrap();
        assert_eq!(v[0].tolerance, 0.5);
        assert!(!v[0].pass(), "moved 1.2 > 0.5");
        let down = [row(Metric::ForgetGap, Some(4.0), -1.6, Some(1.5))];
        assert!(
            !compare(&down, &base, &spec(Some(0.5), None), p).unwrap()[0].pass(),
            "either direction"
        );
        let same = compare(&base, &base, &spec(Some(0.0), None), p).unwrap();
        assert!(same[0].pass());
        assert!(table(&v).contains("FAIL") && table(&same).contains("PASS"));
        // Columns line up: the metric is padded like the header.
        let t = table(&v);
        assert!(t.lines().all(|l| l[21..].starts_with("m")), "{t}");
    }

    /// An audit's metric on one seed: its interval stands for the standard error.
    #[test]
    fn an_audit_metric_is_checked_against_its_interval() {
        let p = Path::new("b.csv");
        let f = |mean: f64, lo: f64, hi: f64| BaselineRow {
            metric: Metric::ForgetQuality,
            n_seeds: 1,
            lo: Some(lo),
            hi: Some(hi),
            ..row(Metric::ForgetQuality, None, mean, None)
        };
        let spec =
            CheckSpec { metrics: vec![(Metric::ForgetQuality, None)], standard_errors: Some(2.0) };
        // Half-widths 0.0196 and 0.0392: standard errors 0.01 and 0.02; 2 * sqrt(0.0005).
        let base = [f(0.05, 0.05 - 0.0196, 0.05 + 0.0196)];
        let near = [f(0.09, 0.09 - 0.0392, 0.09 + 0.0392)];
        let v = compare(&near, &base, &spec, p).unwrap();
        assert!((v[0].tolerance - 2.0 * 0.0005f64.sqrt()).abs() < 1e-12, "{}", v[0].tolerance);
        assert!(v[0].pass(), "moved 0.04 < 0.0447");
        let far = [f(0.1, 0.1 - 0.0392, 0.1 + 0.0392)];
        assert!(!compare(&far, &base, &spec, p).unwrap()[0].pass(), "moved 0.05");
        // Through the audit's rows: one row per seed gives the interval; two, none.
        let mut summary = SummaryRow {
            method: "finetune".into(),
            params: "epochs=5".into(),
            ..SummaryRow::default()
        };
        summary.set(Metric::ForgetQuality, Some(crate::rows::Stat { mean: 0.05, std: None }));
        let audit = AuditRow {
            method: "finetune".into(),
            params: "epochs=5".into(),
            forget_quality: Some(0.05),
            forget_quality_lo: Some(0.04),
            forget_quality_hi: Some(0.06),
            ..AuditRow::default()
        };
        let now = current(std::slice::from_ref(&summary), std::slice::from_ref(&audit), &spec);
        assert_eq!((now[0].lo, now[0].hi), (Some(0.04), Some(0.06)));
        let now = current(&[summary], &[audit.clone(), audit], &spec);
        assert_eq!((now[0].lo, now[0].hi), (None, None));
    }

    #[test]
    fn every_run_needs_a_baseline_row_and_back() {
        let p = Path::new("b.csv");
        let a = row(Metric::ForgetGap, Some(4.0), -1.0, None);
        let b = row(Metric::ForgetGap, Some(6.0), -9.0, None);
        let err =
            compare(&[a.clone(), b.clone()], std::slice::from_ref(&a), &spec(Some(1.0), None), p)
                .unwrap_err();
        assert!(
            err.to_string()
                .contains("no baseline row for forget_gap of mi_unlearn gamma=6 epochs=5"),
            "{err}"
        );
        let err = compare(std::slice::from_ref(&a), &[a.clone(), b], &spec(Some(1.0), None), p)
            .unwrap_err();
        assert!(
            err.to_string().contains("the baseline has forget_gap of mi_unlearn gamma=6 epochs=5"),
            "{err}"
        );
    }

    #[test]
    fn baseline_files_round_trip_and_malformed_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.csv");
        let rows = vec![
            row(Metric::ForgetGap, Some(4.5), -1.25, Some(0.5)),
            row(Metric::TestGap, None, 0.1, None),
        ];
        std::fs::write(&path, baseline_csv(&rows).unwrap()).unwrap();
        assert_eq!(read_baseline(&path).unwrap(), rows);

        let check = |text: &str, expected: &str| {
            std::fs::write(&path, text).unwrap();
            let err = read_baseline(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        };
        check("metric,method\n", "header is \"metric,method\"");
        let header = "metric,method,gamma,epochs,params,n_seeds,mean,std\n";
        check(header, "no rows");
        // A baseline from before intervals (no lo, hi) still reads, without them.
        std::fs::write(&path, format!("{header}forget_gap,finetune,,5,epochs=5,3,1.5,\n")).unwrap();
        let old = read_baseline(&path).unwrap();
        assert_eq!((old[0].mean, old[0].lo, old[0].hi), (1.5, None, None));
        check(&format!("{header}forget_gap,mi_unlearn,4,5,gamma=4 epochs=5,3,abc,\n"), "line 2");
        check(
            &format!(
                "{header}forget_gap,finetune,,5,epochs=5,3,1,\nforget_gap,finetune,,5,epochs=5,3,2,\n"
            ),
            "line 3: forget_gap of finetune epochs=5 appears twice",
        );
        check(
            "metric,method,gamma,epochs,n_seeds,mean,std\nforget_gap,finetune,,5,3,1,\n",
            "regenerate it with --update-baseline",
        );
        let err = read_baseline(&dir.path().join("none.csv")).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("No such file").count(), 1, "the cause once: {chain}");
        assert!(
            chain.contains("none.csv: cannot read the baseline")
                && chain.contains("--update-baseline"),
            "{chain}"
        );
    }

    /// A grid over a baseline's parameters (same method, gamma and epochs; different lr):
    /// one baseline row per point, read back and compared point by point.
    #[test]
    fn a_parameter_grid_gets_one_row_per_parameter_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.csv");
        let point = |lr: &str, mean: f64| BaselineRow {
            metric: Metric::ForgetGap,
            method: "grad_ascent".into(),
            gamma: None,
            epochs: 5,
            params: format!("epochs=5 lr={lr}"),
            n_seeds: 3,
            mean,
            std: None,
            lo: None,
            hi: None,
        };
        let rows = vec![point("0.0001", 2.0), point("0.00003", 7.0)];
        std::fs::write(&path, baseline_csv(&rows).unwrap()).unwrap();
        let read = read_baseline(&path).unwrap();
        assert_eq!(read, rows);
        let now = vec![point("0.00003", 7.25), point("0.0001", 2.0)];
        let v = compare(&now, &read, &spec(Some(0.1), None), &path).unwrap();
        assert_eq!((v[0].row.mean, v[0].now, v[0].pass()), (7.0, 7.25, false), "matched by lr");
        assert_eq!((v[1].row.mean, v[1].now, v[1].pass()), (2.0, 2.0, true));
        assert!(table(&v).contains("epochs=5 lr=0.00003"), "{}", table(&v));
    }
}
