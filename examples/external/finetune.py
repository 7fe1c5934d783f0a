"""The notebook's fine-tuning in plain PyTorch: Adam (lr 1e-3) on the remain set in
shuffled batches of 64 (the last one partial), `epochs` epochs (default 5), from the
original. Parameters (job["params"]): epochs, lr, batch_size."""

from unlearn_job import MLP, dataset, load_job, save_torch, split, torch_setup

job = load_job()
torch = torch_setup(job)
params = {"epochs": 5, "lr": 1e-3, "batch_size": 64, **job["params"]}
train_x, train_y, _, _ = dataset(job)
remain, _ = split(job)
x, y = torch.from_numpy(train_x[remain]), torch.from_numpy(train_y[remain])

# Its own random stream per seed and replicate (not the harness's: another implementation).
generator = torch.Generator().manual_seed(1_000_003 * job["seed"] + job["replicate"])
model = MLP(job)
optimizer = torch.optim.Adam(model.parameters(), lr=params["lr"])
loss_fn = torch.nn.CrossEntropyLoss()
losses = []
for _ in range(params["epochs"]):
    order = torch.randperm(len(x), generator=generator)
    total, batches = 0.0, 0
    for start in range(0, len(x), params["batch_size"]):
        batch = order[start : start + params["batch_size"]]
        optimizer.zero_grad()
        loss = loss_fn(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
        total, batches = total + loss.item(), batches + 1
    losses.append(total / batches)
save_torch(job, model)
# Optional: each epoch's mean loss, which the harness records as the run's final loss.
with open(job["losses"], "w") as f:
    f.write("epoch,loss\n" + "".join(f"{e},{l!r}\n" for e, l in enumerate(losses, 1)))
