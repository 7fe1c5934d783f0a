//! `audit.csv` ([`AuditRow`]) and `audit_epsilons.csv` ([`EpsilonRow`]).

use serde::{Deserialize, Serialize};

use super::cell;
use super::metric::{Metric, MetricCell, metric_row};

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
