"""Wide Residual Networks (Zagoruyko & Komodakis, BMVC 2016), pre-activation, for CIFAR-sized inputs."""

import torch
from torch import nn

from ._layers import classifier_head, conv1x1, conv3x3, init_weights, three_stage_plan
from ._registry import register_model


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv3x3-(dropout)-BN-ReLU-conv3x3, plus the input (or its 1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv3x3(out_channels, out_channels)
        needs_projection = stride != 1 or in_channels != out_channels
        self.projection = conv1x1(in_channels, out_channels, stride) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(self.norm1(x))
        residual = self.conv1(activated)
        residual = self.conv2(self.dropout(torch.relu(self.norm2(residual))))
        shortcut = x if self.projection is None else self.projection(activated)
        return shortcut + residual


class WideResNet(nn.Module):
    """WRN-depth-width: a 16-channel stem and three stages of (depth - 4) / 6 blocks, 16k/32k/64k wide."""

    def __init__(self, depth: int, width: int, num_classes: int, dropout: float = 0.0, in_channels: int = 3):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        self.depth, self.width = depth, width
        blocks_per_stage = (depth - 4) // 6
        block_channels = [16 * width * 2**stage for stage in range(3) for _ in range(blocks_per_stage)]
        self.stem = conv3x3(in_channels, 16)
        self.blocks = nn.Sequential(*(WideBasicBlock(*plan, dropout) for plan in three_stage_plan(16, block_channels)))
        self.head = classifier_head(block_channels[-1], num_classes, normalize=True)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}"


@register_model
def wrn10_1(num_classes: int, **kwargs) -> WideResNet:
    """WRN-10-1: one block per stage; a tiny net for smoke runs and tests."""
    return WideResNet(depth=10, width=1, num_classes=num_classes, **kwargs)


@register_model
def wrn40_2(num_classes: int, **kwargs) -> WideResNet:
    """WRN-40-2."""
    return WideResNet(depth=40, width=2, num_classes=num_classes, **kwargs)


@register_model
def wrn28_10(num_classes: int, **kwargs) -> WideResNet:
    """WRN-28-10, the network DADA searches with on CIFAR and SVHN."""
    return WideResNet(depth=28, width=10, num_classes=num_classes, **kwargs)
