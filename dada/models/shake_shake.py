"""Shake-Shake regularised ResNet-26 (Gastaldi 2017), "Shake-Shake-Image" for CIFAR-sized inputs."""

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import classifier_head, conv1x1, conv3x3, init_weights, three_stage_plan
from ._registry import register_model
from ._shake import shake_shake


def _residual_branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """ReLU-conv3x3-BN-ReLU-conv3x3-BN."""
    return nn.Sequential(
        nn.ReLU(),
        conv3x3(in_channels, out_channels, stride),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        conv3x3(out_channels, out_channels),
        nn.BatchNorm2d(out_channels),
    )


class ShiftedPairShortcut(nn.Module):
    """Shortcut for a shape change: two 1x1-avg-pool (stride) + 1x1-conv paths, the second shifted by one pixel.

    Each path gives half of ``out_channels``; they are concatenated and batch-normalised.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels % 2 != 0:
            raise ValueError(f"the shifted-pair shortcut needs an even out_channels, got {out_channels}")
        self.stride = stride
        self.conv_a = conv1x1(in_channels, out_channels // 2)
        self.conv_b = conv1x1(in_channels, out_channels // 2)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        path_a = self.conv_a(F.avg_pool2d(x, kernel_size=1, stride=self.stride))
        path_b = self.conv_b(F.avg_pool2d(shifted, kernel_size=1, stride=self.stride))
        return self.norm(torch.cat([path_a, path_b], dim=1))


class ShakeShakeBlock(nn.Module):
    """Two residual branches mixed by ``shake_shake``, added to the (possibly projected) input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.branch_a = _residual_branch(in_channels, out_channels, stride)
        self.branch_b = _residual_branch(in_channels, out_channels, stride)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = ShiftedPairShortcut(in_channels, out_channels, stride) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + shake_shake(self.branch_a(x), self.branch_b(x), self.training)


class ShakeShakeResNet(nn.Module):
    """Shake-Shake-depth 2 x base_width d: a 16-channel stem, three stages of (depth - 2) / 6 blocks.

    Stage widths are base_width, 2 base_width and 4 base_width; Shake-Shake-26 has four blocks a stage.
    """

    def __init__(self, depth: int, base_width: int, num_classes: int, in_channels: int = 3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f"Shake-Shake depth must be 6n + 2 with n >= 1 (8, 14, 20, 26, ...), got {depth}")
        self.depth, self.base_width = depth, base_width
        blocks_per_stage = (depth - 2) // 6
        block_channels = [base_width * 2**stage for stage in range(3) for _ in range(blocks_per_stage)]
        self.stem = nn.Sequential(conv3x3(in_channels, 16), nn.BatchNorm2d(16))
        self.blocks = nn.Sequential(*(ShakeShakeBlock(*plan) for plan in three_stage_plan(16, block_channels)))
        self.head = classifier_head(block_channels[-1], num_classes, normalize=False)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, base_width={self.base_width}"


@register_model
def shakeshake26_2x32d(num_classes: int, **kwargs) -> ShakeShakeResNet:
    """Shake-Shake-26 2x32d."""
    return ShakeShakeResNet(depth=26, base_width=32, num_classes=num_classes, **kwargs)


@register_model
def shakeshake26_2x96d(num_classes: int, **kwargs) -> ShakeShakeResNet:
    """Shake-Shake-26 2x96d."""
    return ShakeShakeResNet(depth=26, base_width=96, num_classes=num_classes, **kwargs)


@register_model
def shakeshake26_2x112d(num_classes: int, **kwargs) -> ShakeShakeResNet:
    """Shake-Shake-26 2x112d."""
    return ShakeShakeResNet(depth=26, base_width=112, num_classes=num_classes, **kwargs)
