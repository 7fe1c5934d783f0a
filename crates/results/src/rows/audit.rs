//! `audit.csv` ([`AuditRow`]), `audit_pairs.csv` ([`PairRow`]), `audit_curve.csv`
//! ([`CurveRow`]) and `audit_epsilons.csv` ([`EpsilonRow`]).

use serde::{Deserialize, Serialize};

use super::cell;
use super::metric::{Metric, MetricCell, metric_row};

metric_row! {
    /// One row of `audit.csv`: a method and parameter set on one seed, scored on its population
    /// of replicates (forgetting quality) and of shadows (U-LiRA). Empty where the audit has no
    /// such population. Retrain's F columns score its second population against the first:
    /// F_ref, the best F reachable at this N. Every `_lo`/`_hi` pair is a 95% interval.
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
        /// F's interval with both kinds of noise, the examples' and the models'.
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_hi: Option<f64>,
        /// The examples' part: a bootstrap over forget examples (each with its points).
        #[serde(serialize_with = "cell::opt")]
        pub f_examples_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub f_examples_hi: Option<f64>,
        /// The models' part: F's standard deviation over random splits of both populations
        /// into halves (at N / 2).
        #[serde(serialize_with = "cell::opt")]
        pub f_halves_sd: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_ref: Option<f64> => ForgetQualityRef,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_ratio: Option<f64> => ForgetQualityRatio,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_ratio_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub forget_quality_ratio_hi: Option<f64>,
        /// The best F of the unlearners, or not told apart from it (the interval of the
        /// paired difference covers 0).
        pub f_tied_best: Option<bool>,
        #[serde(serialize_with = "cell::opt")]
        pub final_score: Option<f64> => FinalScore,
        #[serde(serialize_with = "cell::opt")]
        pub eps_median: Option<f64> => EpsMedian,
        #[serde(serialize_with = "cell::opt")]
        pub eps_p90: Option<f64> => EpsP90,
        /// Shadows in U-LiRA's population.
        pub shadows: usize,
        /// Targets with decisions of both kinds: the U-LiRA means and intervals are over them.
        pub ulira_targets: usize,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_acc: Option<f64> => UliraAcc,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_acc_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_acc_hi: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_auc: Option<f64> => UliraAuc,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_auc_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_auc_hi: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr1: Option<f64> => UliraTpr1,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr1_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr1_hi: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr5: Option<f64> => UliraTpr5,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr5_lo: Option<f64>,
        #[serde(serialize_with = "cell::opt")]
        pub ulira_tpr5_hi: Option<f64>,
        /// The attack accuracy nearest 0.5 of the unlearners, or not told apart from it.
        pub ulira_tied_best: Option<bool>,
        /// Attack decisions made (targets' forget and never-seen examples), and examples
        /// skipped for having fewer than `min_members` IN or OUT shadows.
        pub ulira_scored: usize,
        pub ulira_skipped: usize,
    }
}

impl AuditRow {
    /// The 95% interval of `metric`'s value, where the row has one.
    pub fn interval(&self, metric: Metric) -> Option<(f64, f64)> {
        let pair = |lo: Option<f64>, hi: Option<f64>| lo.zip(hi);
        match metric {
            Metric::ForgetQuality => pair(self.forget_quality_lo, self.forget_quality_hi),
            Metric::ForgetQualityRatio => {
                pair(self.forget_quality_ratio_lo, self.forget_quality_ratio_hi)
            }
            Metric::UliraAcc => pair(self.ulira_acc_lo, self.ulira_acc_hi),
            Metric::UliraAuc => pair(self.ulira_auc_lo, self.ulira_auc_hi),
            Metric::UliraTpr1 => pair(self.ulira_tpr1_lo, self.ulira_tpr1_hi),
            Metric::UliraTpr5 => pair(self.ulira_tpr5_lo, self.ulira_tpr5_hi),
            _ => None,
        }
    }
}

/// One row of `audit_pairs.csv`: the paired difference of two methods' values of one metric
/// on one seed (`a` less `b`), with its 95% interval. F's pairs are over the same forget
/// examples and the same splits into halves (both scored against the same retrain
/// population; retrain's row is its second population); U-LiRA's over the same targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRow {
    pub metric: Metric,
    pub seed: u64,
    pub method_a: String,
    pub params_a: String,
    pub method_b: String,
    pub params_b: String,
    #[serde(serialize_with = "cell::num")]
    pub difference: f64,
    #[serde(serialize_with = "cell::num")]
    pub lo: f64,
    #[serde(serialize_with = "cell::num")]
    pub hi: f64,
    /// The interval covers 0: the two are not told apart.
    pub tied: bool,
}

impl Default for PairRow {
    /// An empty row (for the header of a file with none).
    fn default() -> Self {
        Self {
            metric: Metric::ForgetQuality,
            seed: 0,
            method_a: String::new(),
            params_a: String::new(),
            method_b: String::new(),
            params_b: String::new(),
            difference: 0.0,
            lo: 0.0,
            hi: 0.0,
            tied: false,
        }
    }
}

/// One row of `audit_curve.csv`: F of a method and parameter set (retrain's: F_ref) at a
/// population size, over random draws of that many models from each population.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    pub method: String,
    pub params: String,
    pub seed: u64,
    pub models: usize,
    pub draws: usize,
    #[serde(serialize_with = "cell::num")]
    pub forget_quality: f64,
    /// Over the draws (empty for one).
    #[serde(serialize_with = "cell::opt")]
    pub sd: Option<f64>,
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

impl Metric {
    /// Whether it is a property of a population of runs (an audit's, per seed: `audit.csv`)
    /// rather than of each run: whether `audit.csv` has a column for it.
    pub fn of_population(self) -> bool {
        AuditRow::METRICS.contains(&self)
    }
}
