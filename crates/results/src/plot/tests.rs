//! The figures drawn from CSV files written by the row types the harness writes.

use std::path::Path;

use super::chart::{HISTORY_SIZE, SWEEP_SIZE};
use super::sweep::Curve;
use super::*;
use crate::rows::{AuditRow, CurveRow, EpsilonRow, HistoryRow, MethodRow, Role, RunRow};

/// A parameter set's label, as the harness writes it.
fn params(gamma: Option<f64>, epochs: usize) -> String {
    gamma.map_or_else(String::new, |g| format!("gamma={g} ")) + &format!("epochs={epochs}")
}

/// MI-unlearn at gammas 0, 1, 2 for 3 epochs over 2 seeds, with retrain and finetune,
/// written by the same row types the harness writes.
fn fixture(dir: &Path) {
    let (mut runs, mut history) = (Vec::new(), Vec::new());
    for seed in 0..2u64 {
        let s = seed as f64;
        let run = |method: &str, gamma: Option<f64>, epochs: usize, forget_acc: f64| RunRow {
            method: method.into(),
            gamma,
            epochs,
            params: params(gamma, epochs),
            checkpoint: format!("{method}-{gamma:?}-{seed}"),
            seed,
            remain_acc: 99.8,
            forget_acc,
            test_acc: 97.5,
            ..RunRow::default()
        };
        runs.push(run("retrain", None, 100, 92.0 + s));
        runs.push(run("finetune", None, 100, 97.5 + s));
        for gamma in [0.0, 1.0, 2.0] {
            let forget = |e: f64| 99.0 - gamma * e * 2.0 - s;
            let mi = |e: f64| 0.048 - gamma * e * 0.001;
            runs.push(RunRow {
                mi: Some(mi(3.0)),
                ..run("mi_unlearn", Some(gamma), 3, forget(3.0))
            });
            for epoch in 1..=3 {
                let e = epoch as f64;
                history.push(HistoryRow {
                    method: "mi_unlearn".into(),
                    gamma: Some(gamma),
                    epochs: 3,
                    checkpoint: format!("mi_unlearn-{:?}-{seed}", Some(gamma)),
                    seed,
                    epoch,
                    remain_acc: Some(99.8),
                    forget_acc: Some(forget(e)),
                    test_acc: Some(97.5),
                    mi: Some(mi(e)),
                    ..HistoryRow::default()
                });
            }
        }
    }
    let method = |method: &str, role: Role, gamma: Option<f64>, epochs| MethodRow {
        method: method.into(),
        params: params(gamma, epochs),
        role,
        swept: gamma.map_or_else(String::new, |_| "gamma".into()),
        value: gamma,
        about: gamma.map_or_else(String::new, |_| "weight of the MI penalty".into()),
        title: gamma.map_or_else(String::new, |_| "MI-unlearn".into()),
    };
    let mut methods = vec![
        method("retrain", Role::Reference, None, 100),
        method("finetune", Role::Control, None, 100),
    ];
    methods.extend([0.0, 1.0, 2.0].map(|g| method("mi_unlearn", Role::Unlearner, Some(g), 3)));
    std::fs::write(dir.join("methods.csv"), crate::rows::to_csv(&methods).unwrap()).unwrap();
    std::fs::write(dir.join("runs.csv"), crate::rows::to_csv(&runs).unwrap()).unwrap();
    std::fs::write(dir.join("history.csv"), crate::rows::to_csv(&history).unwrap()).unwrap();
}

