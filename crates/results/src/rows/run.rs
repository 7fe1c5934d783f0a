//! `runs.csv` and `shadows.csv` ([`RunRow`]), `history.csv` ([`HistoryRow`]) and
//! `methods.csv` ([`MethodRow`], a method's [`Role`]).

use serde::{Deserialize, Serialize};

use super::cell;
use super::metric::{Metric, MetricCell, metric_row};

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
    /// Empty for an epoch whose model the harness never saw (an external method's losses).
    #[serde(serialize_with = "cell::opt")]
    pub remain_acc: Option<f64>,
    #[serde(serialize_with = "cell::opt")]
    pub forget_acc: Option<f64>,
    #[serde(serialize_with = "cell::opt")]
    pub test_acc: Option<f64>,
    #[serde(serialize_with = "cell::num")]
    pub loss: f64,
    #[serde(serialize_with = "cell::num")]
    pub ce: f64,
    #[serde(serialize_with = "cell::opt")]
    pub mi: Option<f64>,
    pub checkpoint: String,
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
