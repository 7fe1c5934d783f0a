//! Forget sets chosen by memorization, end to end on a small slice of real MNIST (needs
//! `scripts/setup`): the population trained once and shared, its estimates, the chosen set in
//! the audit, and bad input that fails before anything is trained or written.

mod common;

use common::*;

/// The slice's experiment with `forget` as its scenario and an audit.
fn chosen(dir: &std::path::Path, name: &str, forget: &str) -> String {
    let text = format!(
        "seeds = [0]\n[data]\ndir = \"{}\"\ntrain_limit = 3000\ntest_limit = 500\n\
         [forget]\n{forget}\n[methods.original]\nepochs = 2\n[methods.retrain]\nepochs = 2\n\
         [methods.finetune]\nepochs = 1\n[audit]\nreplicates = 4\nshadows = 8\nmin_members = 2\n",
        mnist_dir().display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_population_chooses_the_forget_set_and_is_shared() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    let high = chosen(tmp.path(), "high", "memorization = \"high\"\nsize = 40\nmodels = 16");
    let (ok, _, stderr) = harness(&[&high, "--cache", &p("cache"), "--out", &p("high")]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("16 jobs (originals on random halves"), "{stderr}");
    let out = tmp.path().join("high");
    let (shape, scores) = npy_array::<f32>(&out.join("memorization/scores.npy"));
    assert_eq!(shape, [3000]);
    let (_, models_in) = npy_array::<i16>(&out.join("memorization/models_in.npy"));
    assert!(models_in.iter().all(|&c| (1..16).contains(&c)), "both sides of every example");
    let (_, picked) = npy_array::<i64>(&out.join("memorization/chosen.npy"));
    assert_eq!(picked.len(), 40);
    let is_picked = |i: usize| picked.contains(&(i as i64));
    let lowest_picked = picked.iter().map(|&i| scores[i as usize]).fold(f32::MAX, f32::min);
    let best_left =
        (0..3000).filter(|&i| !is_picked(i)).map(|i| scores[i]).fold(f32::MIN, f32::max);
    assert!(lowest_picked >= best_left, "the 40 highest: {lowest_picked} < {best_left}");
    assert!(lowest_picked > 0.3, "memorized examples: {lowest_picked}");
    // The audit forgot exactly them: the forget set's indices in its arrays.
    let (_, forget) = npy_array::<i64>(&out.join("arrays/forget_seed0.npy"));
    assert_eq!(forget, picked);
    let summary = read_csv(&out.join("memorization.csv"));
    let all = summary.iter().find(|r| r["class"] == "all").unwrap();
    assert_eq!(
        (all["examples"].as_str(), all["models"].as_str(), all["chosen"].as_str()),
        ("3000", "16", "40")
    );
    let per_class: f64 =
        summary.iter().filter(|r| r["class"] != "all").map(|r| num(r, "chosen")).sum();
    assert_eq!(per_class, 40.0);
    let gallery = read_csv(&out.join("memorization_gallery.csv"));
    assert_eq!(gallery.len(), 48);
    let top = &gallery[0];
    assert_eq!((top["side"].as_str(), top["rank"].as_str()), ("most", "1"));
    assert_eq!(num(top, "memorization") as f32, scores.iter().copied().fold(f32::MIN, f32::max));
    assert_eq!(npy_array::<u8>(&out.join("memorization/gallery.npy")).0, [48, 784]);
    assert!(out.join("memorization.png").exists() && out.join("memorization.svg").exists());
    let runs = read_csv(&out.join("runs.csv"));
    assert!(runs.iter().all(|r| r["checkpoint"].len() == 64));
    let audit = read_csv(&out.join("audit.csv"));
    assert!(audit.iter().all(|r| r["examples"] == "40"), "F on the 40 chosen");
    assert!(audit.iter().any(|r| r["method"] == "original" && !r["ulira_acc"].is_empty()));

    // The low set from the same population: nothing of it retrained, a disjoint set, the
    // same population key; the original and the shadows' originals come from the cache too.
    let low = chosen(tmp.path(), "low", "memorization = \"low\"\nsize = 40\nmodels = 16");
    let (ok, _, stderr) = harness(&[&low, "--cache", &p("cache"), "--out", &p("low")]);
    assert!(ok, "{stderr}");
    assert!(!stderr.contains("memorization=3: trained"), "the population is shared: {stderr}");
    assert!(!stderr.contains("original epochs=2 seed=0: trained"), "{stderr}");
    let (_, low_picked) = npy_array::<i64>(&tmp.path().join("low/memorization/chosen.npy"));
    assert!(low_picked.iter().all(|i| !picked.contains(i)));
    let key = |dir: &str| {
        read_csv(&tmp.path().join(dir).join("memorization.csv"))[0]["population"].clone()
    };
    assert_eq!(key("high"), key("low"));

    // `harness report` rewrites the folder from the cache alone, the same files.
    let (ok, _, stderr) = harness(&["report", &high, "--cache", &p("cache"), "--out", &p("again")]);
    assert!(ok, "{stderr}");
    for file in
        ["memorization.csv", "memorization_gallery.csv", "memorization/scores.npy", "audit.csv"]
    {
        let read = |d: &str| std::fs::read(tmp.path().join(d).join(file)).unwrap();
        assert_eq!(read("high"), read("again"), "{file}");
    }
}

#[test]
fn a_pool_too_small_or_a_population_too_thin_fails_before_training() {
    if !have_mnist() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = |s: &str| tmp.path().join(s).display().to_string();
    for (name, forget, expected) in [
        (
            "large",
            "class = 3\nmemorization = \"high\"\nsize = 1000\nmodels = 16",
            "`forget.size` is 1000; class 3 has 295 examples to choose from",
        ),
        ("thin", "memorization = \"high\"\nsize = 10\nmodels = 8", "`forget.models` is 8: "),
    ] {
        let path = chosen(tmp.path(), name, forget);
        let (code, _, stderr) = harness_code(&[&path, "--cache", &p("cache"), "--out", &p(name)]);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(&path) && stderr.contains(expected), "{stderr}");
        assert!(!tmp.path().join(name).join("runs.csv").exists(), "nothing written");
        let models = tmp.path().join("cache/v2/models");
        let trained = std::fs::read_dir(&models).map_or(0, |d| d.count());
        assert_eq!(trained, 0, "nothing trained");
    }
}
