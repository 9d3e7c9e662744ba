"""The PyTorch peer of `lockstep bench`: the models of jobs/fashion-mlp.toml (784-256-128-10, ReLU)
or jobs/fashion-cnn.toml (conv 16@3x3 pad 1, ReLU, maxpool 2, conv 32@3x3 pad 1, ReLU, maxpool 2,
dense 128, dense 10) or jobs/fashion-resnet.toml (stem conv 24@3x3 without bias + BN + ReLU, basic
blocks at 24, 48 (stride 2), 96 (stride 2) with projection shortcuts, global average pool, dense 10;
BatchNorm over each process's batch, as DDP does), batch 128, SGD with Nesterov momentum 0.9 and weight decay 5e-4, float32,
on CPU with one thread per process, on 1 process or on N processes with DistributedDataParallel
over gloo. Prints the step time in ms (the second half of the steps, the slowest rank's time)."""
import argparse, os, time
import h5py, numpy as np, torch, torch.distributed as dist, torch.multiprocessing as mp

def load(path, image, split="train", stats=None):
    with h5py.File(path, "r") as f:
        x = f[f"{split}/x"][:].reshape(-1, 1, 28, 28) if image else f[f"{split}/x"][:].reshape(-1, 784)
        x = x.astype(np.float32)
        y = f[f"{split}/y"][:].astype(np.int64)
    x /= 255.0
    mean, std = stats or (x.mean(), x.std())
    x = (x - mean) / std                  # data.normalization = "standardize" (training-set statistics)
    return torch.from_numpy(x), torch.from_numpy(y), (mean, std)

class Block(torch.nn.Module):
    """He et al.'s basic block, as Lockstep's { type = "residual", channels = cout, stride = stride }."""
    def __init__(self, cin, cout, stride):
        super().__init__()
        nn = torch.nn
        self.main = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return torch.relu(self.main(x) + self.shortcut(x))

def model(kind):
    if kind == "resnet":
        nn = torch.nn
        return nn.Sequential(nn.Conv2d(1, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
                             Block(24, 24, 1), Block(24, 48, 2), Block(48, 96, 2),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10))
    if kind == "cnn":
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(32 * 7 * 7, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                               torch.nn.ReLU(), torch.nn.Linear(128, 10))

def train(rank, ranks, args):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    if ranks > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29517")
        dist.init_process_group("gloo", rank=rank, world_size=ranks)
    x, y, stats = load(args.data, args.model != "mlp")
    net = model(args.model)
    if ranks > 1:
        net = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    local = args.batch // ranks
    if args.target:
        return train_to(rank, ranks, args, net, opt, loss_fn, x, y, stats, local)
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(1))
    half = args.steps // 2
    for step in range(2 * half):
        if step == half:
            if ranks > 1: dist.barrier()
            start = time.perf_counter()
        start_row = (step * args.batch + rank * local) % (x.shape[0] - args.batch)
        idx = order[start_row:start_row + local]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    if ranks > 1: dist.barrier()
    seconds = torch.tensor([time.perf_counter() - start])
    if ranks > 1:
        dist.all_reduce(seconds, op=dist.ReduceOp.MAX)
        dist.destroy_process_group()
    if rank == 0:
        print(f"{1e3 * seconds.item() / half:.3f}")

def train_to(rank, ranks, args, net, opt, loss_fn, x, y, stats, local):
    """The job's schedule (cosine decay over `epochs`, a new permutation per epoch), evaluating on
    the test set after every epoch; prints the training seconds (evaluation excluded) until the
    test accuracy first reaches `target`, or "not reached"."""
    tx, ty, _ = load(args.data, args.model != "mlp", "test", stats)
    steps_per_epoch = x.shape[0] // args.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps_per_epoch)
    trained = 0.0
    for epoch in range(args.epochs):
        order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(1000 + epoch))
        if ranks > 1: dist.barrier()
        start = time.perf_counter()
        net.train()
        for step in range(steps_per_epoch):
            idx = order[step * args.batch + rank * local: step * args.batch + (rank + 1) * local]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
        if ranks > 1: dist.barrier()
        trained += time.perf_counter() - start
        net.eval()
        with torch.no_grad():
            accuracy = (net(tx).argmax(1) == ty).float().mean().item()
        if accuracy >= args.target:
            if rank == 0: print(f"{trained:.1f} s, epoch {epoch + 1}, test accuracy {100 * accuracy:.2f} %")
            break
    else:
        if rank == 0: print(f"not reached in {args.epochs} epochs ({trained:.1f} s)")
    if ranks > 1: dist.destroy_process_group()

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["mlp", "cnn", "resnet"], default="mlp")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--data", default="data/fashion-mnist.h5")
    p.add_argument("--target", type=float, default=None, help="train with the job's schedule until this test accuracy")
    p.add_argument("--epochs", type=int, default=12)
    args = p.parse_args()
    if args.ranks == 1: train(0, 1, args)
    else: mp.spawn(train, args=(args.ranks, args), nprocs=args.ranks)
