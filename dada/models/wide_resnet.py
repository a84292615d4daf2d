"""Wide Residual Networks (Zagoruyko & Komodakis, BMVC 2016), pre-activation, for CIFAR-sized inputs.

Two block designs, picked by ``variant`` (``model.kwargs.variant``, FIDELITY.md row 21):

- ``official``, the default: the WRN that DADA searches and evaluates with, Fast AA's
  (VDIGPKU/DADA search_relax/networks/wideresnet.py:7-85, kakaobrain/fast-autoaugment
  FastAutoAugment/networks/wideresnet.py): convolutions with biases, the stride in the block's second 3x3
  convolution, the 1x1 projection shortcut fed the block's raw input, dropout after the first convolution,
  BatchNorm with ``momentum=0.9`` in PyTorch's convention (running statistics = 0.1 old + 0.9 batch, so close
  to the last batch's), and PyTorch's default initialisation (its ``conv_init`` is commented out, line 62);
- ``zagoruyko``: the WRN authors' design, this suite's before: no biases, the stride in the first convolution,
  the projection fed the activated input ``relu(bn(x))``, dropout before the second convolution, BatchNorm's
  default momentum (0.1) and He-normal initialisation.
"""

from dataclasses import dataclass

import torch
from torch import nn

from ._layers import classifier_head, conv1x1, conv3x3, init_weights, three_stage_plan
from ._registry import register_model


@dataclass(frozen=True)
class WideResNetDesign:
    """What the two WRN implementations build differently."""

    bias: bool  # convolutions carry a bias
    norm_momentum: float  # BatchNorm's momentum, PyTorch's convention: running = (1 - m) running + m batch
    stride_in_first_conv: bool  # else the block's second 3x3 convolution downsamples
    project_activated: bool  # the 1x1 projection reads relu(bn(x)); else the raw input x
    dropout_after_first_conv: bool  # else dropout runs before the second convolution
    he_init: bool  # He-normal convolutions, zero linear bias; else PyTorch's default initialisation


# Official: search_relax/networks/wideresnet.py lines 8, 24-28 (biases, momentum 0.9, stride in conv2),
# 33 and 39 (shortcut(x)), 37 (dropout after conv1), 59 (head BN momentum 0.9), 62 (no conv_init).
WRN_DESIGNS = {
    "official": WideResNetDesign(
        bias=True,
        norm_momentum=0.9,
        stride_in_first_conv=False,
        project_activated=False,
        dropout_after_first_conv=True,
        he_init=False,
    ),
    "zagoruyko": WideResNetDesign(
        bias=False,
        norm_momentum=0.1,
        stride_in_first_conv=True,
        project_activated=True,
        dropout_after_first_conv=False,
        he_init=True,
    ),
}


class WideBasicBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with dropout, plus the input (or its 1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float, design: WideResNetDesign):
        super().__init__()
        self.design = design
        first_stride, second_stride = (stride, 1) if design.stride_in_first_conv else (1, stride)
        self.norm1 = nn.BatchNorm2d(in_channels, momentum=design.norm_momentum)
        self.conv1 = conv3x3(in_channels, out_channels, first_stride, bias=design.bias)
        self.norm2 = nn.BatchNorm2d(out_channels, momentum=design.norm_momentum)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv3x3(out_channels, out_channels, second_stride, bias=design.bias)
        needs_projection = stride != 1 or in_channels != out_channels
        self.projection = conv1x1(in_channels, out_channels, stride, bias=design.bias) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(self.norm1(x))
        residual = self.conv1(activated)
        if self.design.dropout_after_first_conv:
            residual = self.conv2(torch.relu(self.norm2(self.dropout(residual))))
        else:
            residual = self.conv2(self.dropout(torch.relu(self.norm2(residual))))
        if self.projection is None:
            return x + residual
        return self.projection(activated if self.design.project_activated else x) + residual


class WideResNet(nn.Module):
    """WRN-depth-width: a 16-channel stem and three stages of (depth - 4) / 6 blocks, 16k/32k/64k wide."""

    def __init__(
        self,
        depth: int,
        width: int,
        num_classes: int,
        dropout: float = 0.0,
        in_channels: int = 3,
        variant: str = "official",
    ):
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        if variant not in WRN_DESIGNS:
            raise ValueError(f"unknown WideResNet variant {variant!r}; valid choices: {', '.join(WRN_DESIGNS)}")
        self.depth, self.width, self.variant = depth, width, variant
        design = WRN_DESIGNS[variant]
        blocks_per_stage = (depth - 4) // 6
        block_channels = [16 * width * 2**stage for stage in range(3) for _ in range(blocks_per_stage)]
        self.stem = conv3x3(in_channels, 16, bias=design.bias)
        self.blocks = nn.Sequential(
            *(WideBasicBlock(*plan, dropout, design) for plan in three_stage_plan(16, block_channels))
        )
        self.head = classifier_head(block_channels[-1], num_classes, normalize=True, norm_momentum=design.norm_momentum)
        if design.he_init:
            init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}, variant={self.variant}"


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
