//! `leaderboard.csv` ([`LeaderboardRow`]) and `harness check`'s baselines ([`BaselineRow`]).

use serde::{Deserialize, Serialize};

use super::cell;
use super::metric::{Metric, MetricCell, metric_row};

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
        pub forget_quality_ref: Option<f64> => ForgetQualityRef,
        #[serde(default, serialize_with = "cell::opt")]
        pub forget_quality_ratio: Option<f64> => ForgetQualityRatio,
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
    /// The 95% interval of an audit's metric on one seed (F, F / F_ref, U-LiRA's), which
    /// stands for the standard error that one value has no `std` for; empty otherwise.
    #[serde(default, serialize_with = "cell::opt")]
    pub lo: Option<f64>,
    #[serde(default, serialize_with = "cell::opt")]
    pub hi: Option<f64>,
}
