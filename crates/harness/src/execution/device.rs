//! Which device runs an experiment: `device = "auto" | "cpu" | "cuda" | "cuda:N" | "mps"` in
//! the file, `--device` on the command line (which wins). `auto` takes CUDA, then Apple's MPS,
//! then the CPU. Asking for a device the machine does not have is an error that lists the ones
//! it has. The device's kind (`cpu`, `cuda`, `mps`, not the index) enters every cache key:
//! results from different kinds of device are different results.
//!
//! Determinism: on the CPU every run is bit-for-bit reproducible (one thread per job, fixed
//! summation orders). On a GPU it is not: libtorch's deterministic-algorithms switch
//! (`torch.use_deterministic_algorithms`) is not reachable through `tch`'s safe API, and
//! CUDA's atomic adds and cuBLAS's reductions may order sums differently from run to run. So
//! GPU runs say so: their keys carry a `nondeterministic` line and `runs.csv` names their
//! device `cuda (nondeterministic)` or `mps (nondeterministic)`. The cache still reuses them
//! (rerunning gives the cached run, not a fresh draw); cuDNN's benchmark mode, which picks
//! kernels by timing, is switched off.
//!
//! With `cuda` (no index) and several GPUs, each of the `--jobs` workers (one per GPU by
//! default) trains on its own GPU, `cuda:<worker mod GPUs>`: jobs spread over the GPUs
//! whatever their seeds.

use tch::Device;

use crate::experiment::device::Request;

/// What the machine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available {
    pub cuda_devices: usize,
    pub mps: bool,
}

impl Available {
    /// Asks libtorch.
    pub fn probe() -> Self {
        let cuda_devices = if tch::Cuda::is_available() {
            usize::try_from(tch::Cuda::device_count()).unwrap_or(0)
        } else {
            0
        };
        Self { cuda_devices, mps: tch::utils::has_mps() }
    }

    /// `cpu, cuda:0, cuda:1, mps`: what a request can name.
    pub fn list(&self) -> String {
        let mut names = vec!["cpu".to_owned()];
        names.extend((0..self.cuda_devices).map(|i| format!("cuda:{i}")));
        if self.mps {
            names.push("mps".to_owned());
        }
        names.join(", ")
    }
}

/// The device an experiment runs on, and how many GPUs its jobs may spread over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub device: Device,
    /// GPUs available to the jobs (`cuda` without an index: all of them); 0 on the CPU.
    pub gpus: usize,
}

impl Resolved {
    pub const CPU: Resolved = Resolved { device: Device::Cpu, gpus: 0 };

    /// The kind that enters cache keys and `runs.csv`: `cpu`, `cuda` or `mps`.
    pub fn kind(&self) -> &'static str {
        kind(self.device)
    }

    /// The device worker `worker` trains on (on `cuda` with several GPUs, worker `i` takes GPU
    /// `i mod GPUs`, so that `--jobs` workers keep as many GPUs busy).
    pub fn for_worker(&self, worker: usize) -> Device {
        match self.device {
            Device::Cuda(first) if self.gpus > 1 => Device::Cuda(first + worker % self.gpus),
            d => d,
        }
    }

    /// Whether a run here gives the same bits every time: on the CPU only (module doc).
    pub fn deterministic(&self) -> bool {
        self.device == Device::Cpu
    }

    /// The default number of jobs at once: one per GPU, else one per core.
    pub fn default_jobs(&self, cores: usize) -> usize {
        match self.device {
            Device::Cpu => cores,
            _ => self.gpus.max(1),
        }
    }
}

/// The device column of `runs.csv`: the kind, marked where runs are not reproducible.
pub fn label(device: Device) -> String {
    match device {
        Device::Cpu => kind(device).to_owned(),
        d => format!("{} (nondeterministic)", kind(d)),
    }
}

/// The kind of a device: `cpu`, `cuda`, `mps` (or `vulkan`).
pub fn kind(device: Device) -> &'static str {
    match device {
        Device::Cpu => "cpu",
        Device::Cuda(_) => "cuda",
        Device::Mps => "mps",
        Device::Vulkan => "vulkan",
    }
}

