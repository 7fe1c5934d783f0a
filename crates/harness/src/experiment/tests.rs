//! Reading and checking experiment files: grids, defaults, every kind of bad value.

use super::*;
use methods::catalog::mi_unlearn::MiUnlearn;
use methods::catalog::salun::Salun;
use methods::catalog::scrub::Scrub;

const MINIMAL: &str = r#"
seeds = [0, 1]
[forget]
class = 3
fraction = 0.75
[methods.original]
epochs = 100
[methods.retrain]
epochs = 100
[methods.finetune]
epochs = [10, 100]
[methods.mi_unlearn]
gamma = [1, 2.5, 4]
epochs = 5
"#;

fn parse(text: &str) -> Result<Experiment, String> {
    Experiment::parse(text, Path::new("experiments/x.toml")).map_err(|e| e.to_string())
}

#[track_caller]
fn check_err(text: &str, expected: &[&str]) {
    let err = parse(text).expect_err("expected an error");
    for e in expected {
        assert!(err.contains(e), "{err}\n--- lacks: {e}");
    }
}

#[test]
fn expands_the_grid_with_defaults() {
    let exp = parse(MINIMAL).unwrap();
    assert_eq!(exp.name, "x");
    assert_eq!(exp.data_dir, PathBuf::from("data/MNIST/raw"));
    let names: Vec<_> =
        exp.methods.iter().map(|m| (m.name(), m.swept().map(|(_, v)| v), m.epochs())).collect();
    assert_eq!(
        names,
        vec![
            ("original", None, 100),
            ("retrain", None, 100),
            ("finetune", None, 10),
            ("finetune", None, 100),
            ("mi_unlearn", Some(1.0), 5),
            ("mi_unlearn", Some(2.5), 5),
            ("mi_unlearn", Some(4.0), 5),
        ]
    );
    assert_eq!(exp.methods[6], AnyMethod::new(MiUnlearn::default()));
    assert!(
        exp.resolved.contains("forget_batch_size = 16") && exp.resolved.contains("name = \"x\""),
        "{}",
        exp.resolved
    );
    // The resolved configuration is itself a valid experiment with the same plan.
    assert_eq!(parse(&exp.resolved).unwrap().methods, exp.methods);
}

#[test]
fn audit_sections() {
    let with = |section: &str| format!("{MINIMAL}\n[audit]\n{section}\n");
    assert_eq!(parse(MINIMAL).unwrap().replicates(), 1);
    let exp = parse(&with("replicates = 8\nshadows = 16")).unwrap();
    assert_eq!(exp.audit, Some(Audit { replicates: 8, shadows: 16, min_members: 4 }));
    assert!(exp.resolved.contains("[audit]\nreplicates = 8\nshadows = 16\nmin_members = 4"));
    check_err(&with("replicates = 0"), &["x.toml: `audit.replicates` is 0", "(line 17)"]);
    check_err(&with("shadows = 1"), &["`audit.shadows` is 1; U-LiRA", "(line 17)"]);
    check_err(
        &with("shadows = 8"),
        &[
            "`audit.shadows` is 8: with a forget fraction of 0.75 a forget example is unlearned by 2.6 other shadows",
            "use at least 12 shadows",
        ],
    );
    check_err(&with("replicated = 2"), &["unknown field `replicated`"]);
    let no_retrain = MINIMAL.replace("[methods.retrain]\nepochs = 100\n", "");
    check_err(
        &format!("{no_retrain}[audit]\nreplicates = 4\n"),
        &["`audit` needs a [methods.retrain] section"],
    );
}

