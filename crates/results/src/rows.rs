//! The CSV files of a results folder as types: every writer serialises these rows and every
//! reader deserialises them, so a renamed or reordered column is a compile error, not a
//! silently wrong figure. Numbers are written in Rust's shortest round-trip form (`4`, not
//! `4.0`; `0.00003`, not `3e-5`), times with two decimals, optional values of magnitude below
//! 1e-6 (p-values) in scientific notation (`6.04e-40`), absent values as empty cells.
//! The files: [`RunRow`], [`HistoryRow`], [`SummaryRow`] (over every [`Metric`]),
//! [`AuditRow`] and [`EpsilonRow`] (audits), [`LeaderboardRow`] and [`BaselineRow`]
//! (`harness check`).

use std::path::Path;

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Cell formats for `serialize_with`.
mod cell {
    use serde::Serializer;

    /// Shortest round-trip form, never an exponent.
    pub fn num<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// As [`num`], but in scientific notation for a magnitude below 1e-6 (a p-value of
    /// 1e-300 would otherwise take 300 digits); absent as an empty cell.
    pub fn opt<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) if *v != 0.0 && v.abs() < 1e-6 => s.collect_str(&format_args!("{v:e}")),
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }

    /// Two decimals (times and speed-ups).
    pub fn two<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{v:.2}"))
    }

    pub fn opt_two<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(&format_args!("{v:.2}")),
            None => s.serialize_str(""),
        }
    }
}

/// A row type whose metric columns are tied to [`Metric`]: each field marked `=> Variant` is
/// that metric's column (a test checks that its name is the metric's), and the row gets
/// `METRICS` (its metrics in column order), `value(metric)` and `set(metric, value)` from
/// those marks, so that no code restates which field holds which metric.
macro_rules! metric_row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty $(=> $metric:ident)?,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// The metrics it has a column for, in column order.
            pub const METRICS: &'static [Metric] = &[$($(Metric::$metric,)?)*];

            /// Its value of `metric`, where it has a column for it.
            pub fn value(&self, metric: Metric) -> Option<f64> {
                match metric {
                    $($(Metric::$metric => MetricCell::get(&self.$field),)?)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// Sets its column of `metric` (no column: nothing).
            pub fn set(&mut self, metric: Metric, value: Option<f64>) {
                match metric {
                    $($(Metric::$metric => MetricCell::put(&mut self.$field, value),)?)*
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }
        }
    };
}

/// A metric's cell: always present (`f64`; set to NaN if given none) or optional.
trait MetricCell {
    fn get(&self) -> Option<f64>;
    fn put(&mut self, value: Option<f64>);
}

impl MetricCell for f64 {
    fn get(&self) -> Option<f64> {
        Some(*self)
    }
    fn put(&mut self, value: Option<f64>) {
        *self = value.unwrap_or(f64::NAN);
    }
}

impl MetricCell for Option<f64> {
    fn get(&self) -> Option<f64> {
        *self
    }
    fn put(&mut self, value: Option<f64>) {
        *self = value;
    }
}

