//! The classifier being unlearned: a multi-layer perceptron (`784-128-64-10` with ReLU by
//! default), optionally behind a LeNet-5 convolutional stem (`Stem::LeNet5`: the "cnn"
//! model), over a tch [`VarStore`], with
//! - an initialisation identical in distribution to PyTorch's `nn.Linear` (weights and biases
//!   uniform in `+-1/sqrt(fan_in)`), drawn from the run's own RNG rather than libtorch's
//!   process-global generator, so that parallel jobs stay reproducible;
//! - checkpoints as safetensors with PyTorch's `state_dict` names (`fc1.weight`, `fc1.bias`,
//!   ...), stable across versions of this crate.
//!
//! ```no_run
//! let spec = model::ClassifierSpec::default();
//! let mlp = model::Classifier::init(&spec, &mut data::rng::stream(0, "init"), tch::Device::Cpu);
//! let logits = mlp.forward(&tch::Tensor::zeros([2, 784], (tch::Kind::Float, tch::Device::Cpu)));
//! assert_eq!(logits.size(), [2, 10]);
//! ```

use std::path::Path;

use rand::distr::{Distribution, Uniform};
use tch::{Device, Kind, Tensor, nn};

/// What runs before the fully connected layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stem {
    /// Nothing: the flattened image feeds the first linear layer (the notebook's MLP).
    #[default]
    None,
    /// LeNet-5's convolutions on the 28x28 image: conv 5x5 to 6 channels (padding 2), ReLU,
    /// 2x2 max-pool, conv 5x5 to 16 channels, ReLU, 2x2 max-pool: 16 x 5 x 5 = 400 features.
    LeNet5,
}

/// Channels and kernel size of LeNet-5's two convolutions: `(in, out, kernel, padding)`.
const LENET_CONVS: [(i64, i64, i64, i64); 2] = [(1, 6, 5, 2), (6, 16, 5, 0)];
const LENET_FEATURES: usize = 16 * 5 * 5;

/// Layer sizes: `input -> hidden[0] -> ... -> classes`, ReLU between layers, after the stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifierSpec {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub classes: usize,
    pub stem: Stem,
}

impl Default for ClassifierSpec {
    /// The notebook's `MNISTClassifier`.
    fn default() -> Self {
        Self { input: 28 * 28, hidden: vec![128, 64], classes: 10, stem: Stem::None }
    }
}

impl ClassifierSpec {
    /// LeNet-5 for 28x28 images: the convolutional stem, then 400-120-84-10.
    pub fn lenet5() -> Self {
        Self { input: 28 * 28, hidden: vec![120, 84], classes: 10, stem: Stem::LeNet5 }
    }

    /// Whether this is the plain MLP (what the native engine computes).
    pub fn is_mlp(&self) -> bool {
        self.stem == Stem::None
    }

    /// `(fan_in, fan_out)` of each linear layer, in order.
    pub fn layers(&self) -> Vec<(usize, usize)> {
        let first = match self.stem {
            Stem::None => self.input,
            Stem::LeNet5 => LENET_FEATURES,
        };
        let sizes: Vec<usize> = std::iter::once(first)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.classes))
            .collect();
        sizes.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// A stable description, e.g. `mlp 784-128-64-10 relu` or `cnn lenet5 28x28 conv5-6p2
    /// maxpool2 conv5-16 maxpool2 fc 400-120-84-10 relu`, for cache keys.
    pub fn describe(&self) -> String {
        let (first, prefix) = match self.stem {
            Stem::None => (self.input, "mlp".to_owned()),
            Stem::LeNet5 => (
                LENET_FEATURES,
                "cnn lenet5 28x28 conv5-6p2 maxpool2 conv5-16 maxpool2 fc".to_owned(),
            ),
        };
        let sizes: Vec<String> = std::iter::once(first)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.classes))
            .map(|n| n.to_string())
            .collect();
        format!("{prefix} {} relu", sizes.join("-"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot save checkpoint")]
    Save { path: String, source: tch::TchError },
    #[error(
        "{path}: cannot load checkpoint (missing, corrupt, or another architecture than {arch})"
    )]
    Load { path: String, arch: String, source: tch::TchError },
}

/// An MLP (with its stem, if any) and its parameters.
#[derive(Debug)]
pub struct Classifier {
    spec: ClassifierSpec,
    vs: nn::VarStore,
    convs: Vec<nn::Conv2D>,
    layers: Vec<nn::Linear>,
}

