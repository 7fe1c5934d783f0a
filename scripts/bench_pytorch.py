#!/usr/bin/env python3
"""The benchmark's PyTorch side: the same work as `harness bench`, as a best-practice PyTorch
loop (the whole set as one in-memory tensor, randperm batches of 64, torch.optim.Adam,
evaluation in large batches under no_grad), with the torch that scripts/setup installs.

    python scripts/bench_pytorch.py --data data/MNIST/raw --threads 1 --epochs 3

prints one JSON object: seconds per training epoch (60,000 images), per MI-unlearn epoch
(288 steps of remain batch 64 + forget batch 16) and per evaluation of remain + forget + test
(medians over epochs / repeats; the first epoch is a warm-up and not counted).
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path: Path, magic: int) -> torch.Tensor:
    raw = path.read_bytes()
    assert int.from_bytes(raw[:4], "big") == magic, f"{path}: bad magic number"
    ndims = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndims)]
    data = torch.frombuffer(bytearray(raw[4 + 4 * ndims:]), dtype=torch.uint8)
    return data.view(*dims)


def load(root: Path):
    def images(name):
        x = read_idx(root / name, 2051).float().div(255).view(-1, 784)
        return (x - 0.1307) / 0.3081
    train_x, test_x = images("train-images-idx3-ubyte"), images("t10k-images-idx3-ubyte")
    train_y = read_idx(root / "train-labels-idx1-ubyte", 2049).long()
    test_y = read_idx(root / "t10k-labels-idx1-ubyte", 2049).long()
    return train_x, train_y, test_x, test_y


def mlp():
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def mutual_information(logits, z, eps=1e-10):
    p = torch.softmax(logits, dim=1).clamp(eps, 1 - eps)
    n = p.shape[0]
    p_z1 = z.mean()
    p_z0 = 1 - p_z1
    j1 = (p * z.unsqueeze(1)).sum(0) / n
    j0 = (p * (1 - z).unsqueeze(1)).sum(0) / n
    p_y = j0 + j1
    return (j1 * torch.log(j1 / (p_y * p_z1 + eps) + eps)).sum() + (j0 * torch.log(j0 / (p_y * p_z0 + eps) + eps)).sum()


def train_epoch(model, opt, x, y, batch=64):
    perm = torch.randperm(x.shape[0])
    total = torch.zeros(())
    for i in range(0, x.shape[0], batch):
        idx = perm[i:i + batch]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    return total.item()


def mi_epoch(model, opt, x, y, remain, forget, gamma=4.0):
    r = remain[torch.randperm(remain.shape[0])]
    f = forget[torch.randperm(forget.shape[0])]
    steps = min((r.shape[0] + 63) // 64, (f.shape[0] + 15) // 16)
    total = torch.zeros(())
    for i in range(steps):
        ri, fi = r[i * 64:(i + 1) * 64], f[i * 16:(i + 1) * 16]
        xr, yr, xf = x[ri], y[ri], x[fi]
        ce = F.cross_entropy(model(xr), yr)
        z = torch.cat([torch.zeros(len(ri) + len(fi)), torch.ones(len(ri))])
        mi = mutual_information(model(torch.cat([xr, xf, xr])), z)
        loss = ce + gamma * mi
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    return total.item()


@torch.no_grad()
def evaluate(model, x, y, remain, forget, test_x, test_y):
    ok = torch.cat([model(x[i:i + 8192]).argmax(1) for i in range(0, x.shape[0], 8192)]) == y
    test_ok = model(test_x).argmax(1) == test_y
    return ok[remain].float().mean().item(), ok[forget].float().mean().item(), test_ok.float().mean().item()


def timed(f, repeats):
    f()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="data/MNIST/raw", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up epoch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y, test_x, test_y = load(args.data)
    threes = (y == 3).nonzero().squeeze(1)
    forget = threes[torch.randperm(threes.shape[0])[: int(0.75 * threes.shape[0])]]
    mask = torch.ones(x.shape[0], dtype=torch.bool)
    mask[forget] = False
    remain = mask.nonzero().squeeze(1)

    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = timed(lambda: train_epoch(model, opt, x, y), args.epochs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mi = timed(lambda: mi_epoch(model, opt, x, y, remain, forget), args.epochs)
    ev = timed(lambda: evaluate(model, x, y, remain, forget, test_x, test_y), 5)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": args.threads,
        "train_epoch_s": train,
        "mi_epoch_s": mi,
        "eval_s": ev,
    }))


if __name__ == "__main__":
    main()