metric_row! {
    /// One row of `runs.csv` (columns added later read as empty from older files). Accuracies are
    /// in %; `ua` is 100 - forget accuracy; `mia` the % of
    /// forget samples the membership-inference attack calls non-members and `mia_attack_acc`
    /// that attack's held-out accuracy; `ce` and `mi` the final epoch's mean training values;
    /// gaps are the run's value minus retrain's on the same seed, in points, `avg_gap` the mean
    /// of the four absolute gaps; `rte` the training's wall seconds and `rte_speedup` retrain's
    /// over it; `checkpoint` the model's cache key.
    pub struct RunRow {
        pub method: String,
        #[serde(serialize_with = "cell::opt")]
        pub gamma: Option<f64>,
        pub epochs: usize,
        pub params: String,
        pub seed: u64,
        /// Which of the seed's replicate runs (`[audit] replicates`); files written before
        /// replicates existed have no such column and read as 0.
        #[serde(default)]
        pub replicate: usize,
        /// The U-LiRA shadow it belongs to (`shadows.csv` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub shadow: Option<usize>,
        pub device: String,
        #[serde(serialize_with = "cell::num")]
        pub remain_acc: f64 => RemainAcc,
        #[serde(serialize_with = "cell::num")]
        pub forget_acc: f64 => ForgetAcc,
        #[serde(serialize_with = "cell::num")]
        pub test_acc: f64 => TestAcc,
        #[serde(serialize_with = "cell::num")]
        pub ua: f64 => Ua,
        #[serde(serialize_with = "cell::opt")]
        pub mia: Option<f64> => Mia,
        #[serde(serialize_with = "cell::opt")]
        pub mia_attack_acc: Option<f64> => MiaAttackAcc,
        #[serde(serialize_with = "cell::opt")]
        pub ce: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub mi: Option<f64> => Mi,
        #[serde(serialize_with = "cell::opt")]
        pub remain_gap: Option<f64> => RemainGap,
        #[serde(serialize_with = "cell::opt")]
        pub forget_gap: Option<f64> => ForgetGap,
        #[serde(serialize_with = "cell::opt")]
        pub test_gap: Option<f64> => TestGap,
        #[serde(serialize_with = "cell::opt")]
        pub mia_gap: Option<f64> => MiaGap,
        #[serde(serialize_with = "cell::opt")]
        pub avg_gap: Option<f64> => AvgGap,
        /// Tug-of-War: the product over remain, forget and test of `1 - |acc - retrain's| / 100`.
        #[serde(default, serialize_with = "cell::opt")]
        pub tow: Option<f64> => Tow,
        /// The two-sample Kolmogorov-Smirnov statistic and p-value between the forget examples'
        /// confidences under this model and retrain's (audits only).
        #[serde(default, serialize_with = "cell::opt")]
        pub ks: Option<f64> => Ks,
        #[serde(default, serialize_with = "cell::opt")]
        pub ks_p: Option<f64> => Ksp,
        #[serde(serialize_with = "cell::two")]
        pub rte: f64 => Rte,
        #[serde(serialize_with = "cell::opt_two")]
        pub rte_speedup: Option<f64> => RteSpeedup,
        pub checkpoint: String,
    }
}

/// One row of `history.csv`: a run's accuracies after `epoch` and that epoch's mean training
/// loss, CE and MI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub method: String,
    #[serde(serialize_with = "cell::opt")]
    pub gamma: Option<f64>,
    pub epochs: usize,
    pub seed: u64,
    #[serde(default)]
    pub replicate: usize,
    pub epoch: usize,
    #[serde(serialize_with = "cell::num")]
    pub remain_acc: f64,
    #[serde(serialize_with = "cell::num")]
    pub forget_acc: f64,
    #[serde(serialize_with = "cell::num")]
    pub test_acc: f64,
    #[serde(serialize_with = "cell::num")]
    pub loss: f64,
    #[serde(serialize_with = "cell::num")]
    pub ce: f64,
    #[serde(serialize_with = "cell::opt")]
    pub mi: Option<f64>,
    pub checkpoint: String,
}

/// Mean and sample standard deviation (n - 1; `None` for a single value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
}

impl Stat {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let std = (values.len() > 1)
            .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
        Self { mean, std }
    }
}

fn one() -> usize {
    1
}

