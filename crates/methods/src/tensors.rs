use std::cell::OnceCell;
use std::sync::{Arc, Mutex, OnceLock};

use data::ImageDataset;
use data::split::ForgetSplit;
use tch::{Device, Kind, Tensor};

use crate::sparse::SparseRows;

/// The dataset, held once per process and shared by every job: the images as loaded, the
/// native engine's sparse form of them, and the autograd engine's tensors on each device in
/// use, each built on first use. (Tensors are `Send` but not `Sync`: jobs take shallow
/// clones, which share the storage, under the lock.)
#[derive(Debug)]
pub struct Images {
    mnist: Arc<ImageDataset>,
    sparse: OnceLock<(SparseRows, SparseRows)>,
    on_device: Mutex<Vec<(Device, Tensors)>>,
}

impl Images {
    pub fn new(mnist: Arc<ImageDataset>) -> Arc<Self> {
        Arc::new(Self { mnist, sparse: OnceLock::new(), on_device: Mutex::new(Vec::new()) })
    }

    /// The training and test sets as tensors on `device`, made once per process and device.
    fn tensors_on(&self, device: Device) -> Tensors {
        let mut held = self.on_device.lock().expect("no job panics while copying data");
        if let Some((_, t)) = held.iter().find(|(d, _)| *d == device) {
            return t.shallow_clone();
        }
        let (train_x, train_y) = to_tensors(&self.mnist.train, device);
        let (test_x, test_y) = to_tensors(&self.mnist.test, device);
        let t = Tensors { train_x, train_y, test_x, test_y };
        let copy = t.shallow_clone();
        held.push((device, t));
        copy
    }

    pub fn dataset(&self) -> &ImageDataset {
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
/// no second copy of the images), and, for the autograd engine only, the sets as tensors on
/// the job's device (shared with every job on that device through [`Images`]).
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

impl Tensors {
    fn shallow_clone(&self) -> Self {
        Self {
            train_x: self.train_x.shallow_clone(),
            train_y: self.train_y.shallow_clone(),
            test_x: self.test_x.shallow_clone(),
            test_y: self.test_y.shallow_clone(),
        }
    }
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

    /// Every training sample the job may see, ascending: the remain and forget sets together
    /// (the whole training set, or a U-LiRA shadow's half of it).
    pub(crate) fn all_train(&self) -> Vec<i64> {
        let mut all = [&self.remain[..], &self.forget[..]].concat();
        all.sort_unstable();
        all
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub(crate) fn tensors(&self) -> &Tensors {
        self.tensors.get_or_init(|| self.images.tensors_on(self.device))
    }
}

fn to_tensors(d: &data::Samples, device: Device) -> (Tensor, Tensor) {
    let x = Tensor::from_slice(&d.features).view([d.len() as i64, d.dim as i64]).to_device(device);
    let y = Tensor::from_slice(&d.labels).to_kind(Kind::Int64).to_device(device);
    (x, y)
}
