//! The leaderboard of a suite (an experiment file with several datasets or scenarios): every
//! method and parameter set, its summary metrics averaged over the cells it ran in, ranked by
//! `avg_gap` (the mean absolute gap to retrain over remain, forget and test accuracy and MIA;
//! lower is closer to the gold standard), or by `train_gap` (remain and forget only) where the
//! file says `rank_by = "train_gap"` (a hyper-parameter search, which must not look at the
//! test set). The reference (retrain, by its role in `methods.csv`) is listed first, unranked. Written as
//! `leaderboard.csv` ([`LeaderboardRow`]); the figure is drawn from that file alone
//! ([`crate::plot::plot_leaderboard`]).

use std::path::{Path, PathBuf};

use crate::fsutil::write_atomic;
use crate::rows::{LeaderboardRow, MethodRow, Metric, Role, SummaryRow, to_csv};

/// Averages each method's summary rows over the cells (`(cell name, summary)`) and ranks them
/// by `rank_by` (a metric it has a column for, smaller first); the reference (`methods`'
/// role) first, unranked.
pub fn build(
    cells: &[(String, Vec<SummaryRow>)],
    rank_by: Metric,
    methods: &[MethodRow],
) -> Vec<LeaderboardRow> {
    let reference =
        |method: &str| methods.iter().any(|m| m.method == method && m.role == Role::Reference);
    let mut entries: Vec<(String, String, Vec<&SummaryRow>)> = Vec::new();
    for (_, rows) in cells {
        for row in rows {
            let params = row.params.clone();
            match entries.iter_mut().find(|(m, p, _)| *m == row.method && *p == params) {
                Some((_, _, found)) => found.push(row),
                None => entries.push((row.method.clone(), params, vec![row])),
            }
        }
    }
    let mut board: Vec<LeaderboardRow> = entries
        .into_iter()
        .map(|(method, parameters, rows)| {
            let mean = |c: Metric| {
                let present: Vec<f64> =
                    rows.iter().filter_map(|r| r.metric(c).map(|s| s.mean)).collect();
                (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
            };
            let mut row = LeaderboardRow {
                rank: None,
                ranked_by: Some(rank_by),
                method,
                parameters,
                cells: rows.len(),
                ..LeaderboardRow::default()
            };
            for &m in LeaderboardRow::METRICS {
                row.set(m, mean(m));
            }
            row
        })
        .collect();
    // The reference first, then by the ranking metric (runs without one, e.g. no reference
    // ran, last), ties in the order the methods were listed.
    board.sort_by(|a, b| {
        let key =
            |e: &LeaderboardRow| (!reference(&e.method), e.value(rank_by).unwrap_or(f64::INFINITY));
        key(a).partial_cmp(&key(b)).expect("no NaN in gaps")
    });
    let mut rank = 0;
    for e in &mut board {
        if !reference(&e.method) && e.value(rank_by).is_some() {
            rank += 1;
            e.rank = Some(rank);
        }
    }
    board
}

/// Writes `leaderboard.csv`, the cells' `methods.csv` (their methods' roles, for the figure)
/// and its figure into `out`; returns the files written.
pub fn write(
    out: &Path,
    board: &[LeaderboardRow],
    methods: &[MethodRow],
) -> anyhow::Result<Vec<PathBuf>> {
    let path = out.join("leaderboard.csv");
    write_atomic(&path, &to_csv(board)?)?;
    let roles = out.join("methods.csv");
    write_atomic(&roles, &to_csv(methods)?)?;
    let mut files = vec![path, roles];
    files.extend(crate::plot::plot_leaderboard(out)?);
    Ok(files)
}

/// The leaderboard as a plain-text table.
pub fn table(board: &[LeaderboardRow]) -> String {
    let mut lines =
        vec![("rank".to_owned(), TABLE.iter().map(|c| c.heading.to_owned()).collect::<Vec<_>>())];
    for e in board {
        let rank = e.rank.map_or_else(|| "ref".to_owned(), |r| r.to_string());
        lines.push((rank, TABLE.iter().map(|c| (c.value)(e)).collect()));
    }
    // Each column as wide as its widest cell, so long parameter sets cannot shift the rest.
    let widths: Vec<usize> = (0..TABLE.len())
        .map(|i| lines.iter().map(|(_, cells)| cells[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (rank, cells) in lines {
        let mut line = format!("{rank:>4} ");
        for ((c, v), &w) in TABLE.iter().zip(cells).zip(&widths) {
            line += &if c.text { format!(" {v:<w$}") } else { format!(" {v:>w$}") };
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// One column of [`table`]: the header and every row are laid out from [`TABLE`], so they
/// cannot disagree on the number or order of the columns.
struct TableColumn {
    heading: &'static str,
    /// Text, left-aligned (otherwise a number, right-aligned).
    text: bool,
    value: fn(&LeaderboardRow) -> String,
}

fn two_decimals(e: &LeaderboardRow, column: Metric) -> String {
    e.value(column).map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

const TABLE: [TableColumn; 11] = [
    TableColumn { heading: "method", text: true, value: |e| e.method.clone() },
    TableColumn { heading: "parameters", text: true, value: |e| e.parameters.clone() },
    TableColumn { heading: "cells", text: false, value: |e| e.cells.to_string() },
    TableColumn { heading: "avg gap", text: false, value: |e| two_decimals(e, Metric::AvgGap) },
    TableColumn { heading: "train gap", text: false, value: |e| two_decimals(e, Metric::TrainGap) },
    TableColumn { heading: "forget %", text: false, value: |e| two_decimals(e, Metric::ForgetAcc) },
    TableColumn { heading: "remain %", text: false, value: |e| two_decimals(e, Metric::RemainAcc) },
    TableColumn { heading: "test %", text: false, value: |e| two_decimals(e, Metric::TestAcc) },
    TableColumn { heading: "MIA %", text: false, value: |e| two_decimals(e, Metric::Mia) },
    TableColumn { heading: "rte (s)", text: false, value: |e| two_decimals(e, Metric::Rte) },
    TableColumn { heading: "speedup", text: false, value: |e| two_decimals(e, Metric::RteSpeedup) },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Stat;

    /// The reference's role, as its `methods.csv` row says it.
    fn roles() -> Vec<MethodRow> {
        vec![MethodRow { method: "retrain".into(), role: Role::Reference, ..Default::default() }]
    }

    fn row(method: &str, avg_gap: Option<f64>, forget: f64) -> SummaryRow {
        let mut row = SummaryRow {
            method: method.into(),
            epochs: 5,
            params: "epochs=5".into(),
            n_seeds: 3,
            ..SummaryRow::default()
        };
        row.set(Metric::ForgetAcc, Some(Stat { mean: forget, std: None }));
        row.set(Metric::AvgGap, avg_gap.map(|mean| Stat { mean, std: None }));
        row
    }

    #[test]
    fn averages_over_cells_and_ranks_by_avg_gap_with_retrain_first() {
        let cells = vec![
            (
                "a".to_owned(),
                vec![
                    row("scrub", Some(4.0), 80.0),
                    row("retrain", None, 90.0),
                    row("salun", Some(1.0), 70.0),
                ],
            ),
            (
                "b".to_owned(),
                vec![
                    row("scrub", Some(2.0), 60.0),
                    row("retrain", None, 94.0),
                    row("salun", Some(5.0), 50.0),
                ],
            ),
        ];
        let board = build(&cells, Metric::AvgGap, &roles());
        let order: Vec<_> = board.iter().map(|e| (e.rank, e.method.as_str())).collect();
        assert_eq!(order, [(None, "retrain"), (Some(1), "scrub"), (Some(2), "salun")]);
        assert_eq!(board[1].value(Metric::AvgGap), Some(3.0));
        assert_eq!(board[1].value(Metric::ForgetAcc), Some(70.0));
        assert_eq!(board[0].value(Metric::ForgetAcc), Some(92.0));
        assert_eq!(board[0].value(Metric::AvgGap), None);
        assert_eq!(board[2].cells, 2);
        let text = String::from_utf8(to_csv(&board).unwrap()).unwrap();
        assert!(
            text.starts_with("rank,ranked_by,method,parameters,cells,avg_gap,train_gap"),
            "{text}"
        );
        assert!(text.contains("\n1,avg_gap,scrub,epochs=5,2,3,,70,"), "{text}");
        // Ranked by another column: by forget accuracy, salun (60) comes before scrub (70).
        let by_forget = build(&cells, Metric::ForgetAcc, &roles());
        assert_eq!(by_forget[1].method, "salun");
    }

    #[test]
    fn the_printed_table_has_a_heading_over_every_column() {
        let mut wide = row("neggrad_plus", Some(12.345), 99.5);
        wide.params = "alpha=0.01 epochs=5 lr=0.0001".into();
        let cells = vec![("a".to_owned(), vec![wide, row("retrain", None, 90.0)])];
        let text = table(&build(&cells, Metric::AvgGap, &roles()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Every heading ends where its column's values end (numbers are right-aligned).
        let header = lines[0];
        let ends = |line: &str| -> Vec<usize> {
            let mut ends = Vec::new();
            let chars: Vec<char> = line.chars().collect();
            for i in 0..chars.len() {
                if chars[i] != ' ' && (i + 1 == chars.len() || chars[i + 1] == ' ') {
                    ends.push(i + 1);
                }
            }
            ends
        };
        let numbers = [
            "cells",
            "avg gap",
            "train gap",
            "forget %",
            "remain %",
            "test %",
            "MIA %",
            "rte (s)",
            "speedup",
        ];
        let heading_ends: Vec<usize> =
            numbers.iter().map(|h| header.find(h).expect(h) + h.len()).collect();
        // rank, method, the parameters' three words, then one value per numeric heading.
        let row_ends = ends(lines[2]);
        assert_eq!(row_ends.len(), 5 + numbers.len(), "{text}");
        assert_eq!(row_ends[5..], heading_ends[..], "{text}");
        assert!(lines[2].starts_with("   1  neggrad_plus alpha=0.01"), "{text}");
        assert!(lines[2].contains(" 12.35 "), "{text}");
        assert!(lines[1].starts_with(" ref  retrain      epochs=5"), "{text}");
    }
}
