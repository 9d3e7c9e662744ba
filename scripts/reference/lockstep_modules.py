"""torch.nn modules named as Lockstep names its layers, so a checkpoint's /model paths are their
state_dict() keys with "/" for "." (docs/checkpoints.md). Shared by the reference scripts here."""
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """{ type = "residual", channels = cout, stride = stride }: He et al.'s basic block, with the
    names Lockstep gives its children (conv1, bn1, conv2, bn2, shortcut_conv, shortcut_bn)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.project = stride != 1 or cin != cout
        if self.project:
            self.shortcut_conv = nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.shortcut_bn(self.shortcut_conv(x)) if self.project else x))