/// Declares [`Metric`] and [`SummaryRow`] from one list, so that the summary's columns are
/// the metrics, in order, by construction.
macro_rules! metrics {
    ($($(#[doc = $doc:literal])* $variant:ident $name:literal $mean:ident $std:ident;)*) => {
        /// A metric summarised over seeds, in `summary.csv`'s column order (`<name>_mean`,
        /// `<name>_std`). Gaps are `method - retrain` on the same seed, in percentage points.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Metric {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Metric {
            pub const ALL: &'static [Metric] = &[$(Metric::$variant,)*];

            /// Its name in configs and CSV files.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => $name,)*
                }
            }
        }

        /// One row of `summary.csv`: a method and parameter set over its seeds.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct SummaryRow {
            pub method: String,
            #[serde(serialize_with = "cell::opt")]
            pub gamma: Option<f64>,
            pub epochs: usize,
            /// The parameter set's label (`gamma=4 epochs=5`): what tells parameter sets of
            /// one method apart.
            pub params: String,
            pub n_seeds: usize,
            /// Runs per seed (`[audit] replicates`; absent, in files written before
            /// replicates existed, reads as 1).
            #[serde(default = "one")]
            pub n_replicates: usize,
            $(
                #[serde(default, serialize_with = "cell::opt")]
                pub $mean: Option<f64>,
                #[serde(default, serialize_with = "cell::opt")]
                pub $std: Option<f64>,
            )*
            /// The runs' cache keys, in seed and replicate order, separated by spaces.
            pub checkpoints: String,
        }

        impl SummaryRow {
            /// `metric`'s mean and std, where the method has it.
            pub fn metric(&self, metric: Metric) -> Option<Stat> {
                match metric {
                    $(Metric::$variant => self.$mean.map(|mean| Stat { mean, std: self.$std }),)*
                }
            }

            pub fn set(&mut self, metric: Metric, stat: Option<Stat>) {
                match metric {
                    $(Metric::$variant => {
                        self.$mean = stat.map(|s| s.mean);
                        self.$std = stat.and_then(|s| s.std);
                    })*
                }
            }
        }
    };
}

metrics! {
    RemainAcc "remain_acc" remain_acc_mean remain_acc_std;
    ForgetAcc "forget_acc" forget_acc_mean forget_acc_std;
    TestAcc "test_acc" test_acc_mean test_acc_std;
    /// 100 - forget accuracy: the literature's unlearning accuracy.
    Ua "ua" ua_mean ua_std;
    /// The % of forget samples the membership-inference attack calls non-members.
    Mia "mia" mia_mean mia_std;
    /// The attack's accuracy on held-out members and non-members.
    MiaAttackAcc "mia_attack_acc" mia_attack_acc_mean mia_attack_acc_std;
    /// The final epoch's mean MI estimate (MI-unlearn).
    Mi "mi" mi_mean mi_std;
    RemainGap "remain_gap" remain_gap_mean remain_gap_std;
    ForgetGap "forget_gap" forget_gap_mean forget_gap_std;
    TestGap "test_gap" test_gap_mean test_gap_std;
    MiaGap "mia_gap" mia_gap_mean mia_gap_std;
    RemainAbsGap "remain_abs_gap" remain_abs_gap_mean remain_abs_gap_std;
    ForgetAbsGap "forget_abs_gap" forget_abs_gap_mean forget_abs_gap_std;
    TestAbsGap "test_abs_gap" test_abs_gap_mean test_abs_gap_std;
    MiaAbsGap "mia_abs_gap" mia_abs_gap_mean mia_abs_gap_std;
    /// The mean of the four absolute gaps (remain, forget, test, MIA).
    AvgGap "avg_gap" avg_gap_mean avg_gap_std;
    /// The mean absolute remain and forget gap: no test sample enters it, so a
    /// hyper-parameter search may select on it.
    TrainGap "train_gap" train_gap_mean train_gap_std;
    /// Tug-of-War (Zhao et al. 2024): the product over remain, forget and test of
    /// `1 - |acc - retrain's| / 100`; 1 is retrain's accuracies exactly.
    Tow "tow" tow_mean tow_std;
    /// The two-sample Kolmogorov-Smirnov statistic between the forget examples' confidences
    /// under the run's model and retrain's (audits).
    Ks "ks" ks_mean ks_std;
    Ksp "ks_p" ks_p_mean ks_p_std;
    /// The NeurIPS 2023 competition's forgetting quality F of the seed's replicates against
    /// retrain's (audits; `forget_score`).
    ForgetQuality "forget_quality" forget_quality_mean forget_quality_std;
    /// F of two disjoint halves of retrain's replicates against each other: the score of
    /// perfect unlearning at half the population (its noise floor).
    ForgetQualityFloor "forget_quality_floor" forget_quality_floor_mean forget_quality_floor_std;
    /// F times the ratios of the replicates' mean remain and test accuracies to retrain's.
    FinalScore "final_score" final_score_mean final_score_std;
    /// The median and 90th percentile of the forget examples' epsilons.
    EpsMedian "eps_median" eps_median_mean eps_median_std;
    EpsP90 "eps_p90" eps_p90_mean eps_p90_std;
    /// U-LiRA (Hayes et al. 2024) over the shadows: the attack's accuracy (0.5 is perfect
    /// unlearning), AUC, and TPR at 1% and 5% FPR (audits with shadows).
    UliraAcc "ulira_acc" ulira_acc_mean ulira_acc_std;
    UliraAuc "ulira_auc" ulira_auc_mean ulira_auc_std;
    UliraTpr1 "ulira_tpr1" ulira_tpr1_mean ulira_tpr1_std;
    UliraTpr5 "ulira_tpr5" ulira_tpr5_mean ulira_tpr5_std;
    /// The training's wall seconds.
    Rte "rte" rte_mean rte_std;
    /// Retrain's training seconds over the run's.
    RteSpeedup "rte_speedup" rte_speedup_mean rte_speedup_std;
}