#[test]
fn check_sections() {
    let with = |section: &str| format!("{MINIMAL}\n[check]\n{section}\n");
    let exp = parse(&with("metrics = [\"forget_gap\", \"test_acc\"]\ntolerance = 0.5\nstandard_errors = 3\ntolerances.forget_gap = 2.0")).unwrap();
    assert_eq!(
        exp.check,
        Some(CheckSpec {
            metrics: vec![(Metric::ForgetGap, Some(2.0)), (Metric::TestAcc, Some(0.5))],
            standard_errors: Some(3.0)
        })
    );
    assert!(parse(MINIMAL).unwrap().check.is_none());
    check_err(
        &with("metrics = [\"forget\"]\ntolerance = 1"),
        &["line 17", "unknown variant `forget`, expected one of `remain_acc`"],
    );
    check_err(&with("metrics = [\"forget_gap\"]"), &["`check` gives forget_gap no tolerance"]);
    check_err(&with("metrics = [\"forget_gap\"]\ntolerance = -1"), &["`check.tolerance` is -1"]);
    check_err(
        &with("metrics = [\"forget_gap\"]\ntolerance = 1\ntolerances.test_gap = 1"),
        &["`check.tolerances.test_gap` names a metric"],
    );
    check_err(&with("metrics = [\"forget_gap\"]\ntolerance = 1\nk = 2"), &["unknown field `k`"]);
}

#[test]
fn zip_pairs_gammas_with_epochs() {
    let text = MINIMAL.replace(
        "gamma = [1, 2.5, 4]\nepochs = 5",
        "gamma = [1.5, 3.5, 3.5, 5]\nepochs = [20, 5, 20, 2]\ngrid = \"zip\"",
    );
    let exp = parse(&text).unwrap();
    let mi: Vec<_> = exp.methods.iter().filter_map(|m| Some((m.swept()?.1, m.epochs()))).collect();
    assert_eq!(mi, vec![(1.5, 20), (3.5, 5), (3.5, 20), (5.0, 2)]);
    let dup = text.replace("[20, 5, 20, 2]", "[20, 5, 5, 2]");
    check_err(&dup, &["`methods.mi_unlearn.grid` pairs (gamma 3.5, epochs 5) twice"]);
}

#[test]
fn rejects_unknown_keys_and_wrong_types_with_line_and_file() {
    check_err(
        &MINIMAL.replace("gamma =", "gama ="),
        &[
            "experiments/x.toml",
            "line 13",
            "`methods.mi_unlearn.gama` is not a parameter of mi_unlearn",
        ],
    );
    check_err(
        &MINIMAL.replace("class = 3", "class = \"three\""),
        &["experiments/x.toml", "line 4", "class"],
    );
    check_err(
        &MINIMAL.replace("epochs = 5", "epochs = \"5\""),
        &[
            "`methods.mi_unlearn.epochs` invalid type: string \"5\", expected a whole number >= 1 (line 14)",
        ],
    );
    check_err(
        &format!("{MINIMAL}\n[methods.sisa]\nshards = 4\n"),
        &["`methods.sisa` is not a method; the methods are original, retrain"],
    );
    check_err("seeds = [0]", &["missing field `forget`"]);
}

#[test]
fn rejects_bad_values_naming_the_key() {
    check_err(
        &MINIMAL.replace("fraction = 0.75", "fraction = 1.5"),
        &["experiments/x.toml: `forget.fraction` is 1.5"],
    );
    check_err(&MINIMAL.replace("class = 3", "class = 12"), &["`forget.class` is 12"]);
    check_err(
        &MINIMAL.replace("[1, 2.5, 4]", "[1, -2]"),
        &["`methods.mi_unlearn.gamma` contains -2"],
    );
    check_err(
        &MINIMAL.replace("[1, 2.5, 4]", "[1, 1]"),
        &["`methods.mi_unlearn.gamma` lists 1 twice"],
    );
    check_err(
        &MINIMAL.replace("epochs = 5", "epochs = [5, 6]\ngrid = \"zip\""),
        &["`methods.mi_unlearn.grid` is \"zip\"", "gamma has 3 values and epochs 2"],
    );
    // Zipped with no other list, a list is its own grid; single values go with every point.
    let zip_one = parse(&MINIMAL.replace("epochs = 5", "epochs = 5\ngrid = \"zip\"")).unwrap();
    assert_eq!(zip_one.methods, parse(MINIMAL).unwrap().methods);
    check_err(
        &MINIMAL.replace("epochs = 5", "epochs = 5\ngrid = \"pairs\""),
        &[
            "`methods.mi_unlearn.grid` unknown variant `pairs`, expected `product` or `zip`",
            "line 15",
        ],
    );
    check_err(
        &MINIMAL.replace("[1, 2.5, 4]", "[]"),
        &["`methods.mi_unlearn.gamma` is an empty list"],
    );
    check_err(&MINIMAL.replace("seeds = [0, 1]", "seeds = []"), &["`seeds` is empty"]);
    check_err(&MINIMAL.replace("[10, 100]", "[0]"), &["`methods.finetune.epochs` is 0"]);
    check_err(
        &MINIMAL.replace("[methods.original]\nepochs = 100\n", ""),
        &["`methods.finetune` starts from the original model"],
    );
    check_err(&format!("name = \"../x\"\n{MINIMAL}"), &["`name` is \"../x\""]);
    check_err(
        &format!("engine = \"jit\"\n{MINIMAL}"),
        &["line 1", "unknown variant `jit`, expected `autograd` or `native`"],
    );
    let autograd = parse(&format!("engine = \"autograd\"\n{MINIMAL}")).unwrap();
    assert_eq!(autograd.engine, Engine::Autograd);
}

