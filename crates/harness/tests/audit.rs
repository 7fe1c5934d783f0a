//! The forgetting audit end to end on a small slice of real MNIST (needs `scripts/setup`):
//! replicates, the confidences' arrays, the forgetting-quality score with its interval and
//! F_ref (retrain's second population), the pairs, the curve and U-LiRA's decisions.

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
    // confidences); 10 more replicates, retrain's second population of 6 and 8 x 3 shadow
    // runs trained.
    assert!(stderr.contains("(40 trained)"), "{stderr}");

    let runs = read_csv(&tmp.path().join("audit/runs.csv"));
    let plain_runs = read_csv(&tmp.path().join("plain/runs.csv"));
    assert_eq!(runs.len(), 1 + 2 * 6 + 6);
    let retrain_replicates: Vec<&str> =
        runs.iter().filter(|r| r["method"] == "retrain").map(|r| r["replicate"].as_str()).collect();
    assert_eq!(retrain_replicates, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]);
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
    // F_ref: retrain's second population (replicates 6 to 11) against its first, on every
    // row; retrain's own F is it, with its interval.
    let reference = num(row("retrain"), "forget_quality");
    assert!(reference > 0.0 && reference <= 1.0, "{reference}");
    assert!(audit.iter().all(|r| num(r, "forget_quality_ref") == reference));
    assert!(row("retrain")["forget_quality_ratio"].is_empty());
    for r in &audit {
        let (f, lo, hi) =
            (num(r, "forget_quality"), num(r, "forget_quality_lo"), num(r, "forget_quality_hi"));
        assert!(lo <= f && f <= hi && (0.0..=1.0).contains(&lo) && hi <= 1.0, "{r:?}");
        let (elo, ehi) = (num(r, "f_examples_lo"), num(r, "f_examples_hi"));
        assert!(lo <= elo + 1e-12 && ehi <= hi + 1e-12, "the interval holds the examples': {r:?}");
        assert!(num(r, "f_halves_sd") >= 0.0, "{r:?}");
    }
    let ft = row("finetune");
    assert_eq!(num(ft, "forget_quality_ratio"), num(ft, "forget_quality") / reference);
    // The identity's F is 0 whatever the split: its interval is [0, 0].
    assert_eq!(
        (num(original, "forget_quality_lo"), num(original, "forget_quality_hi")),
        (0.0, 0.0)
    );
    // Ties with the best F: finetune is the only unlearner with F > 0 here.
    assert_eq!((ft["f_tied_best"].as_str(), original["f_tied_best"].as_str()), ("true", "false"));
    assert!(row("retrain")["f_tied_best"].is_empty(), "the reference is not a candidate");

    // Every pair, F's (retrain standing for its second population) and U-LiRA's.
    let pairs = read_csv(&tmp.path().join("audit/audit_pairs.csv"));
    let pair = |metric: &str, a: &str, b: &str| {
        pairs
            .iter()
            .find(|r| r["metric"] == metric && r["method_a"] == a && r["method_b"] == b)
            .unwrap_or_else(|| panic!("{metric} {a} {b}"))
    };
    for metric in ["forget_quality", "ulira_acc", "ulira_auc"] {
        assert_eq!(pairs.iter().filter(|r| r["metric"] == metric).count(), 3, "{metric}");
    }
    let d = pair("forget_quality", "retrain", "finetune");
    let diff = num(d, "difference");
    assert!((diff - (reference - num(ft, "forget_quality"))).abs() < 1e-12, "{d:?}");
    assert!(num(d, "lo") <= diff && diff <= num(d, "hi"));
    assert_eq!(d["tied"] == "true", num(d, "lo") <= 0.0 && 0.0 <= num(d, "hi"));
    let d = pair("ulira_acc", "original", "retrain");
    let diff = num(d, "difference");
    assert!((diff - (num(original, "ulira_acc") - num(row("retrain"), "ulira_acc"))).abs() < 1e-12);

    // F against N: a quarter and a half of 6 models are below 4 (a single bucket): only the
    // whole population, retrain's being F_ref.
    let curve = read_csv(&tmp.path().join("audit/audit_curve.csv"));
    let at = |m: &str| {
        let rows = curve.iter().filter(|r| r["method"] == m);
        rows.map(|r| (r["models"].clone(), r["draws"].clone())).collect::<Vec<_>>()
    };
    let whole = vec![("6".to_owned(), "1".to_owned())];
    assert_eq!((at("finetune"), at("retrain")), (whole.clone(), whole));
    let whole = curve.iter().find(|r| r["method"] == "retrain" && r["models"] == "6").unwrap();
    assert_eq!(num(whole, "forget_quality"), reference);

    // The arrays: anyone can score them again and get audit.csv's F.
    let dir = tmp.path().join("audit/arrays");
    let (shape, forget) = npy_array::<i64>(&dir.join("forget_seed0.npy"));
    let examples = shape[0];
    assert_eq!(examples, num(original, "examples") as usize);
    assert!(forget.windows(2).all(|w| w[0] < w[1]) && forget.iter().all(|&i| i < 3000));
    let (rshape, retrain) = npy_array::<f32>(&dir.join("retrain_epochs2_seed0.npy"));
    let (fshape, finetune) = npy_array::<f32>(&dir.join("finetune_epochs1_seed0.npy"));
    assert_eq!((rshape, fshape.clone()), (vec![6, examples], vec![6, examples]));
    assert_eq!(npy_array::<f32>(&dir.join("original_epochs2_seed0.npy")).0, vec![1, examples]);
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
    assert!(
        num(retrain, "ulira_acc_lo") <= 0.5 && 0.5 <= num(retrain, "ulira_acc_hi"),
        "{retrain:?}"
    );
    let scored = num(retrain, "ulira_scored");
    assert!(scored > 1000.0 && audit.iter().all(|r| num(r, "ulira_scored") == scored));
    assert!(audit.iter().all(|r| num(r, "ulira_targets") == 8.0));
    // The committed decisions: anyone recomputes each target's accuracy from them.
    let (dshape, decisions) = npy_array::<i16>(&dir.join("ulira/decisions_seed0.npy"));
    assert_eq!(dshape, vec![scored as usize, 3]);
    let scores = npy::read(&std::fs::read(dir.join("ulira/retrain_epochs2_seed0.npy")).unwrap())
        .unwrap()
        .floats()
        .unwrap();
    assert_eq!(scores.len(), scored as usize);
    let mut accuracy = 0.0;
    for t in 0..8 {
        let own: Vec<usize> = (0..scores.len()).filter(|&i| decisions[3 * i] == t).collect();
        let right =
            own.iter().filter(|&&i| (scores[i] > 0.0) == (decisions[3 * i + 2] == 1)).count();
        accuracy += right as f64 / own.len() as f64 / 8.0;
    }
    // float16 scores: a score within 2^-24 of 0 could change side; none does here.
    assert!((accuracy - num(retrain, "ulira_acc")).abs() < 1e-9, "{accuracy} {retrain:?}");
    assert!(audit.iter().all(|r| num(r, "shadows") == 8.0));
    let shadow_runs = read_csv(&tmp.path().join("audit/shadows.csv"));
    assert_eq!(shadow_runs.len(), 8 * 3);
    assert!(shadow_runs.iter().all(|r| r["replicate"] == "0" && !r["shadow"].is_empty()));
    let (mshape, membership) = npy_array::<i8>(&dir.join("shadows/membership_seed0.npy"));
    let (pshape, population) = npy_array::<i64>(&dir.join("shadows/population.npy"));
    assert_eq!(mshape, vec![8, pshape[0]]);
    assert!(forget.iter().all(|i| population.binary_search(i).is_ok()));
    // Each shadow forgot 75% of the threes of its half (of 3000 images).
    for k in 0..8 {
        let row = &membership[k * pshape[0]..(k + 1) * pshape[0]];
        let (seen, forgot) =
            (row.iter().filter(|&&m| m > 0).count(), row.iter().filter(|&&m| m == 2).count());
        assert_eq!(forgot, seen * 3 / 4, "shadow {k}");
    }
    assert_eq!(
        npy_array::<f32>(&dir.join("shadows/finetune_epochs1_seed0.npy")).0,
        vec![8, pshape[0]]
    );

    // Again, everything from the cache: the same files.
    let (ok, _, stderr) = harness(&[&audited, "--cache", &p("cache"), "--out", &p("again")]);
    assert!(ok && stderr.contains("(everything from the cache)"), "{stderr}");
    let files = [
        "audit.csv",
        "audit_epsilons.csv",
        "audit_pairs.csv",
        "audit_curve.csv",
        "arrays/finetune_epochs1_seed0.npy",
        "arrays/ulira/decisions_seed0.npy",
        "arrays/ulira/finetune_epochs1_seed0.npy",
    ];
    for file in files {
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
    for file in files {
        let read = |d: &str| std::fs::read(tmp.path().join(d).join(file)).unwrap();
        assert_eq!(read("audit"), read("report"), "{file}");
    }
}