impl Classifier {
    /// Parameters set to zero: a shape to load a checkpoint into or copy weights onto.
    pub fn zeros(spec: &ClassifierSpec, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let config = nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let layers = spec
            .layers()
            .iter()
            .enumerate()
            .map(|(i, &(fan_in, fan_out))| {
                nn::linear(&root / format!("fc{}", i + 1), fan_in as i64, fan_out as i64, config)
            })
            .collect();
        let convs = match spec.stem {
            Stem::None => Vec::new(),
            Stem::LeNet5 => LENET_CONVS
                .iter()
                .enumerate()
                .map(|(i, &(c_in, c_out, k, padding))| {
                    let config = nn::ConvConfig {
                        padding,
                        ws_init: nn::Init::Const(0.0),
                        bs_init: nn::Init::Const(0.0),
                        ..Default::default()
                    };
                    nn::conv2d(&root / format!("conv{}", i + 1), c_in, c_out, k, config)
                })
                .collect(),
        };
        Self { spec: spec.clone(), vs, convs, layers }
    }

    /// PyTorch's `nn.Linear` initialisation, drawn from `rng`: for each layer in order, its
    /// weight (row-major, `fan_out x fan_in`) then its bias, all `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    /// (`kaiming_uniform_(a = sqrt(5))` gives exactly that bound for the weights.)
    ///
    /// The stem's convolutions come first, with PyTorch's `nn.Conv2d` initialisation: the
    /// same bound with `fan_in = in_channels * kernel^2`.
    pub fn init(spec: &ClassifierSpec, rng: &mut data::rng::Rng, device: Device) -> Self {
        let mlp = Self::zeros(spec, device);
        let mut fill = |ws: &Tensor, bs: &Tensor, fan_in: usize| {
            let bound = 1.0 / (fan_in as f32).sqrt();
            let dist = Uniform::new(-bound, bound).expect("finite, non-empty range");
            let mut draw = |n: usize| -> Vec<f32> { dist.sample_iter(&mut *rng).take(n).collect() };
            let w = Tensor::from_slice(&draw(ws.numel())).view(ws.size().as_slice());
            let b = Tensor::from_slice(&draw(bs.numel()));
            ws.shallow_clone().copy_(&w.to_device(device));
            bs.shallow_clone().copy_(&b.to_device(device));
        };
        tch::no_grad(|| {
            for (conv, &(c_in, _, k, _)) in mlp.convs.iter().zip(&LENET_CONVS) {
                let bs = conv.bs.as_ref().expect("convolutions have biases");
                fill(&conv.ws, bs, (c_in * k * k) as usize);
            }
            for (layer, &(fan_in, _)) in mlp.layers.iter().zip(&spec.layers()) {
                fill(&layer.ws, layer.bs.as_ref().expect("layers have biases"), fan_in);
            }
        });
        mlp
    }

    /// A deep copy with its own parameters (the notebook's `deepcopy(model_original)`).
    pub fn duplicate(&self) -> Self {
        let mut copy = Self::zeros(&self.spec, self.vs.device());
        copy.vs.copy(&self.vs).expect("same architecture, same names");
        copy
    }

