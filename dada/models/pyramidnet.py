"""PyramidNet with bottleneck blocks (Han et al., CVPR 2017) and ShakeDrop (Yamada et al. 2019)."""

import torch
import torch.nn.functional as F
from torch import nn

from ._layers import classifier_head, conv1x1, conv3x3, init_weights, three_stage_plan
from ._registry import register_model
from ._shake import shake_drop

BOTTLENECK_EXPANSION = 4


class PyramidBottleneck(nn.Module):
    """BN-conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN, ShakeDrop on the branch, plus a zero-padded shortcut.

    The shortcut is the identity, 2x2-average-pooled when the block downsamples, with zero channels
    appended to reach the wider output (Han et al., Sec. 3).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, survival_prob: float):
        super().__init__()
        bottleneck_channels = out_channels // BOTTLENECK_EXPANSION
        self.survival_prob = survival_prob
        self.extra_channels = out_channels - in_channels
        self.branch = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            conv1x1(in_channels, bottleneck_channels),
            nn.BatchNorm2d(bottleneck_channels),
            nn.ReLU(inplace=True),
            conv3x3(bottleneck_channels, bottleneck_channels, stride),
            nn.BatchNorm2d(bottleneck_channels),
            nn.ReLU(inplace=True),
            conv1x1(bottleneck_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )
        self.downsample = nn.AvgPool2d(2, stride=2, ceil_mode=True) if stride != 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = shake_drop(self.branch(x), self.survival_prob, self.training)
        shortcut = F.pad(self.downsample(x), (0, 0, 0, 0, 0, self.extra_channels))
        return shortcut + residual

    def extra_repr(self) -> str:
        return f"survival_prob={self.survival_prob:.4f}"


class PyramidNet(nn.Module):
    """Bottleneck PyramidNet-depth, widening factor ``alpha``, three stages of (depth - 2) / 9 blocks.

    The bottleneck width grows linearly by alpha / N per block from 16 (Han et al., Eq. 2), and block
    l of N keeps its branch with ShakeDrop probability ``1 - l / N * (1 - final_survival_prob)``
    (Yamada et al., linear decay rule).
    """

    def __init__(
        self, depth: int, alpha: float, num_classes: int, final_survival_prob: float = 0.5, in_channels: int = 3
    ):
        super().__init__()
        if depth < 11 or (depth - 2) % 9 != 0:
            raise ValueError(f"bottleneck PyramidNet depth must be 9n + 2 with n >= 1 (11, 110, 272, ...), got {depth}")
        if not 0.0 < final_survival_prob <= 1.0:
            raise ValueError(f"final_survival_prob must lie in (0, 1], got {final_survival_prob}")
        self.depth, self.alpha = depth, alpha
        num_blocks = 3 * ((depth - 2) // 9)
        block_channels = [
            BOTTLENECK_EXPANSION * round(16 + alpha * block / num_blocks) for block in range(1, num_blocks + 1)
        ]
        survival_probs = [1.0 - block / num_blocks * (1.0 - final_survival_prob) for block in range(1, num_blocks + 1)]
        plans = three_stage_plan(16, block_channels)
        self.stem = nn.Sequential(conv3x3(in_channels, 16), nn.BatchNorm2d(16))
        self.blocks = nn.Sequential(*(PyramidBottleneck(*plan, prob) for plan, prob in zip(plans, survival_probs)))
        self.head = classifier_head(block_channels[-1], num_classes, normalize=True)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, alpha={self.alpha}"


@register_model
def pyramidnet272_a200_shakedrop(num_classes: int, **kwargs) -> PyramidNet:
    """PyramidNet-272 (bottleneck, alpha = 200) with ShakeDrop, final survival probability 0.5."""
    return PyramidNet(depth=272, alpha=200, num_classes=num_classes, **kwargs)
