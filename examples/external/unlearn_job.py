"""Reading an unlearn-bench job folder and writing its answer (docs/external-methods.md).

The harness runs `<command> <job folder>/job.json`. The folder holds the original model
(`original.safetensors`, PyTorch `state_dict` names), the split (`remain.npy`, `forget.npy`:
int64 indices into the training set) and `job.json`; the command writes the unlearned model
to `job["output"]` and exits 0. Only numpy and safetensors are needed to read and write these
files; `torch_data` and `MLP` are for methods written in PyTorch.
"""

import json
import sys

import numpy as np
from safetensors.numpy import load_file, save_file


def load_job(argv=None):
    """The job description, from the path the harness passes as the last argument."""
    argv = sys.argv if argv is None else argv
    with open(argv[-1]) as f:
        return json.load(f)


def load_idx(path):
    """An IDX file (MNIST's format) as a uint8 array: images [n, 28, 28] or labels [n]."""
    with open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def dataset(job):
    """(train_x, train_y, test_x, test_y): images normalised as the harness normalises them,
    (pixel / 255 - mean) / std in float32, flattened to [n, 784]; labels int64."""
    d = job["dataset"]

    def images(path, limit):
        x = load_idx(path)[:limit].reshape(-1, 28 * 28).astype(np.float32) / np.float32(255)
        return (x - np.float32(d["mean"])) / np.float32(d["std"])

    def labels(path, limit):
        return load_idx(path)[:limit].astype(np.int64)

    return (
        images(d["train_images"], d["train_limit"]),
        labels(d["train_labels"], d["train_limit"]),
        images(d["test_images"], d["test_limit"]),
        labels(d["test_labels"], d["test_limit"]),
    )


def split(job):
    """(remain, forget): int64 indices into the training set."""
    return np.load(job["remain"]), np.load(job["forget"])


def load_original_numpy(job):
    """The original model's parameters as numpy arrays, by `state_dict` name."""
    return load_file(job["original"])


def save_numpy(job, tensors):
    """Writes the unlearned model from numpy arrays (float32, the original's names)."""
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
              job["output"])


def torch_setup(job):
    """PyTorch on the job's thread count; returns the torch module."""
    import torch

    torch.set_num_threads(job["threads"])
    return torch


def MLP(job):
    """The harness's MLP (input - hidden... - classes, ReLU) as a torch module whose
    `state_dict` names are the checkpoint's (fc1, fc2, ...), loaded with the original."""
    import torch
    from torch import nn
    from safetensors.torch import load_file as load_torch

    spec = job["model"]
    sizes = [spec["input"], *spec["hidden"], spec["classes"]]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
                setattr(self, f"fc{i + 1}", nn.Linear(a, b))
            self.depth = len(sizes) - 1

        def forward(self, x):
            for i in range(1, self.depth):
                x = torch.relu(getattr(self, f"fc{i}")(x))
            return getattr(self, f"fc{self.depth}")(x)

    net = Net()
    net.load_state_dict(load_torch(job["original"]))
    return net


def save_torch(job, model):
    """Writes the unlearned model from a torch module."""
    from safetensors.torch import save_file as save_torch_file

    save_torch_file({k: v.detach().float().contiguous() for k, v in model.state_dict().items()},
                    job["output"])