    /// Logits for a batch of flattened inputs `[n, input]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = match self.spec.stem {
            Stem::None => x.shallow_clone(),
            Stem::LeNet5 => self
                .convs
                .iter()
                .fold(x.view([-1, 1, 28, 28]), |h, conv| h.apply(conv).relu().max_pool2d_default(2))
                .flatten(1, -1),
        };
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let h = h.apply(layer);
            if i < last { h.relu() } else { h }
        })
    }

    pub fn spec(&self) -> &ClassifierSpec {
        &self.spec
    }

    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Each layer's `(weight, bias)` variables, in order (shallow handles on the parameters
    /// themselves: writing into them under `no_grad` changes the model).
    pub fn layer_parameters(&self) -> Vec<(Tensor, Tensor)> {
        self.layers
            .iter()
            .map(|l| {
                (l.ws.shallow_clone(), l.bs.as_ref().expect("layers have biases").shallow_clone())
            })
            .collect()
    }

    /// Number of scalar parameters.
    pub fn num_parameters(&self) -> i64 {
        self.vs.trainable_variables().iter().map(Tensor::numel).sum::<usize>() as i64
    }

    /// Saves the parameters as safetensors (`path` should end in `.safetensors`), from a CPU
    /// copy when the model lives on a GPU (the writer reads host memory).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let error = |source| ModelError::Save { path: path.display().to_string(), source };
        if self.device() == Device::Cpu {
            return self.vs.save(path).map_err(error);
        }
        let mut host = Self::zeros(&self.spec, Device::Cpu);
        host.vs.copy(&self.vs).map_err(error)?;
        host.vs.save(path).map_err(error)
    }

    /// Loads a checkpoint written by [`Classifier::save`] for the same `spec`.
    pub fn load(spec: &ClassifierSpec, path: &Path, device: Device) -> Result<Self, ModelError> {
        let mut mlp = Self::zeros(spec, device);
        mlp.vs.load(path).map_err(|source| ModelError::Load {
            path: path.display().to_string(),
            arch: spec.describe(),
            source,
        })?;
        Ok(mlp)
    }

    /// All parameters flattened into one vector, in layer order (weight, bias): for tests and
    /// comparisons.
    pub fn flat_parameters(&self) -> Vec<f32> {
        let mut out = Vec::new();
        let convs = self.convs.iter().map(|c| (&c.ws, c.bs.as_ref().expect("biases")));
        let linears = self.layers.iter().map(|l| (&l.ws, l.bs.as_ref().expect("biases")));
        for (ws, bs) in convs.chain(linears) {
            for t in [ws, bs] {
                let t = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
                out.extend(Vec::<f32>::try_from(&t).expect("float tensor"));
            }
        }
        out
    }

    /// The names of the parameters holding NaN or infinite values, sorted (empty for a model
    /// whose training did not diverge).
    pub fn non_finite_parameters(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| !bool::try_from(t.isfinite().all()).unwrap_or(false))
            .map(|(name, _)| name)
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data::rng::stream;

    #[test]
    fn shapes_and_names_match_pytorch() {
        let mlp = Classifier::init(&ClassifierSpec::default(), &mut stream(0, "init"), Device::Cpu);
        let mut names: Vec<_> =
            mlp.var_store().variables().into_iter().map(|(name, t)| (name, t.size())).collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("fc1.bias".to_owned(), vec![128]),
                ("fc1.weight".to_owned(), vec![128, 784]),
                ("fc2.bias".to_owned(), vec![64]),
                ("fc2.weight".to_owned(), vec![64, 128]),
                ("fc3.bias".to_owned(), vec![10]),
                ("fc3.weight".to_owned(), vec![10, 64]),
            ]
        );
        assert_eq!(mlp.num_parameters(), 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10);
    }

    #[test]
    fn non_finite_parameters_are_named() {
        let spec = ClassifierSpec { input: 4, hidden: vec![3], classes: 2, ..Default::default() };
        let mlp = Classifier::init(&spec, &mut stream(0, "init"), Device::Cpu);
        assert!(mlp.non_finite_parameters().is_empty());
        let vars = mlp.var_store().variables();
        tch::no_grad(|| {
            let _ = vars["fc2.bias"].shallow_clone().fill_(f64::NAN);
            let _ = vars["fc1.weight"].shallow_clone().get(0).get(1).fill_(f64::INFINITY);
        });
        assert_eq!(mlp.non_finite_parameters(), ["fc1.weight", "fc2.bias"]);
    }

    #[test]
    fn init_bounds_and_spread_follow_fan_in() {
        let mlp = Classifier::init(&ClassifierSpec::default(), &mut stream(0, "init"), Device::Cpu);
        for (layer, (fan_in, _)) in mlp.layers.iter().zip(ClassifierSpec::default().layers()) {
            let bound = 1.0 / (fan_in as f64).sqrt();
            for t in [&layer.ws, layer.bs.as_ref().unwrap()] {
                assert!(t.abs().max().double_value(&[]) <= bound);
                if t.numel() < 1000 {
                    continue;
                }
                // U(-b, b) has standard deviation b / sqrt(3).
                let std = t.std(true).double_value(&[]);
                assert!(
                    (std / (bound / 3f64.sqrt()) - 1.0).abs() < 0.1,
                    "std {std}, bound {bound}"
                );
            }
        }
    }

    #[test]
    fn init_is_determined_by_the_rng() {
        let spec = ClassifierSpec::default();
        let a = Classifier::init(&spec, &mut stream(0, "init"), Device::Cpu).flat_parameters();
        let b = Classifier::init(&spec, &mut stream(0, "init"), Device::Cpu).flat_parameters();
        let c = Classifier::init(&spec, &mut stream(1, "init"), Device::Cpu).flat_parameters();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn checkpoint_round_trip_and_duplicate() {
        let spec = ClassifierSpec::default();
        let mlp = Classifier::init(&spec, &mut stream(2, "init"), Device::Cpu);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        mlp.save(&path).unwrap();
        let loaded = Classifier::load(&spec, &path, Device::Cpu).unwrap();
        assert_eq!(loaded.flat_parameters(), mlp.flat_parameters());

        let copy = mlp.duplicate();
        tch::no_grad(|| {
            let _ = copy.layers[0].ws.shallow_clone().fill_(0.0);
        });
        assert_ne!(copy.flat_parameters(), mlp.flat_parameters(), "a copy owns its weights");

        let small = ClassifierSpec { hidden: vec![8], ..spec };
        let err = Classifier::load(&small, &path, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("m.safetensors: cannot load checkpoint")
                && err.contains("mlp 784-8-10 relu"),
            "{err}"
        );
    }

    #[test]
    fn forward_is_relu_mlp() {
        let spec = ClassifierSpec { input: 2, hidden: vec![2], classes: 1, stem: Stem::None };
        let mlp = Classifier::zeros(&spec, Device::Cpu);
        tch::no_grad(|| {
            mlp.layers[0]
                .ws
                .shallow_clone()
                .copy_(&Tensor::from_slice(&[1f32, 0., 0., -1.]).view([2, 2]));
            mlp.layers[1].ws.shallow_clone().copy_(&Tensor::from_slice(&[1f32, 1.]).view([1, 2]));
            let _ = mlp.layers[1].bs.as_ref().unwrap().shallow_clone().fill_(0.5);
        });
        let y = mlp.forward(&Tensor::from_slice(&[2f32, 3., -1., -4.]).view([2, 2]));
        // relu([2, -3]) . [1, 1] + 0.5 = 2.5; relu([-1, 4]) . [1, 1] + 0.5 = 4.5
        assert_eq!(Vec::<f32>::try_from(&y.flatten(0, -1)).unwrap(), vec![2.5, 4.5]);
    }

    #[test]
    fn lenet5_has_pytorchs_shapes_and_names_and_round_trips() {
        let spec = ClassifierSpec::lenet5();
        let cnn = Classifier::init(&spec, &mut stream(0, "init"), Device::Cpu);
        let mut names: Vec<_> =
            cnn.var_store().variables().into_iter().map(|(name, t)| (name, t.size())).collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ("conv1.bias".to_owned(), vec![6]),
                ("conv1.weight".to_owned(), vec![6, 1, 5, 5]),
                ("conv2.bias".to_owned(), vec![16]),
                ("conv2.weight".to_owned(), vec![16, 6, 5, 5]),
                ("fc1.bias".to_owned(), vec![120]),
                ("fc1.weight".to_owned(), vec![120, 400]),
                ("fc2.bias".to_owned(), vec![84]),
                ("fc2.weight".to_owned(), vec![84, 120]),
                ("fc3.bias".to_owned(), vec![10]),
                ("fc3.weight".to_owned(), vec![10, 84]),
            ]
        );
        assert_eq!(cnn.num_parameters(), 61_706, "LeNet-5's parameter count");
        // conv1's bound is 1/sqrt(1 * 5 * 5) = 0.2.
        let w = &cnn.convs[0].ws;
        assert!(w.abs().max().double_value(&[]) <= 0.2 && w.abs().max().double_value(&[]) > 0.15);
        let logits = cnn.forward(&Tensor::zeros([3, 784], (Kind::Float, Device::Cpu)));
        assert_eq!(logits.size(), [3, 10]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        cnn.save(&path).unwrap();
        let loaded = Classifier::load(&spec, &path, Device::Cpu).unwrap();
        assert_eq!(loaded.flat_parameters(), cnn.flat_parameters());
        assert_eq!(cnn.duplicate().flat_parameters(), cnn.flat_parameters());
        assert!(
            Classifier::load(&ClassifierSpec::default(), &path, Device::Cpu).is_err(),
            "not an MLP file"
        );
        assert!(spec.describe().starts_with("cnn lenet5"));
        assert_eq!(
            ClassifierSpec::default().describe(),
            "mlp 784-128-64-10 relu",
            "MLP keys unchanged"
        );
    }
}
