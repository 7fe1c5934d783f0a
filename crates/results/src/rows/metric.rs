//! The metrics ([`Metric`], what each needs: [`Needs`]), `summary.csv`'s row made from them
//! ([`SummaryRow`], [`Stat`]), and `metric_row!`, which ties other rows' metric columns to them.

use serde::{Deserialize, Serialize};

use super::cell;

/// A row type whose metric columns are tied to [`Metric`] (its module imports `Metric` and
/// `MetricCell`): each field marked `=> Variant` is
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
        #[derive(Debug, Clone, Default, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
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
pub(crate) use metric_row;

/// A metric's cell: always present (`f64`; set to NaN if given none) or optional.
pub(crate) trait MetricCell {
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
    /// F_ref: F of a second, independent population of retrain's replicates against the
    /// first, the best F reachable at this N (a ceiling).
    ForgetQualityRef "forget_quality_ref" forget_quality_ref_mean forget_quality_ref_std;
    /// F / F_ref.
    ForgetQualityRatio "forget_quality_ratio" forget_quality_ratio_mean forget_quality_ratio_std;
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
    /// What an experiment needs for this metric to have a value.
    pub fn needs(self) -> Needs {
        use Metric::*;
        match self {
            RemainAcc | ForgetAcc | TestAcc | Ua | Mia | MiaAttackAcc | Rte => Needs::Nothing,
            RemainGap | ForgetGap | TestGap | MiaGap | RemainAbsGap | ForgetAbsGap | TestAbsGap
            | MiaAbsGap | AvgGap | TrainGap | Tow | RteSpeedup => Needs::Reference,
            Ks | Ksp => Needs::Audit,
            ForgetQuality | ForgetQualityRef | ForgetQualityRatio | FinalScore | EpsMedian
            | EpsP90 => Needs::Replicates(2),
            UliraAcc | UliraAuc | UliraTpr1 | UliraTpr5 => Needs::Shadows,
            Mi => Needs::MiEstimate,
        }
    }
}
