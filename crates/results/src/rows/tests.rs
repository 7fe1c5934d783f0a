//! The row types' metric columns.

use super::*;
use serde::Serialize;

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
