"""ResNet-50 for ImageNet, straight from torchvision (never with downloaded weights)."""

import torchvision
from torch import nn

from ._registry import register_model


@register_model
def resnet50(num_classes: int, in_channels: int = 3) -> torchvision.models.ResNet:
    """torchvision's ResNet-50 (He et al. 2016), randomly initialised; any input size works."""
    model = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model