/// Resolves `request` against what the machine has.
pub fn resolve(request: Request, available: Available) -> Result<Resolved, String> {
    let missing = |what: &str| {
        format!(
            "asks for {what}, which this machine does not have (it has: {}); use \"auto\" or one of those",
            available.list()
        )
    };
    match request {
        Request::Cpu => Ok(Resolved::CPU),
        Request::Auto if available.cuda_devices > 0 => {
            Ok(Resolved { device: Device::Cuda(0), gpus: available.cuda_devices })
        }
        Request::Auto if available.mps => Ok(Resolved { device: Device::Mps, gpus: 1 }),
        Request::Auto => Ok(Resolved::CPU),
        Request::Cuda(None) if available.cuda_devices > 0 => {
            Ok(Resolved { device: Device::Cuda(0), gpus: available.cuda_devices })
        }
        Request::Cuda(Some(i)) if i < available.cuda_devices => {
            Ok(Resolved { device: Device::Cuda(i), gpus: 1 })
        }
        Request::Cuda(None) => Err(missing("a CUDA device")),
        Request::Cuda(Some(i)) => Err(missing(&format!("cuda:{i}"))),
        Request::Mps if available.mps => Ok(Resolved { device: Device::Mps, gpus: 1 }),
        Request::Mps => Err(missing("Apple's MPS")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU_ONLY: Available = Available { cuda_devices: 0, mps: false };
    const TWO_GPUS: Available = Available { cuda_devices: 2, mps: false };
    const MAC: Available = Available { cuda_devices: 0, mps: true };

    #[test]
    fn parses_every_form_and_rejects_the_rest() {
        for (text, request) in [
            ("auto", Request::Auto),
            ("cpu", Request::Cpu),
            ("cuda", Request::Cuda(None)),
            ("cuda:1", Request::Cuda(Some(1))),
            ("mps", Request::Mps),
        ] {
            assert_eq!(Request::parse(text), Ok(request));
            assert_eq!(request.to_string(), text);
        }
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            assert!(Request::parse(bad).unwrap_err().contains("use \"auto\", \"cpu\""), "{bad}");
        }
    }

    #[test]
    fn auto_prefers_cuda_then_mps_then_cpu() {
        assert_eq!(resolve(Request::Auto, CPU_ONLY), Ok(Resolved::CPU));
        assert_eq!(resolve(Request::Auto, TWO_GPUS).unwrap().device, Device::Cuda(0));
        assert_eq!(resolve(Request::Auto, MAC).unwrap().device, Device::Mps);
        let both = Available { cuda_devices: 1, mps: true };
        assert_eq!(resolve(Request::Auto, both).unwrap().kind(), "cuda");
    }

    #[test]
    fn missing_devices_are_errors_that_list_what_there_is() {
        let err = resolve(Request::Cuda(None), CPU_ONLY).unwrap_err();
        assert!(err.contains("a CUDA device") && err.contains("it has: cpu)"), "{err}");
        let err = resolve(Request::Mps, TWO_GPUS).unwrap_err();
        assert!(err.contains("MPS") && err.contains("it has: cpu, cuda:0, cuda:1)"), "{err}");
        let err = resolve(Request::Cuda(Some(2)), TWO_GPUS).unwrap_err();
        assert!(err.contains("cuda:2"), "{err}");
        assert_eq!(resolve(Request::Cpu, CPU_ONLY), Ok(Resolved::CPU));
    }

    #[test]
    fn jobs_spread_over_gpus_one_each_by_default() {
        let all = resolve(Request::Cuda(None), TWO_GPUS).unwrap();
        assert_eq!(
            (all.default_jobs(8), all.for_worker(0), all.for_worker(3)),
            (2, Device::Cuda(0), Device::Cuda(1))
        );
        let one = resolve(Request::Cuda(Some(1)), TWO_GPUS).unwrap();
        assert_eq!((one.default_jobs(8), one.for_worker(5)), (1, Device::Cuda(1)));
        assert!(Resolved::CPU.deterministic() && !all.deterministic() && !one.deterministic());
        assert_eq!(
            (label(Device::Cpu), label(Device::Cuda(1))),
            ("cpu".to_owned(), "cuda (nondeterministic)".to_owned())
        );
        assert_eq!(Resolved::CPU.default_jobs(8), 8);
        assert_eq!(resolve(Request::Mps, MAC).unwrap().default_jobs(8), 1);
    }
}
