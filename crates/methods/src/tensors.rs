use std::cell::OnceCell;
use std::sync::{Arc, OnceLock};

use data::Mnist;
use data::split::ForgetSplit;
use tch::{Device, Kind, Tensor};

use crate::native::SparseRows;

/// The dataset, held once per process and shared by every job (plain Rust, so `Sync`): the
/// images as loaded, and the native engine's sparse form of them, built on first use.
#[derive(Debug)]
pub struct Images {
    mnist: Arc<Mnist>,
    sparse: OnceLock<(SparseRows, SparseRows)>,
}

impl Images {
    pub fn new(mnist: Arc<Mnist>) -> Arc<Self> {
        Arc::new(Self { mnist, sparse: OnceLock::new() })
    }

    pub fn mnist(&self) -> &Mnist {
        &self.mnist
    }

    /// The training and test images as [`SparseRows`] around one background value (the
    /// training set's most common value).
    pub(crate) fn sparse(&self) -> &(SparseRows, SparseRows) {
        self.sparse.get_or_init(|| {
            let (train, test) = (&self.mnist.train, &self.mnist.test);
            let train = SparseRows::new(&train.features, train.dim);
            let test = SparseRows::with_background(&test.features, test.dim, train.background);
            (train, test)
        })
    }
}

/// One job's view of the data: the shared [`Images`], the job's remain and forget sets as
/// index lists into the training set (batches are gathered by index, so the remain set costs
/// no second copy of the images), and, for the libtorch engines only, the sets as tensors on
/// the job's device, made on first use.
#[derive(Debug)]
pub struct Data {
    images: Arc<Images>,
    device: Device,
    remain: Vec<i64>,
    forget: Vec<i64>,
    tensors: OnceCell<Tensors>,
}

/// The training and test sets as `[n, dim]` float / `[n]` int64 tensors.
#[derive(Debug)]
pub(crate) struct Tensors {
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
}

impl Data {
    pub fn new(images: &Arc<Images>, split: &ForgetSplit, device: Device) -> Self {
        let as_i64 = |v: &[usize]| v.iter().map(|&i| i as i64).collect::<Vec<_>>();
        Self {
            images: images.clone(),
            device,
            remain: as_i64(&split.remain),
            forget: as_i64(&split.forget),
            tensors: OnceCell::new(),
        }
    }

    pub fn images(&self) -> &Images {
        &self.images
    }

    pub fn remain(&self) -> &[i64] {
        &self.remain
    }

    pub fn forget(&self) -> &[i64] {
        &self.forget
    }

    pub(crate) fn all_train(&self) -> Vec<i64> {
        (0..self.images.mnist.train.len() as i64).collect()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub(crate) fn tensors(&self) -> &Tensors {
        self.tensors.get_or_init(|| {
            let mnist = &self.images.mnist;
            let (train_x, train_y) = to_tensors(&mnist.train, self.device);
            let (test_x, test_y) = to_tensors(&mnist.test, self.device);
            Tensors { train_x, train_y, test_x, test_y }
        })
    }
}

fn to_tensors(d: &data::Dataset, device: Device) -> (Tensor, Tensor) {
    let x = Tensor::from_slice(&d.features).view([d.len() as i64, d.dim as i64]).to_device(device);
    let y = Tensor::from_slice(&d.labels).to_kind(Kind::Int64).to_device(device);
    (x, y)
}
