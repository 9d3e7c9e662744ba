#!/usr/bin/env python3
"""Loads a Lockstep checkpoint into the equivalent torch.nn model, by the names docs/checkpoints.md
documents, and evaluates it on a dataset's test split:

    python3 scripts/reference/load_checkpoint.py CHECKPOINT [DATA]

The model is rebuilt from the checkpoint's own resolved config (its `config` attribute): dense,
conv2d, maxpool, avgpool, globalavgpool, batchnorm, dropout and basic residual blocks. Every
tensor under /model is a state_dict() key with "/" for "." (strict, apart from BatchNorm's
num_batches_tracked, which Lockstep does not keep). Prints the test accuracy, which should equal
the run's own last evaluation of that checkpoint. Needs torch, h5py and numpy.
"""
import sys
import tomllib

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lockstep_modules import Block


class Net(nn.Module):
    """The layers of a job's [model] in order, each named as Lockstep names it (kind + index)."""

    def __init__(self, layers, sample_shape):
        super().__init__()
        self.steps = []
        shape = list(sample_shape) if len(sample_shape) != 2 else [1] + list(sample_shape)
        counts = {}

        def name(prefix):
            counts[prefix] = counts.get(prefix, -1) + 1
            return f"{prefix}{counts[prefix]}"

        for i, layer in enumerate(layers):
            kind = layer.get("type", "dense")
            relu = layer.get("activation", "identity" if i == len(layers) - 1 else "relu") == "relu"
            if kind == "dense":
                module = nn.Linear(int(np.prod(shape)), layer["units"], bias=layer.get("bias", True))
                self.add(name("dense"), module, flatten=True)
                shape = [layer["units"]]
            elif kind == "conv2d":
                k, s, p = layer["kernel"], layer.get("stride", 1), layer.get("padding", 0)
                module = nn.Conv2d(shape[0], layer["channels"], k, s, p, bias=layer.get("bias", True))
                self.add(name("conv"), module)
                shape = [layer["channels"], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
            elif kind in ("maxpool", "avgpool"):
                k, s = layer["kernel"], layer.get("stride", layer["kernel"])
                module = (nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d)(k, s)
                self.add(name(kind), module)
                shape = [shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1]
            elif kind == "globalavgpool":
                self.add(name("gap"), nn.AdaptiveAvgPool2d(1), unflatten=True)
                shape = [shape[0]]
                relu = False
            elif kind == "batchnorm":
                bn = (nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0], eps=layer["eps"], momentum=layer["momentum"])
                self.add(name("bn"), bn)
            elif kind == "dropout":
                self.add(name("dropout"), nn.Dropout(layer["rate"]))
                relu = False
            elif kind == "residual":
                c, s = layer["channels"], layer.get("stride", 1)
                self.add(name("block"), Block(shape[0], c, s))
                shape = [c, (shape[1] - 1) // s + 1, (shape[2] - 1) // s + 1]
                relu = False
            else:
                raise SystemExit(f"no torch equivalent here for layer type {kind!r}")
            if relu and kind not in ("maxpool", "avgpool"):
                self.steps.append(("relu", None))

    def add(self, name, module, flatten=False, unflatten=False):
        self.add_module(name, module)
        self.steps.append((name, "flatten" if flatten else "gap" if unflatten else None))

    def forward(self, x):
        for name, how in self.steps:
            if name == "relu":
                x = F.relu(x)
                continue
            if how == "flatten":
                x = torch.flatten(x, 1)
            x = getattr(self, name)(x)
            if how == "gap":
                x = torch.flatten(x, 1)
        return x


def visit(group, prefix=""):
    for key, value in group.items():
        if isinstance(value, h5py.Dataset):
            yield prefix + key, value
        else:
            yield from visit(value, prefix + key + "/")


def main():
    path = sys.argv[1]
    with h5py.File(path, "r") as f:
        config = tomllib.loads(f.attrs["config"].decode() if isinstance(f.attrs["config"], bytes) else str(f.attrs["config"]))
        tensors = {k: np.array(v) for k, v in visit(f["model"])}
    data = sys.argv[2] if len(sys.argv) > 2 else config["data"]["file"]
    with h5py.File(data, "r") as f:
        train = f["train/x"][:].astype(np.float32)
        x = f["test/x"][:].astype(np.float32)
        y = f["test/y"][:].astype(np.int64)
    normalization = config["data"].get("normalization", "scale")
    if f"{normalization}" in ("scale", "standardize") and train.max() > 1:
        train /= 255.0
        x /= 255.0
    if normalization == "standardize":
        x = (x - train.mean()) / train.std()
    net = Net(config["model"]["layers"], x.shape[1:])
    state = {k.replace("/", "."): torch.from_numpy(v) for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"names do not match: missing {missing}, unexpected {unexpected}")
    net.eval()
    if x.ndim == 3:
        x = x[:, None]
    with torch.no_grad():
        logits = torch.cat([net(torch.from_numpy(x[i:i + 1000])) for i in range(0, len(x), 1000)])
    accuracy = (logits.argmax(1).numpy() == y).mean()
    print(f"{path}: {len(state)} tensors loaded by name; test accuracy {100 * accuracy:.2f}% ({len(y)} samples)")


if __name__ == "__main__":
    main()