impl Default for Metric {
    /// The first metric (only so that a table of rows with a metric column has a header when
    /// it has no row).
    fn default() -> Self {
        Metric::ALL[0]
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

metric_row! {
    /// One row of `audit.csv`: a method and parameter set on one seed, scored on its population
    /// of replicates (forgetting quality) and of shadows (U-LiRA). Empty where the audit has no
    /// such population (or for retrain, the reference: its F columns hold only the floor).
    pub struct AuditRow {
        pub method: String,
        #[serde(serialize_with = "cell::opt")]
        pub gamma: Option<f64>,
        pub epochs: usize,
        pub params: String,
        pub seed: u64,
        /// Models per population (replicates; the identity's one model counts as that many).
        pub models: usize,
        /// Forget examples scored.
        pub examples: usize,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality: Option<f64> => ForgetQuality,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_floor: Option<f64> => ForgetQualityFloor,
        #[serde(serialize_with = "cell::opt")]
        pub final_score: Option<f64> => FinalScore,
        #[serde(serialize_with = "cell::opt")]
        pub eps_median: Option<f64> => EpsMedian,
        #[serde(serialize_with = "cell::opt")]
        pub eps_p90: Option<f64> => EpsP90,
        /// Shadows in U-LiRA's population.
        pub shadows: usize,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_acc: Option<f64> => UliraAcc,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_auc: Option<f64> => UliraAuc,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr1: Option<f64> => UliraTpr1,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr5: Option<f64> => UliraTpr5,
        /// Attack decisions made (targets' forget and never-seen examples), and examples
        /// skipped for having fewer than `min_members` IN or OUT shadows.
        pub ulira_scored: usize,
        pub ulira_skipped: usize,
    }
}

/// What a method is to the others (`methods.csv`'s `role`): figures and tables know methods by
/// it, never by their names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The model unlearning starts from.
    Original,
    /// The gold standard gaps are measured against (retrain).
    Reference,
    /// The plain alternative unlearners are drawn against (fine-tuning on the remain set).
    Control,
    #[default]
    Unlearner,
}

/// One row of `methods.csv`: a method and parameter set of the folder's runs, its role, and
/// its swept parameter if it has one (the name, what it is, this set's value, and how
/// figures title the method). Figures read roles and swept parameters from here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodRow {
    pub method: String,
    pub params: String,
    pub role: Role,
    /// The swept parameter's name (e.g. `gamma`); empty if none.
    pub swept: String,
    #[serde(serialize_with = "cell::opt")]
    pub value: Option<f64>,
    /// What the swept parameter is, for an axis label.
    pub about: String,
    /// The method as a figure titles it.
    pub title: String,
}