#[test]
fn eval_every_thins_the_history_but_keeps_the_last_epoch() {
    let text = "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.75\n\
        [methods.original]\nepochs = 25\n[methods.retrain]\nepochs = 25\neval_every = 10\n\
        [methods.mi_unlearn]\ngamma = 4\nepochs = 3\n";
    let exp = parse(text).unwrap();
    let evaluated = |name: &str| -> Vec<usize> {
        let m = exp.methods.iter().find(|m| m.name() == name).unwrap();
        (1..=m.epochs()).filter(|&e| exp.evaluates_after(m, e)).collect()
    };
    assert_eq!(evaluated("retrain"), [10, 20, 25]);
    assert_eq!(evaluated("mi_unlearn"), [1, 2, 3], "every epoch by default");
    assert_eq!(evaluated("original"), [] as [usize; 0], "never: its key has no split");
    assert!(exp.resolved.contains("eval_every = 1"), "defaults are written out");
    check_err(
        &text.replace("eval_every = 10", "eval_every = 0"),
        &["methods.retrain.eval_every", "is 0"],
    );
}
#[test]
fn baselines_take_their_papers_defaults_and_reject_keys_they_do_not_have() {
    let text = format!(
        "{MINIMAL}[methods.scrub]\nepochs = 4\n[methods.salun]\nsparsity = 0.3\n[methods.grad_ascent]\n"
    );
    let exp = parse(&text).unwrap();
    let names: Vec<_> = exp.methods.iter().map(|m| m.name()).collect();
    assert_eq!(
        names[names.len() - 3..],
        ["grad_ascent", "scrub", "salun"],
        "in the catalog's order"
    );
    let scrub = exp.methods.iter().find(|m| m.name() == "scrub").unwrap();
    let four = Scrub { epochs: methods::Count::new(4), max_epochs: Some(2), ..Default::default() };
    assert_eq!(scrub, &AnyMethod::new(four));
    let salun = exp.methods.iter().find(|m| m.name() == "salun").unwrap();
    assert_eq!(salun, &AnyMethod::new(Salun { sparsity: 0.3, ..Default::default() }));
    assert!(exp.resolved.contains("[methods.scrub]\nepochs = 4\nlr = 0.00001"), "{}", exp.resolved);

    check_err(
        &format!("{MINIMAL}[methods.grad_ascent]\nalpha = 0.5\n"),
        &[
            "`methods.grad_ascent.alpha` is not a parameter of grad_ascent",
            "its parameters are epochs, lr, batch_size",
        ],
    );
    check_err(
        &format!("{MINIMAL}[methods.salun]\nsparsity = 1.5\n"),
        &["`methods.salun.sparsity` is 1.5"],
    );
    check_err(
        &format!("{MINIMAL}[methods.scrub]\nepochs = 2\nmax_epochs = 3\n"),
        &["`methods.scrub.max_epochs` is 3, more than the 2 epochs"],
    );
    check_err(
        &format!("{MINIMAL}[methods.l1_sparse]\nlambda = -1\n"),
        &["`methods.l1_sparse.lambda` is -1"],
    );
    check_err(
        &format!("{MINIMAL}[methods.scrub]\nbeta = 1\n"),
        &["`methods.scrub.beta` is not a parameter of scrub"],
    );

    // Lists expand into every combination, for a search.
    let grid =
        parse(&format!("{MINIMAL}[methods.l1_sparse]\nlr = [1e-4, 1e-3]\nlambda = [0, 2e-4]\n"))
            .unwrap();
    let labels: Vec<String> =
        grid.methods.iter().filter(|m| m.name() == "l1_sparse").map(|m| m.label()).collect();
    assert_eq!(
        labels,
        [
            "epochs=5 lambda=0 lr=0.0001",
            "epochs=5 lambda=0.0002 lr=0.0001",
            "epochs=5 lambda=0",
            "epochs=5 lambda=0.0002"
        ]
    );
    check_err(
        &format!("{MINIMAL}[methods.salun]\nlr = [1e-4, 1e-4]\n"),
        &["`methods.salun.lr` lists 0.0001 twice"],
    );
    check_err(
        "seeds = [0]\n[forget]\nclass = 3\nfraction = 0.5\n[methods.scrub]\n",
        &["`methods.scrub` starts from the original model"],
    );
}
#[test]
fn a_file_with_several_datasets_or_scenarios_is_a_suite_of_cells() {
    let text = MINIMAL.replace(
        "[forget]\nclass = 3\nfraction = 0.75\n",
        "[data]\ndataset = [\"mnist\", \"fashion-mnist\"]\n[[forget]]\nclass = 3\nfraction = 0.75\n[[forget]]\nclass = 3\nfraction = 1\n[[forget]]\nfraction = 0.1\n",
    );
    let suite = Suite::parse(&text, Path::new("experiments/bench.toml")).unwrap();
    assert_eq!(suite.name, "bench");
    let names: Vec<_> = suite.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "mnist-class3-0.75",
            "mnist-class3-all",
            "mnist-random-0.1",
            "fashion-mnist-class3-0.75",
            "fashion-mnist-class3-all",
            "fashion-mnist-random-0.1"
        ]
    );
    let fashion = &suite.cells[3];
    assert_eq!(fashion.data_dir, PathBuf::from("data/FashionMNIST/raw"));
    assert_eq!(fashion.load.kind, data::dataset::Kind::FashionMnist);
    assert!(fashion.resolved.contains("dataset = \"fashion-mnist\""), "{}", fashion.resolved);
    assert_eq!(
        suite.cell_out(Path::new("results/bench"), fashion),
        PathBuf::from("results/bench/fashion-mnist-class3-0.75")
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bench.toml"), &text).unwrap();
    let path = dir.path().join("bench.toml");
    let suite = Suite::parse(&text, &path).unwrap();
    let err = Experiment::single(suite, &path).unwrap_err().to_string();
    assert!(err.contains("make 6 cells; this command takes a file of one dataset"), "{err}");

    let with_dir = text.replace("[data]\n", "[data]\ndir = \"x\"\n");
    let err = Suite::parse(&with_dir, Path::new("b.toml")).unwrap_err().to_string();
    assert!(err.contains("`data.dir` cannot be one folder for several cells"), "{err}");
    let twice = text.replace("\"fashion-mnist\"]", "\"mnist\"]");
    let err = Suite::parse(&twice, Path::new("b.toml")).unwrap_err().to_string();
    assert!(err.contains("`data.dataset` lists \"mnist\" twice"), "{err}");
    assert_eq!(parse(MINIMAL).unwrap().device, crate::experiment::device::Request::Auto);
    let on = parse(&format!("device = \"cuda:1\"\n{MINIMAL}")).unwrap();
    assert_eq!(on.device, crate::experiment::device::Request::Cuda(Some(1)));
    check_err(&format!("device = \"gpu\"\n{MINIMAL}"), &["line 1", "is \"gpu\"; use \"auto\""]);
    let cnn = parse(&format!("model = \"cnn\"\n{MINIMAL}")).unwrap();
    assert_eq!(cnn.model, model::ClassifierSpec::lenet5());
    let table = parse(&format!("{MINIMAL}[model]\narch = \"cnn\"\nhidden = [50]\n")).unwrap();
    assert_eq!(table.model.hidden, [50]);
    assert!(!table.model.is_mlp());
    check_err(
        &format!("model = \"resnet\"\n{MINIMAL}"),
        &["line 1", "unknown variant `resnet`, expected `mlp` or `cnn`"],
    );
    check_err(
        &MINIMAL.replace("[forget]", "[data]\ndataset = \"cifar\"\n[forget]"),
        &["line 4", "unknown variant `cifar`, expected `mnist` or `fashion-mnist`"],
    );
}

