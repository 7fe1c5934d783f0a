use data::Mnist;
use data::split::ForgetSplit;
use tch::{Device, Kind, Tensor};

/// One job's tensors: the training and test sets as `[n, dim]` float / `[n]` int64 tensors,
/// and the remain and forget sets as index lists into the training set (batches are gathered
/// by index, so the remain set costs no second copy of the images).
#[derive(Debug)]
pub struct Data {
    pub train_x: Tensor,
    pub train_y: Tensor,
    pub test_x: Tensor,
    pub test_y: Tensor,
    remain: Vec<i64>,
    forget: Vec<i64>,
    pub(crate) remain_index: Tensor,
    pub(crate) forget_index: Tensor,
}

impl Data {
    pub fn new(mnist: &Mnist, split: &ForgetSplit, device: Device) -> Self {
        let (train_x, train_y) = to_tensors(&mnist.train, device);
        let (test_x, test_y) = to_tensors(&mnist.test, device);
        let as_i64 = |v: &[usize]| v.iter().map(|&i| i as i64).collect::<Vec<_>>();
        let (remain, forget) = (as_i64(&split.remain), as_i64(&split.forget));
        Self {
            remain_index: Tensor::from_slice(&remain).to_device(device),
            forget_index: Tensor::from_slice(&forget).to_device(device),
            train_x,
            train_y,
            test_x,
            test_y,
            remain,
            forget,
        }
    }

    pub fn remain(&self) -> &[i64] {
        &self.remain
    }

    pub fn forget(&self) -> &[i64] {
        &self.forget
    }

    pub(crate) fn all_train(&self) -> Vec<i64> {
        (0..self.train_y.size()[0]).collect()
    }

    pub fn device(&self) -> Device {
        self.train_x.device()
    }
}

fn to_tensors(d: &data::Dataset, device: Device) -> (Tensor, Tensor) {
    let x = Tensor::from_slice(&d.features).view([d.len() as i64, d.dim as i64]).to_device(device);
    let y = Tensor::from_slice(&d.labels).to_kind(Kind::Int64).to_device(device);
    (x, y)
}
