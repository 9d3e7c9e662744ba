#!/usr/bin/env python3
"""Writes Tests/LockstepTests/Fixtures/resnet-step.h5: one training step of a tiny ResNet in PyTorch.

The model is the one Lockstep builds from
    conv2d 4@3x3 pad 1 (no bias) - batchnorm (relu) - residual 6 stride 2 (projection)
    - residual 6 (identity) - dropout 0 - globalavgpool - dense 3
with BatchNorm statistics over the whole batch as one group (Lockstep: stats = "group",
group = the batch). Module names follow Lockstep's checkpoint paths, so a Lockstep tensor
"block0/conv1/weight" is state_dict()["block0.conv1.weight"] here.

The file holds the inputs (x, labels), the initial parameters (under /initial, γ and β drawn off
1 and 0 so their gradients are exercised), the logits and loss of the training forward, every
gradient (/gradients), the parameters after one SGD step (lr 0.1, momentum 0.9, weight decay
1e-3 on conv/dense weights only, as Lockstep) under /updated, and the running statistics after it
(/running). Run it with torch and h5py installed:  python3 scripts/reference/resnet_step.py
"""
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lockstep_modules import Block

torch.manual_seed(0)
torch.set_default_dtype(torch.float32)
BATCH, LR, MOMENTUM, DECAY = 8, 0.1, 0.9, 1e-3


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(2, 4, 3, 1, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(4)
        self.block0 = Block(4, 6, 2)
        self.block1 = Block(6, 6, 1)
        self.dense0 = nn.Linear(6, 3)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv0(x)))
        x = self.block1(self.block0(x))
        return self.dense0(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "Tests", "LockstepTests", "Fixtures", "resnet-step.h5")
    net = Net()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "bn" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.3 * (2 * torch.rand_like(p) - 1))
    x = torch.randn(BATCH, 2, 6, 6)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1])
    initial = {k: v.detach().clone() for k, v in net.named_parameters()}

    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in net.named_parameters()}
    decay = [p for k, p in net.named_parameters() if k.endswith("weight") and "bn" not in k]
    rest = [p for k, p in net.named_parameters() if not (k.endswith("weight") and "bn" not in k)]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": DECAY}, {"params": rest, "weight_decay": 0}],
                          lr=LR, momentum=MOMENTUM)
    opt.step()

    def path(k):
        return k.replace(".", "/")

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with h5py.File(out, "w") as f:
        f["x"] = x.numpy()
        f["labels"] = labels.numpy().astype(np.int32)
        f["logits"] = logits.detach().numpy()
        f["loss"] = np.float64(loss.item())
        for k, v in initial.items():
            f["initial/" + path(k)] = v.numpy()
        for k, v in grads.items():
            f["gradients/" + path(k)] = v.numpy()
        for k, p in net.named_parameters():
            f["updated/" + path(k)] = p.detach().numpy()
        for k, v in net.state_dict().items():
            if "running" in k:
                f["running/" + path(k)] = v.numpy()
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["lr"], f.attrs["momentum"], f.attrs["weight_decay"] = LR, MOMENTUM, DECAY
    print("wrote", out)


if __name__ == "__main__":
    main()