/// One row of `audit_epsilons.csv`: how many forget examples of a method and parameter set on
/// one seed have an epsilon in `[bucket, bucket + 0.5)` (the score's buckets; 50 is the cap).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpsilonRow {
    pub method: String,
    pub params: String,
    pub seed: u64,
    #[serde(serialize_with = "cell::num")]
    pub bucket: f64,
    pub examples: usize,
}

metric_row! {
    /// One row of `leaderboard.csv`: a method and parameter set, its summary metrics averaged
    /// over the cells it ran in.
    pub struct LeaderboardRow {
        /// 1 for the best; empty for retrain (the reference) and for runs without the metric.
        pub rank: Option<usize>,
        /// The metric ranked by (`avg_gap` or `train_gap`).
        pub ranked_by: Option<Metric>,
        pub method: String,
        pub parameters: String,
        pub cells: usize,
        #[serde(serialize_with = "cell::opt")]
        pub avg_gap: Option<f64> => AvgGap,
        #[serde(serialize_with = "cell::opt")]
        pub train_gap: Option<f64> => TrainGap,
        #[serde(serialize_with = "cell::opt")]
        pub forget_acc: Option<f64> => ForgetAcc,
        #[serde(serialize_with = "cell::opt")]
        pub remain_acc: Option<f64> => RemainAcc,
        #[serde(serialize_with = "cell::opt")]
        pub test_acc: Option<f64> => TestAcc,
        #[serde(serialize_with = "cell::opt")]
        pub ua: Option<f64> => Ua,
        #[serde(serialize_with = "cell::opt")]
        pub mia: Option<f64> => Mia,
        #[serde(serialize_with = "cell::opt")]
        pub rte: Option<f64> => Rte,
        #[serde(serialize_with = "cell::opt")]
        pub rte_speedup: Option<f64> => RteSpeedup,
        /// The audit's metrics, where the cells had an `[audit]` (see [`Metric`]).
        #[serde(default, serialize_with = "cell::opt")]
        pub tow: Option<f64> => Tow,
        #[serde(default, serialize_with = "cell::opt")]
        pub forget_quality: Option<f64> => ForgetQuality,
        #[serde(default, serialize_with = "cell::opt")]
        pub forget_quality_floor: Option<f64> => ForgetQualityFloor,
        #[serde(default, serialize_with = "cell::opt")]
        pub final_score: Option<f64> => FinalScore,
        #[serde(default, serialize_with = "cell::opt")]
        pub eps_median: Option<f64> => EpsMedian,
        #[serde(default, serialize_with = "cell::opt")]
        pub eps_p90: Option<f64> => EpsP90,
        #[serde(default, serialize_with = "cell::opt")]
        pub ulira_acc: Option<f64> => UliraAcc,
        #[serde(default, serialize_with = "cell::opt")]
        pub ulira_auc: Option<f64> => UliraAuc,
    }
}

/// What an experiment must run for a metric to have a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Every run has it.
    Nothing,
    /// A reference run (retrain) on the same seed and replicate: gaps and what is made of them.
    Reference,
    /// An `[audit]` section (the runs' confidences).
    Audit,
    /// An `[audit]` with at least this many replicates per method (populations to score).
    Replicates(usize),
    /// An `[audit]` with shadows (U-LiRA).
    Shadows,
    /// A method that reports an MI estimate.
    MiEstimate,
}

impl Metric {
    /// Whether it is a property of a population of runs (an audit's, per seed: `audit.csv`)
    /// rather than of each run: whether `audit.csv` has a column for it.
    pub fn of_population(self) -> bool {
        AuditRow::METRICS.contains(&self)
    }

