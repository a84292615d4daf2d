"""Building blocks shared by the CIFAR networks."""

from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1, without bias unless asked (a BatchNorm always follows or precedes it)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution, without bias unless asked."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=bias)


def three_stage_plan(stem_channels: int, block_channels: list[int]) -> list[tuple[int, int, int]]:
    """``(in_channels, out_channels, stride)`` per block of a three-stage CIFAR ResNet.

    ``block_channels`` holds each block's output width, stage after stage (equal-length stages);
    the first block of stages 2 and 3 halves the resolution.
    """
    if len(block_channels) % 3 != 0:
        raise ValueError(f"three equal stages need a block count divisible by 3, got {len(block_channels)}")
    stage_starts = {len(block_channels) // 3, 2 * len(block_channels) // 3}
    in_channels = [stem_channels] + block_channels[:-1]
    strides = [2 if index in stage_starts else 1 for index in range(len(block_channels))]
    return list(zip(in_channels, block_channels, strides))


def classifier_head(in_channels: int, num_classes: int, normalize: bool, norm_momentum: float = 0.1) -> nn.Sequential:
    """[BN-]ReLU, global average pooling and a linear layer; adaptive, so any input size works."""
    norm = [nn.BatchNorm2d(in_channels, momentum=norm_momentum)] if normalize else []
    return nn.Sequential(*norm, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes))


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions (fan-out), unit-scale BatchNorm, zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