#[test]
fn draws_the_audit_from_its_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    let row = |method: &str, f: Option<(f64, f64, f64)>, ulira: (f64, f64, f64)| AuditRow {
        method: method.into(),
        epochs: 5,
        params: "epochs=5".into(),
        models: 64,
        examples: 100,
        forget_quality: f.map(|f| f.0),
        forget_quality_lo: f.map(|f| f.1),
        forget_quality_hi: f.map(|f| f.2),
        forget_quality_ref: Some(0.2),
        ulira_acc: Some(ulira.0),
        ulira_acc_lo: Some(ulira.1),
        ulira_acc_hi: Some(ulira.2),
        shadows: 64,
        ..AuditRow::default()
    };
    let rows = [
        AuditRow {
            f_tied_best: Some(false),
            ..row("original", Some((0.0, 0.0, 0.0)), (0.93, 0.92, 0.94))
        },
        row("retrain", Some((0.2, 0.17, 0.23)), (0.5, 0.49, 0.51)),
        AuditRow {
            f_tied_best: Some(true),
            ulira_tied_best: Some(true),
            ..row("finetune", Some((0.1, 0.08, 0.12)), (0.6, 0.58, 0.62))
        },
        AuditRow { ulira_tied_best: Some(true), ..row("salun", None, (0.7, 0.69, 0.71)) },
    ];
    std::fs::write(dir.path().join("audit.csv"), crate::rows::to_csv(&rows).unwrap()).unwrap();
    let eps = |method: &str, bucket: f64, examples: usize| EpsilonRow {
        method: method.into(),
        params: "epochs=5".into(),
        seed: 0,
        bucket,
        examples,
    };
    let epsilons = [
        eps("original", 50.0, 100),
        eps("finetune", 0.0, 20),
        eps("finetune", 2.5, 30),
        eps("finetune", 4.5, 50),
    ];
    std::fs::write(dir.path().join("audit_epsilons.csv"), crate::rows::to_csv(&epsilons).unwrap())
        .unwrap();
    let curve = |method: &str, models: usize, f: f64, sd: Option<f64>| CurveRow {
        method: method.into(),
        params: "epochs=5".into(),
        seed: 0,
        models,
        draws: if sd.is_some() { 4 } else { 1 },
        forget_quality: f,
        sd,
    };
    let method = |method: &str, role: Role| MethodRow {
        method: method.into(),
        params: "epochs=5".into(),
        role,
        ..MethodRow::default()
    };
    let methods = [
        method("original", Role::Original),
        method("retrain", Role::Reference),
        method("finetune", Role::Control),
    ];
    // Without audit_curve.csv: the audit's figure alone.
    let written = plot_audit(dir.path(), &methods).unwrap();
    assert_eq!(written.len(), 2);
    let svg = std::fs::read_to_string(dir.path().join("audit.svg")).unwrap();
    for text in [
        "finetune (epochs=5)",
        "U-LiRA attack accuracy",
        "50 (cap): 0",
        // Values with intervals, the reference's F_ref, ties, the identity's 0 and a
        // method without F told apart.
        "0.100 [0.080, 0.120]  best",
        "0.200 [0.170, 0.230]  (F_ref)",
        "0.000 [0.000, 0.000]",
        "not scored",
        "0.600 [0.580, 0.620]  best",
        "0.700 [0.690, 0.710]  tie",
        "tie: not told apart from the best",
    ] {
        assert!(svg.contains(text), "{text}");
    }
    // The U-LiRA axis runs on past 1 to make room for the bars' texts, but an accuracy has no
    // tick there.
    let texts: Vec<&str> =
        svg.split('>').filter_map(|t| Some(t.strip_suffix("</text")?.trim())).collect();
    assert!(texts.contains(&"1.000") && !texts.contains(&"1.200"), "{texts:?}");
    let rows = [
        curve("retrain", 16, 0.5, Some(0.05)),
        curve("retrain", 64, 0.3, None),
        curve("finetune", 16, 0.1, Some(0.02)),
        curve("finetune", 64, 0.05, None),
    ];
    std::fs::write(dir.path().join("audit_curve.csv"), crate::rows::to_csv(&rows).unwrap())
        .unwrap();
    let written = plot_audit(dir.path(), &methods).unwrap();
    assert_eq!(written.len(), 4);
    let svg = std::fs::read_to_string(dir.path().join("audit_curve.svg")).unwrap();
    for text in ["retrain (epochs=5): F_ref", "finetune (epochs=5)", "models per population N"] {
        assert!(svg.contains(text), "{text}");
    }
}

