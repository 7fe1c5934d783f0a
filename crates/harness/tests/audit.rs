//! The forgetting audit end to end on a small slice of real MNIST (needs `scripts/setup`):
//! replicates, the confidences' arrays, the forgetting-quality score and its floor.

mod common;

use common::*;
use results::forget_score::{epsilon, forget_score};
use results::npy;

/// The slice with original, retrain and finetune, and `audit` after them.
fn audited(dir: &std::path::Path, name: &str, audit: &str) -> String {
    let methods = "[methods.original]\nepochs = 2\n[methods.retrain]\nepochs = 2\n\
                   [methods.finetune]\nepochs = 1\n";
    slice(dir, name, "", &format!("{methods}{audit}")).display().to_string()
}

fn array(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    npy::from_bytes(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn replicates_are_scored_and_their_arrays_rescore_the_same() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let plain = audited(tmp.path(), "plain", "");
    let audited =
        audited(tmp.path(), "audited", "[audit]\nreplicates = 6\nshadows = 8\nmin_members = 2\n");
    let (ok, _, stderr) = harness(&[&plain, "--cache", &p("cache"), "--out", &p("plain")]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = harness(&[&audited, "--cache", &p("cache"), "--out", &p("audit")]);
    assert!(ok, "{stderr}");
    // 3 runs of the plain experiment came from the cache (their evaluation redone for the
    // confidences); 10 more replicates and 8 x 3 shadow runs trained.
    assert!(stderr.contains("(34 trained)"), "{stderr}");

    let runs = read_csv(&tmp.path().join("audit/runs.csv"));
    let plain_runs = read_csv(&tmp.path().join("plain/runs.csv"));
    assert_eq!(runs.len(), 1 + 2 * 6);
    for r in runs.iter().filter(|r| r["replicate"] == "0") {
        let same = plain_runs.iter().find(|o| o["method"] == r["method"]).unwrap();
        for column in ["checkpoint", "remain_acc", "forget_acc", "test_acc", "mia"] {
            assert_eq!(r[column], same[column], "replicate 0 is the plain run: {column}");
        }
    }
    let finetunes: Vec<_> = runs.iter().filter(|r| r["method"] == "finetune").collect();
    let replicates: Vec<&str> = finetunes.iter().map(|r| r["replicate"].as_str()).collect();
    assert_eq!(replicates, ["0", "1", "2", "3", "4", "5"]);
    let distinct = |c: &str| {
        let mut v: Vec<&str> = finetunes.iter().map(|r| r[c].as_str()).collect();
        v.sort();
        v.dedup();
        v.len()
    };
    assert!(distinct("checkpoint") == 6 && distinct("test_acc") > 1, "replicates differ");
    assert!(finetunes.iter().all(|r| (0.0..=1.0).contains(&num(r, "ks")) && !r["ks_p"].is_empty()));
    assert!(runs.iter().filter(|r| r["method"] == "retrain").all(|r| r["ks"].is_empty()));
    for r in &finetunes {
        // ToW from the gaps.
        let tow: f64 = ["remain_gap", "forget_gap", "test_gap"]
            .iter()
            .map(|c| 1.0 - num(r, c).abs() / 100.0)
            .product();
        assert!((num(r, "tow") - tow).abs() < 1e-12, "{r:?}");
    }

    let audit = read_csv(&tmp.path().join("audit/audit.csv"));
    let row = |m: &str| audit.iter().find(|r| r["method"] == m).unwrap();
    // The identity: six identical models, epsilon 50 on every example, F = 0.
    let original = row("original");
    assert_eq!((num(original, "forget_quality"), num(original, "eps_median")), (0.0, 50.0));
    assert_eq!(num(original, "eps_p90"), 50.0);
    let floor = num(row("retrain"), "forget_quality_floor");
    assert!(floor > 0.0 && floor <= 1.0, "{floor}");
    assert!(row("retrain")["forget_quality"].is_empty(), "the reference has no F");

    // The arrays: anyone can score them again and get audit.csv's F.
    let dir = tmp.path().join("audit/arrays");
    let (shape, forget) =
        npy::from_bytes::<i64>(&std::fs::read(dir.join("forget_seed0.npy")).unwrap()).unwrap();
    let examples = shape[0];
    assert_eq!(examples, num(original, "examples") as usize);
    assert!(forget.windows(2).all(|w| w[0] < w[1]) && forget.iter().all(|&i| i < 3000));
    let (rshape, retrain) = array(&dir.join("retrain_epochs2_seed0.npy"));
    let (fshape, finetune) = array(&dir.join("finetune_epochs1_seed0.npy"));
    assert_eq!((rshape, fshape.clone()), (vec![6, examples], vec![6, examples]));
    assert_eq!(array(&dir.join("original_epochs2_seed0.npy")).0, vec![1, examples]);
    let column =
        |a: &[f32], j: usize| (0..6).map(|r| f64::from(a[r * examples + j])).collect::<Vec<_>>();
    let eps: Vec<f64> =
        (0..examples).map(|j| epsilon(&column(&finetune, j), &column(&retrain, j))).collect();
    let f = forget_score(&eps, 6);
    assert_eq!(f, num(row("finetune"), "forget_quality"));
    let summary = read_csv(&tmp.path().join("audit/summary.csv"));
    let s = summary.iter().find(|r| r["method"] == "finetune").unwrap();
    assert_eq!((num(s, "forget_quality_mean"), num(s, "n_replicates")), (f, 6.0));

    // U-LiRA over the 8 shadows: retrain's own shadows cannot be told apart (IN and OUT are
    // one distribution), and every method scored the same decisions.
    let retrain = row("retrain");
    assert!((num(retrain, "ulira_acc") - 0.5).abs() < 0.06, "{retrain:?}");
    assert!((num(retrain, "ulira_auc") - 0.5).abs() < 0.06, "{retrain:?}");
    let scored = num(retrain, "ulira_scored");
    assert!(scored > 1000.0 && audit.iter().all(|r| num(r, "ulira_scored") == scored));
    assert!(audit.iter().all(|r| num(r, "shadows") == 8.0));
    let shadow_runs = read_csv(&tmp.path().join("audit/shadows.csv"));
    assert_eq!(shadow_runs.len(), 8 * 3);
    assert!(shadow_runs.iter().all(|r| r["replicate"] == "0" && !r["shadow"].is_empty()));
    let (mshape, membership) =
        npy::from_bytes::<i8>(&std::fs::read(dir.join("shadows/membership_seed0.npy")).unwrap())
            .unwrap();
    let (pshape, population) =
        npy::from_bytes::<i64>(&std::fs::read(dir.join("shadows/population.npy")).unwrap())
            .unwrap();
    assert_eq!(mshape, vec![8, pshape[0]]);
    assert!(forget.iter().all(|i| population.binary_search(i).is_ok()));
    // Each shadow forgot 75% of the threes of its half (of 3000 images).
    for k in 0..8 {
        let row = &membership[k * pshape[0]..(k + 1) * pshape[0]];
        let (seen, forgot) =
            (row.iter().filter(|&&m| m > 0).count(), row.iter().filter(|&&m| m == 2).count());
        assert_eq!(forgot, seen * 3 / 4, "shadow {k}");
    }
    assert_eq!(array(&dir.join("shadows/finetune_epochs1_seed0.npy")).0, vec![8, pshape[0]]);

    // Again, everything from the cache: the same files.
    let (ok, _, stderr) = harness(&[&audited, "--cache", &p("cache"), "--out", &p("again")]);
    assert!(ok && stderr.contains("(everything from the cache)"), "{stderr}");
    for file in ["audit.csv", "audit_epsilons.csv", "arrays/finetune_epochs1_seed0.npy"] {
        let read = |d: &str| std::fs::read(tmp.path().join(d).join(file)).unwrap();
        assert_eq!(read("audit"), read("again"), "{file}");
    }

    // Two shards into a fresh cache, then the report: the same audit as one process.
    for shard in ["0/2", "1/2"] {
        let (ok, _, stderr) = harness(&[&audited, "--cache", &p("sharded"), "--shard", shard]);
        assert!(ok && stderr.contains("no results written"), "{stderr}");
    }
    let (ok, _, stderr) =
        harness(&["report", &audited, "--cache", &p("sharded"), "--out", &p("report")]);
    assert!(ok, "{stderr}");
    for file in ["audit.csv", "audit_epsilons.csv", "arrays/finetune_epochs1_seed0.npy"] {
        let read = |d: &str| std::fs::read(tmp.path().join(d).join(file)).unwrap();
        assert_eq!(read("audit"), read("report"), "{file}");
    }
}
