"""The paper's networks behind one registry: ``create(name, num_classes)`` and ``list_models()``.

CIFAR networks (any input size, adaptive pooling): ``wrn10_1`` (tiny, for smoke runs), ``wrn40_2``,
``wrn28_10``, ``shakeshake26_2x32d``, ``shakeshake26_2x96d``, ``shakeshake26_2x112d``,
``pyramidnet272_a200_shakedrop``. ImageNet: ``resnet50`` (torchvision).
"""

from ._registry import create, list_models, register_model
from .pyramidnet import PyramidNet
from .resnet import resnet50
from .shake_shake import ShakeShakeResNet
from .wide_resnet import WideResNet

__all__ = ["PyramidNet", "ShakeShakeResNet", "WideResNet", "create", "list_models", "register_model", "resnet50"]
