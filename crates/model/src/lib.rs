//! The classifier being unlearned: a multi-layer perceptron (`784-128-64-10` with ReLU by
//! default) over a tch [`VarStore`], with
//! - an initialisation identical in distribution to PyTorch's `nn.Linear` (weights and biases
//!   uniform in `+-1/sqrt(fan_in)`), drawn from the run's own RNG rather than libtorch's
//!   process-global generator, so that parallel jobs stay reproducible;
//! - checkpoints as safetensors with PyTorch's `state_dict` names (`fc1.weight`, `fc1.bias`,
//!   ...), stable across versions of this crate.
//!
//! ```no_run
//! let spec = model::MlpSpec::default();
//! let mlp = model::Mlp::init(&spec, &mut data::rng::stream(0, "init"), tch::Device::Cpu);
//! let logits = mlp.forward(&tch::Tensor::zeros([2, 784], (tch::Kind::Float, tch::Device::Cpu)));
//! assert_eq!(logits.size(), [2, 10]);
//! ```

use std::path::Path;

use rand::distr::{Distribution, Uniform};
use tch::{Device, Kind, Tensor, nn};

/// Layer sizes: `input -> hidden[0] -> ... -> classes`, ReLU between layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlpSpec {
    pub input: usize,
    pub hidden: Vec<usize>,
    pub classes: usize,
}

impl Default for MlpSpec {
    /// The notebook's `MNISTClassifier`.
    fn default() -> Self {
        Self { input: 28 * 28, hidden: vec![128, 64], classes: 10 }
    }
}

impl MlpSpec {
    /// `(fan_in, fan_out)` of each layer, in order.
    pub fn layers(&self) -> Vec<(usize, usize)> {
        let sizes: Vec<usize> = std::iter::once(self.input)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.classes))
            .collect();
        sizes.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// A stable description, e.g. `mlp 784-128-64-10 relu`, for cache keys.
    pub fn describe(&self) -> String {
        let sizes: Vec<String> = std::iter::once(self.input)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.classes))
            .map(|n| n.to_string())
            .collect();
        format!("mlp {} relu", sizes.join("-"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: cannot save checkpoint: {source}")]
    Save { path: String, source: tch::TchError },
    #[error(
        "{path}: cannot load checkpoint (missing, corrupt, or another architecture than {arch}): {source}"
    )]
    Load { path: String, arch: String, source: tch::TchError },
}

/// An MLP with its parameters.
#[derive(Debug)]
pub struct Mlp {
    spec: MlpSpec,
    vs: nn::VarStore,
    layers: Vec<nn::Linear>,
}

impl Mlp {
    /// Parameters set to zero: a shape to load a checkpoint into or copy weights onto.
    pub fn zeros(spec: &MlpSpec, device: Device) -> Self {
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
        Self { spec: spec.clone(), vs, layers }
    }

    /// PyTorch's `nn.Linear` initialisation, drawn from `rng`: for each layer in order, its
    /// weight (row-major, `fan_out x fan_in`) then its bias, all `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
    /// (`kaiming_uniform_(a = sqrt(5))` gives exactly that bound for the weights.)
    pub fn init(spec: &MlpSpec, rng: &mut data::rng::Rng, device: Device) -> Self {
        let mlp = Self::zeros(spec, device);
        tch::no_grad(|| {
            for (layer, &(fan_in, fan_out)) in mlp.layers.iter().zip(&spec.layers()) {
                let bound = 1.0 / (fan_in as f32).sqrt();
                let dist = Uniform::new(-bound, bound).expect("finite, non-empty range");
                let mut draw =
                    |n: usize| -> Vec<f32> { dist.sample_iter(&mut *rng).take(n).collect() };
                let w = Tensor::from_slice(&draw(fan_in * fan_out))
                    .view([fan_out as i64, fan_in as i64]);
                let b = Tensor::from_slice(&draw(fan_out));
                layer.ws.shallow_clone().copy_(&w.to_device(device));
                layer
                    .bs
                    .as_ref()
                    .expect("layers have biases")
                    .shallow_clone()
                    .copy_(&b.to_device(device));
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
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x.shallow_clone(), |h, (i, layer)| {
            let h = h.apply(layer);
            if i < last { h.relu() } else { h }
        })
    }

    pub fn spec(&self) -> &MlpSpec {
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

    /// Saves the parameters as safetensors (`path` should end in `.safetensors`).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.vs
            .save(path)
            .map_err(|source| ModelError::Save { path: path.display().to_string(), source })
    }

    /// Loads a checkpoint written by [`Mlp::save`] for the same `spec`.
    pub fn load(spec: &MlpSpec, path: &Path, device: Device) -> Result<Self, ModelError> {
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
        for layer in &self.layers {
            for t in [&layer.ws, layer.bs.as_ref().expect("layers have biases")] {
                let t = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
                out.extend(Vec::<f32>::try_from(&t).expect("float tensor"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data::rng::stream;

    #[test]
    fn shapes_and_names_match_pytorch() {
        let mlp = Mlp::init(&MlpSpec::default(), &mut stream(0, "init"), Device::Cpu);
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
    fn init_bounds_and_spread_follow_fan_in() {
        let mlp = Mlp::init(&MlpSpec::default(), &mut stream(0, "init"), Device::Cpu);
        for (layer, (fan_in, _)) in mlp.layers.iter().zip(MlpSpec::default().layers()) {
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
        let spec = MlpSpec::default();
        let a = Mlp::init(&spec, &mut stream(0, "init"), Device::Cpu).flat_parameters();
        let b = Mlp::init(&spec, &mut stream(0, "init"), Device::Cpu).flat_parameters();
        let c = Mlp::init(&spec, &mut stream(1, "init"), Device::Cpu).flat_parameters();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn checkpoint_round_trip_and_duplicate() {
        let spec = MlpSpec::default();
        let mlp = Mlp::init(&spec, &mut stream(2, "init"), Device::Cpu);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        mlp.save(&path).unwrap();
        let loaded = Mlp::load(&spec, &path, Device::Cpu).unwrap();
        assert_eq!(loaded.flat_parameters(), mlp.flat_parameters());

        let copy = mlp.duplicate();
        tch::no_grad(|| {
            let _ = copy.layers[0].ws.shallow_clone().fill_(0.0);
        });
        assert_ne!(copy.flat_parameters(), mlp.flat_parameters(), "a copy owns its weights");

        let small = MlpSpec { hidden: vec![8], ..spec };
        let err = Mlp::load(&small, &path, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("m.safetensors: cannot load checkpoint")
                && err.contains("mlp 784-8-10 relu"),
            "{err}"
        );
    }

    #[test]
    fn forward_is_relu_mlp() {
        let spec = MlpSpec { input: 2, hidden: vec![2], classes: 1 };
        let mlp = Mlp::zeros(&spec, Device::Cpu);
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
}
