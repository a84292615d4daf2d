"""torchvision's three detectors with a ResNet-50-FPN backbone, the body initialised from a ``dada.train`` ResNet-50.

Built with ``weights=None, weights_backbone=None``: nothing is downloaded. Our ``resnet50`` is torchvision's, so its
keys are the backbone body's plus the classifier (``fc.*``), which the body has not; the body is loaded with strict
key matching and a mismatch raises `BackboneMismatchError` naming the keys. MMDetection's backbone settings
(``frozen_stages``, ``norm_eval``) are applied after loading (`freeze_stages`, `set_train_mode`).
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn
from torchvision.models import detection

DETECTORS: dict[str, Callable[..., nn.Module]] = {
    "retinanet": detection.retinanet_resnet50_fpn,
    "faster_rcnn": detection.fasterrcnn_resnet50_fpn,
    "mask_rcnn": detection.maskrcnn_resnet50_fpn,
}
MASK_DETECTORS = ("mask_rcnn",)
CLASSIFIER_PREFIX = "fc."  # ResNet-50's classifier: not part of a detection backbone
STEM = ("conv1", "bn1")
STAGES = ("layer1", "layer2", "layer3", "layer4")
EXAMPLES = 5  # keys quoted in a mismatch error


class BackboneMismatchError(ValueError):
    """A checkpoint's weights do not fit the detector's ResNet-50 body key for key."""


def create_detector(name: str, num_classes: int, min_size: int, max_size: int, mean, std, **kwargs) -> nn.Module:
    """torchvision's ``<name>_resnet50_fpn`` (randomly initialised), resizing images to ``min_size``/``max_size``
    and normalising with the backbone's ``mean``/``std``; ``kwargs`` go to the detector's class."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; valid choices: {', '.join(DETECTORS)}")
    return DETECTORS[name](
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        min_size=min_size,
        max_size=max_size,
        image_mean=list(mean),
        image_std=list(std),
        **kwargs,
    )


def backbone_body(detector: nn.Module) -> nn.Module:
    """The ResNet-50 inside the detector's FPN backbone (torchvision's ``IntermediateLayerGetter``)."""
    return detector.backbone.body


def _quoted(keys: list[str]) -> str:
    return ", ".join(keys[:EXAMPLES]) + (f", ... ({len(keys)} in all)" if len(keys) > EXAMPLES else "")


def load_backbone(detector: nn.Module, model_state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy a ResNet-50 state dict (``source`` names it in errors) into the detector's body, classifier dropped.

    Strict: every body key must come from the checkpoint with its shape, and the checkpoint may hold no other key.
    """
    body = backbone_body(detector)
    state = {key: value for key, value in model_state.items() if not key.startswith(CLASSIFIER_PREFIX)}
    expected = body.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    reshaped = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in expected.keys() & state.keys()
        if state[key].shape != expected[key].shape
    )
    if missing or unexpected or reshaped:
        problems = [
            f"{label}: {_quoted(keys)}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped))
            if keys
        ]
        raise BackboneMismatchError(
            f"{source} does not fit the detector's ResNet-50 body (strict key matching): {'; '.join(problems)}. "
            f"The backbone must come from a dada.train run of model=resnet50 with 3-channel input"
        )
    body.load_state_dict(state, strict=True)


def freeze_stages(detector: nn.Module, frozen_stages: int) -> None:
    """MMDetection's ``frozen_stages``: -1 trains everything, 0 freezes the stem, k freezes the stem and the first k
    residual stages."""
    if not -1 <= frozen_stages <= len(STAGES):
        raise ValueError(f"frozen_stages={frozen_stages} must be in [-1, {len(STAGES)}]")
    body = backbone_body(detector)
    frozen = (*STEM, *STAGES[:frozen_stages]) if frozen_stages >= 0 else ()
    for name in frozen:
        for parameter in getattr(body, name).parameters():
            parameter.requires_grad_(False)


def set_train_mode(detector: nn.Module, norm_eval: bool) -> None:
    """``detector.train()``; with ``norm_eval`` (MMDetection's) the body's BatchNorm layers stay in eval mode: their
    running statistics stay the backbone's while their affine weights train."""
    detector.train()
    if norm_eval:
        for module in backbone_body(detector).modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
