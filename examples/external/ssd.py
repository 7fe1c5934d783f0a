"""Selective Synaptic Dampening (Foster, Schoepf and Brintrup, "Fast Machine Unlearning
Without Retraining Through Selective Synaptic Dampening", AAAI 2024): no training. The
importance of each parameter is its squared gradient of the cross-entropy, averaged over the
batches of a dataset (a diagonal Fisher estimate), on the whole training set (D) and on the
forget set (Df). Parameters far more important to the forget set, I_Df > alpha * I_D, are
dampened: multiplied by min(lambda * I_D / I_Df, 1). Parameters (job["params"]): alpha
(default 10), lambda (1), batch_size (64), the paper's defaults."""

import numpy as np

from unlearn_job import MLP, dataset, load_job, save_torch, split, torch_setup

job = load_job()
torch = torch_setup(job)
params = {"alpha": 10.0, "lambda": 1.0, "batch_size": 64, **job["params"]}
train_x, train_y, _, _ = dataset(job)
remain, forget = split(job)
model = MLP(job)
loss_fn = torch.nn.CrossEntropyLoss()


def importance(indices):
    """Mean over batches of each parameter's squared gradient, in index order."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    x, y = torch.from_numpy(train_x[indices]), torch.from_numpy(train_y[indices])
    batches = 0
    for start in range(0, len(x), params["batch_size"]):
        model.zero_grad()
        end = start + params["batch_size"]
        loss_fn(model(x[start:end]), y[start:end]).backward()
        for n, p in model.named_parameters():
            total[n] += p.grad.detach() ** 2
        batches += 1
    return {n: t / batches for n, t in total.items()}


on_all = importance(np.sort(np.concatenate([remain, forget])))
on_forget = importance(forget)
with torch.no_grad():
    for n, p in model.named_parameters():
        selected = on_forget[n] > params["alpha"] * on_all[n]
        factor = (params["lambda"] * on_all[n] / on_forget[n]).clamp(max=1.0)
        p[selected] *= factor[selected]
save_torch(job, model)