#[test]
fn forget_sets_chosen_by_memorization() {
    let with = |forget: &str| MINIMAL.replace("class = 3\nfraction = 0.75\n", forget);
    let exp = parse(&with("memorization = \"high\"\nsize = 600\n")).unwrap();
    let m = exp.memorization.unwrap();
    assert_eq!((m.level, m.size, m.models), (data::memorization::Level::High, 600, 64));
    assert_eq!((exp.forget.class, exp.forget.fraction, exp.forget.chosen), (None, 1.0, None));
    let exp = parse(&with("class = 3\nmemorization = \"low\"\nsize = 50\nmodels = 8\n")).unwrap();
    assert_eq!(exp.memorization.unwrap().models, 8);
    assert!(exp.resolved.contains("memorization = \"low\""), "{}", exp.resolved);
    check_err(
        &with("memorization = \"high\"\nsize = 600\nfraction = 0.5\n"),
        &["`forget.fraction` is 0.5 beside `memorization`", "give one of them"],
    );
    check_err(&with("memorization = \"high\"\n"), &["`forget.size` is missing"]);
    check_err(&with("memorization = \"high\"\nsize = 0\n"), &["`forget.size` is 0"]);
    check_err(
        &with("memorization = \"high\"\nsize = 10\nmodels = 4\n"),
        &["`forget.models` is 4; a memorization estimate takes 8 to"],
    );
    check_err(&with("fraction = 0.5\nsize = 10\n"), &["`forget.size` goes with `memorization`"]);
    check_err(&with("class = 3\n"), &["`forget.fraction` is missing"]);
    check_err(&with("memorization = \"most\"\nsize = 1\n"), &["unknown variant `most`"]);
    let no_original = with("memorization = \"high\"\nsize = 6\n")
        .replace("[methods.original]\nepochs = 100\n", "")
        .replace("[methods.finetune]\nepochs = [10, 100]\n[methods.mi_unlearn]\ngamma = [1, 2.5, 4]\nepochs = 5\n", "");
    check_err(&no_original, &["`forget.memorization` needs the original's section"]);
    // Two scenarios of a suite are named by what they choose.
    let suite = Suite::parse(
        &MINIMAL.replace(
            "[forget]\nclass = 3\nfraction = 0.75\n",
            "[[forget]]\nmemorization = \"high\"\nsize = 60\n[[forget]]\nclass = 3\nmemorization = \"low\"\nsize = 60\n",
        ),
        Path::new("experiments/x.toml"),
    )
    .unwrap();
    let names: Vec<&str> = suite.cells.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["mnist-memorization-high-60", "mnist-class3-memorization-low-60"]);
}

#[test]
fn an_external_method_s_epochs_are_its_epochs_parameter() {
    let text = format!(
        "{MINIMAL}[methods.external.a]\ncommand = [\"python\"]\nparams = {{ epochs = [2, 5], lr = 0.1 }}\n\
         [methods.external.b]\ncommand = [\"python\"]\n"
    );
    let exp = parse(&text).unwrap();
    let epochs: Vec<(&str, usize)> = exp.external.iter().map(|s| (&*s.name, s.epochs)).collect();
    assert_eq!(epochs, [("a", 2), ("a", 5), ("b", 1)]);
    let zero = text.replace("epochs = [2, 5]", "epochs = 0");
    check_err(&zero, &["x.toml", "`methods.external.a.params.epochs` is 0", "a whole number"]);
    check_err(&text.replace("[2, 5]", "\"auto\""), &["params.epochs` is \"auto\""]);
}