#[test]
fn titles_say_what_the_spread_is_over() {
    use super::chart::over_runs;
    assert_eq!(over_runs([(0, 0), (1, 0), (2, 0), (1, 0)].into_iter()), "3 seeds");
    assert_eq!(over_runs([(0, 0)].into_iter()), "1 seed");
    assert_eq!(over_runs((0..64).map(|r| (0, r))), "64 replicates");
    assert_eq!(over_runs((0..16usize).map(|r| ((r / 8) as u64, r % 8))), "2 seeds x 8 replicates");
}

#[test]
fn draws_well_formed_svg_and_png_with_text() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let written = plot_dir(dir.path()).unwrap();
    let names: Vec<String> =
        written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "gamma_sweep.svg",
            "gamma_sweep.png",
            "mi_acc_gamma0_epochs3.svg",
            "mi_acc_gamma0_epochs3.png",
            "mi_acc_gamma1_epochs3.svg",
            "mi_acc_gamma1_epochs3.png",
            "mi_acc_gamma2_epochs3.svg",
            "mi_acc_gamma2_epochs3.png",
        ]
    );
    for path in &written {
        if path.extension().unwrap() == "svg" {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
                "{}",
                path.display()
            );
            assert!(svg.contains("accuracy (%)") && svg.contains("<polygon"), "{}", path.display());
        } else {
            let img = image::open(path).unwrap().to_rgb8();
            let expected = if path.to_string_lossy().contains("gamma_sweep") {
                SWEEP_SIZE
            } else {
                HISTORY_SIZE
            };
            assert_eq!(img.dimensions(), expected);
            // The title strip holds rendered text: dark pixels on white.
            let dark = (0..expected.0)
                .flat_map(|x| (0..40).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
                .count();
            assert!(dark > 500, "{}: {dark} dark pixels in the title", path.display());
        }
    }
    let svg = std::fs::read_to_string(dir.path().join("gamma_sweep.svg")).unwrap();
    assert!(svg.contains("retrain forget (100 ep.)") && svg.contains("over 2 seeds"));
    let svg = std::fs::read_to_string(dir.path().join("mi_acc_gamma2_epochs3.svg")).unwrap();
    assert!(svg.contains("gamma = 2,") && svg.contains("over 2 seeds)"));
    // Every evaluated point has a marker (4 curves x 3 epochs), so one point shows too.
    assert!(svg.matches("<circle").count() >= 12, "{}", svg.matches("<circle").count());
    // A figure the runs no longer call for is removed; other files are left alone.
    std::fs::write(dir.path().join("mi_acc_gamma9_epochs3.png"), b"old").unwrap();
    std::fs::write(dir.path().join("notes.png"), b"mine").unwrap();
    assert_eq!(plot_dir(dir.path()).unwrap(), written);
    assert!(!dir.path().join("mi_acc_gamma9_epochs3.png").exists());
    assert!(dir.path().join("notes.png").exists());
    std::fs::remove_file(dir.path().join("notes.png")).unwrap();
    // No temporary files left behind.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.starts_with('.').then_some(name)
        })
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn curves_have_means_and_bands() {
    let c = Curve::from_groups(vec![(1.0, vec![1.0, 3.0]), (2.0, vec![5.0])]);
    assert_eq!(c.mean(), vec![(1.0, 2.0), (2.0, 5.0)]);
    let sd = 2f64.sqrt();
    assert_eq!(c.band(), vec![(1.0, 2.0 + sd), (2.0, 5.0), (2.0, 5.0), (1.0, 2.0 - sd)]);
    assert_eq!(c.range(), Some(2.0 - sd..5.0));
}

#[test]
fn malformed_csv_names_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("runs.csv"),
        "method,gamma,epochs,params,seed\nmi_unlearn,1,x,gamma=1 epochs=x,0\n",
    )
    .unwrap();
    let err = format!("{:#}", plot_dir(dir.path()).unwrap_err());
    assert!(err.contains("runs.csv: malformed row 2"), "{err}");
    let err = format!("{:#}", plot_dir(&dir.path().join("missing")).unwrap_err());
    assert!(err.contains("runs.csv"), "{err}");
}