    /// What an experiment needs for this metric to have a value.
    pub fn needs(self) -> Needs {
        use Metric::*;
        match self {
            RemainAcc | ForgetAcc | TestAcc | Ua | Mia | MiaAttackAcc | Rte => Needs::Nothing,
            RemainGap | ForgetGap | TestGap | MiaGap | RemainAbsGap | ForgetAbsGap | TestAbsGap
            | MiaAbsGap | AvgGap | TrainGap | Tow | RteSpeedup => Needs::Reference,
            Ks | Ksp => Needs::Audit,
            ForgetQuality | FinalScore | EpsMedian | EpsP90 => Needs::Replicates(2),
            // Two disjoint halves of retrain's replicates, each of at least two.
            ForgetQualityFloor => Needs::Replicates(4),
            UliraAcc | UliraAuc | UliraTpr1 | UliraTpr5 => Needs::Shadows,
            Mi => Needs::MiEstimate,
        }
    }
}

/// One row of a `harness check` baseline: a metric's mean and std over seeds for one method
/// and parameter set (keyed by metric, method and `params`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineRow {
    pub metric: Metric,
    pub method: String,
    #[serde(serialize_with = "cell::opt")]
    pub gamma: Option<f64>,
    pub epochs: usize,
    /// The parameter set, as `summary.csv`'s `params` column writes it.
    pub params: String,
    pub n_seeds: usize,
    #[serde(serialize_with = "cell::num")]
    pub mean: f64,
    #[serde(serialize_with = "cell::opt")]
    pub std: Option<f64>,
}

/// `rows` as CSV bytes, with the header even when there is no row.
pub fn to_csv<T: Serialize + Default>(rows: &[T]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // The header is the field names, written before the first row: take it from a
        // default row's output.
        w.serialize(T::default())?;
        let bytes = w.into_inner()?;
        let header = bytes.split_inclusive(|&b| b == b'\n').next().unwrap_or_default();
        return Ok(header.to_vec());
    }
    for row in rows {
        w.serialize(row)?;
    }
    Ok(w.into_inner()?)
}

/// The header `T` writes, as field names.
pub fn header<T: Serialize + Default>() -> Vec<String> {
    let bytes = to_csv::<T>(&[]).expect("a header serialises");
    let line = String::from_utf8(bytes).expect("ASCII field names");
    line.trim_end().split(',').map(str::to_owned).collect()
}

/// Every row of the CSV file at `path`, checked against `T`'s columns; errors name the file
/// and the row.
pub fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{}: malformed row {}", path.display(), i + 2)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column a row type marks as a metric's is named like that metric, and holds what
    /// `set` puts there.
    #[test]
    fn metric_columns_are_named_for_their_metrics() {
        fn check<T: Serialize + Default>(
            metrics: &[Metric],
            set: fn(&mut T, Metric, Option<f64>),
            value: fn(&T, Metric) -> Option<f64>,
        ) {
            let header = header::<T>();
            for (i, &m) in metrics.iter().enumerate() {
                assert!(header.contains(&m.name().to_owned()), "{m} is not a column: {header:?}");
                let mut row = T::default();
                set(&mut row, m, Some(i as f64 + 0.5));
                assert_eq!(value(&row, m), Some(i as f64 + 0.5), "{m}");
            }
        }
        check(RunRow::METRICS, RunRow::set, RunRow::value);
        check(AuditRow::METRICS, AuditRow::set, AuditRow::value);
        check(LeaderboardRow::METRICS, LeaderboardRow::set, LeaderboardRow::value);
        assert_eq!(RunRow::METRICS.len(), 17);
        assert!(Metric::ForgetQuality.of_population() && !Metric::ForgetAcc.of_population());
        assert_eq!(RunRow::default().value(Metric::TrainGap), None, "no column: no value");
    }
}
