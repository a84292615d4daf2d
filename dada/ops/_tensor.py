"""Batched tensor backend: the ops on [B, 3, H, W] batches with per-sample op, level, sign and mask.

Values match the PIL reference (``_pil.py``) up to rounding. The magnitude gets the straight-through
gradient of DADA Eq. 10-11, so it trains through every op, differentiable or not.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from ._table import CUTOUT_FILL

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Value = torch.Tensor | float


# -- geometric ops: one batched resampling -----------------------------------------------------------------------

def _affine(images: torch.Tensor, a: Value = 1.0, b: Value = 0.0, c: Value = 0.0,
            d: Value = 0.0, e: Value = 1.0, f: Value = 0.0) -> torch.Tensor:
    """PIL's AFFINE transform per sample: output (x, y) reads input (a x + b y + c, d x + e y + f).

    The coefficients act on pixel-edge coordinates (pixel k spans [k, k + 1)), as in PIL; below they are rewritten
    for grid_sample's [-1, 1] frame (align_corners=False). NEAREST sampling and black fill, PIL's defaults.
    """
    n, height, width = len(images), images.shape[-2], images.shape[-1]
    rows = (a, b * height / width, a + (b * height + 2 * c) / width - 1,
            d * width / height, e, e + (d * width + 2 * f) / height - 1)
    columns = [torch.as_tensor(r, dtype=images.dtype, device=images.device).expand(n) for r in rows]
    theta = torch.stack(columns, dim=-1).view(n, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _rotate(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """PIL's ``Image.rotate``: counter-clockwise about the image centre."""
    cx, cy = images.shape[-1] / 2, images.shape[-2] / 2
    angle = -torch.deg2rad(degrees)
    cos, sin = angle.cos(), angle.sin()
    return _affine(images, cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy)


def _cutout(images: torch.Tensor, fractions: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Fast AA's Cutout per sample: a square of side ``fraction * width`` around ``centers`` (x, y), grey-filled.

    Same box as ``_pil.cutout_box``, by coordinate comparisons; a zero side leaves the image unchanged.
    """
    height, width = images.shape[-2:]
    side = fractions * width
    x0 = (centers[:, 0] - side / 2).clamp(min=0).floor()
    y0 = (centers[:, 1] - side / 2).clamp(min=0).floor()
    x1 = (x0 + side).clamp(max=width).floor()
    y1 = (y0 + side).clamp(max=height).floor()
    xs = torch.arange(width, device=images.device)
    ys = torch.arange(height, device=images.device)
    inside_x = (xs >= x0[:, None]) & (xs <= x1[:, None])
    inside_y = (ys >= y0[:, None]) & (ys <= y1[:, None]) & (side > 0)[:, None]
    inside = inside_y[:, None, :, None] & inside_x[:, None, None, :]
    fill = images.new_tensor(CUTOUT_FILL).div_(255).view(1, 3, 1, 1)
    return torch.where(inside, fill, images)


# -- photometric ops ---------------------------------------------------------------------------------------------

def _blend(images: torch.Tensor, degenerate: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """PIL's ImageEnhance: ``degenerate + factor * (image - degenerate)``, per-sample factor, clipped."""
    return torch.lerp(degenerate, images, factors.view(-1, 1, 1, 1)).clamp_(0, 1)


def _contrast(images: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    mean = TF.rgb_to_grayscale(images).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(images, mean, factors)


def _smooth(images: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (3x3, centre weight 5, sum 13) with the border copied: Sharpness's degenerate image.

    Same result as torchvision's ``adjust_sharpness(images, 0)``, built from shifted slices: several times
    faster than its depthwise conv2d on CPU.
    """
    rows = images[..., :-2] + images[..., 1:-1] + images[..., 2:]
    box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    smoothed = images.clone()
    smoothed[..., 1:-1, 1:-1] = box.add_(images[..., 1:-1, 1:-1], alpha=4).div_(13)
    return smoothed


def _grey_levels(images: torch.Tensor) -> torch.Tensor:
    return images.mul(255).round_()


def _posterize(images: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top ``bits`` bits of each 8-bit grey level."""
    masks = (256 - torch.exp2(8 - bits)).to(torch.uint8).view(-1, 1, 1, 1)
    return _grey_levels(images).to(torch.uint8).bitwise_and_(masks).to(images.dtype).div_(255)


def _solarize(images: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Invert every pixel at or above the threshold (given in grey levels 0-256)."""
    return torch.where(images >= (thresholds / 255).view(-1, 1, 1, 1), 1 - images, images)


def _equalize(images: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.equalize`` per image and channel: batched 256-bin histograms, one LUT gather.

    PIL's LUT: ``step = (pixels - count of the top level) // 255``; ``lut[i] = (step // 2 + pixels below i) // step``;
    identity where step is 0.
    """
    levels = _grey_levels(images).long().flatten(2)
    ones = images.new_ones(()).expand(levels.shape)
    histogram = images.new_zeros(*levels.shape[:2], 256).scatter_add_(2, levels, ones)
    top_count = histogram.gather(2, levels.amax(dim=2, keepdim=True))
    step = (levels.shape[-1] - top_count).div_(255).floor_()
    below = histogram.cumsum(dim=2).sub_(histogram)
    lut = below.add_(step.div(2).floor_()).div_(step.clamp(min=1)).floor_().clamp_(max=255)
    lut = torch.where(step > 0, lut, torch.arange(256, dtype=images.dtype, device=images.device))
    return lut.gather(2, levels).view_as(images).div_(255)


_KERNELS: dict[str, Kernel] = {
    "ShearX": lambda images, v: _affine(images, b=v),
    "ShearY": lambda images, v: _affine(images, d=v),
    "TranslateX": lambda images, v: _affine(images, c=v * images.shape[-1]),
    "TranslateY": lambda images, v: _affine(images, f=v * images.shape[-2]),
    "Rotate": _rotate,
    "AutoContrast": lambda images, _: TF.autocontrast(images),
    "Invert": lambda images, _: TF.invert(images),
    "Equalize": lambda images, _: _equalize(images),
    "Solarize": _solarize,
    "Posterize": _posterize,
    "Contrast": _contrast,
    "Color": lambda images, v: _blend(images, TF.rgb_to_grayscale(images), v),
    "Brightness": lambda images, v: images.mul(v.view(-1, 1, 1, 1)).clamp_(0, 1),
    "Sharpness": lambda images, v: _blend(images, _smooth(images), v),
}


def apply_op(name: str, images: torch.Tensor, values: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Op ``name`` on float images [n, 3, H, W] with per-sample (signed) values; ``centers`` [n, 2] serve Cutout."""
    if name == "Cutout":
        return _cutout(images, values, centers)
    return _KERNELS[name](images, values)
