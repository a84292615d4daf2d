"""Batched tensor backend: the 15 ops on float batches [n, 3, H, W] in [0, 1], each sample with its own level.

Results match the PIL reference (``_pil.py``):
- geometric ops resample with PIL's AFFINE coefficients, NEAREST and black fill; all geometric samples of a
  batch share one ``affine_grid`` + ``grid_sample`` call;
- photometric ops work on 8-bit grey levels with PIL's integer arithmetic (ITU-R 601 luminance, lookup tables,
  truncating blends), so each level comes out as PIL's does.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from ._table import CUTOUT_FILL, OP_NAMES, OPS

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -- geometric ops: per-sample PIL affine coefficients, one resampling ---------------------------------------------

def _coefficients(values: torch.Tensor, **entries: torch.Tensor) -> torch.Tensor:
    """[n, 6] PIL AFFINE coefficients a..f (output (x, y) reads input (a x + b y + c, d x + e y + f)).

    The identity, except for the named entries.
    """
    coefficients = values.new_tensor([1, 0, 0, 0, 1, 0]).expand(len(values), 6).clone()
    for key, value in entries.items():
        coefficients[:, "abcdef".index(key)] = value
    return coefficients


def _rotation(degrees: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """PIL's ``Image.rotate``: counter-clockwise about the image centre."""
    cx, cy = width / 2, height / 2
    angle = -torch.deg2rad(degrees)
    cos, sin = angle.cos(), angle.sin()
    return torch.stack([cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy], dim=1)


_COEFFICIENTS: dict[str, Callable[[torch.Tensor, int, int], torch.Tensor]] = {
    "ShearX": lambda v, height, width: _coefficients(v, b=v),
    "ShearY": lambda v, height, width: _coefficients(v, d=v),
    "TranslateX": lambda v, height, width: _coefficients(v, c=v * width),
    "TranslateY": lambda v, height, width: _coefficients(v, f=v * height),
    "Rotate": _rotation,
}


def _affine(images: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """Resample each image with its PIL AFFINE coefficients [n, 6]; NEAREST and black fill, PIL's defaults.

    PIL reads output pixel (x, y) at the source point (a, b, c) . (x + 0.5, y + 0.5, 1), in pixel-edge
    coordinates (pixel k spans [k, k + 1)); grid_sample (align_corners=False) wants that point in [-1, 1].
    """
    height, width = images.shape[-2:]
    a, b, c, d, e, f = coefficients.to(images.dtype).T.reshape(6, -1, 1, 1)
    xs = torch.arange(width, dtype=images.dtype, device=images.device).add_(0.5)
    ys = torch.arange(height, dtype=images.dtype, device=images.device).add_(0.5).view(-1, 1)
    source_x = (a * xs + b * ys + c).mul_(2 / width).sub_(1)
    source_y = (d * xs + e * ys + f).mul_(2 / height).sub_(1)
    grid = torch.stack([source_x, source_y], dim=-1)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _geometric(images: torch.Tensor, levels: torch.Tensor, signs: torch.Tensor,
               counts: dict[str, int]) -> torch.Tensor:
    """All geometric samples (sorted by op, ``counts[name]`` of each) in one resampling."""
    height, width = images.shape[-2:]
    coefficients = [_COEFFICIENTS[name](_values(name, level, sign), height, width)
                    for name, level, sign in _runs(counts, levels, signs)]
    return _affine(images, torch.cat(coefficients))


# -- photometric ops: PIL's integer arithmetic on grey levels 0..255 -----------------------------------------------

def _grey(like: torch.Tensor) -> torch.Tensor:
    """The 256 grey levels, shaped [1, 1, 256] as a lookup table."""
    return torch.arange(256, dtype=like.dtype, device=like.device).view(1, 1, 256)


def _blend(degenerate: torch.Tensor, levels: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """PIL's ``Image.blend`` behind ImageEnhance: ``degenerate + factor * (level - degenerate)``, truncated, clipped."""
    factors = factors.view(-1, *[1] * (levels.ndim - 1))
    return (levels - degenerate).mul(factors).add_(degenerate).floor_().clamp_(0, 255)


def _luminance(levels: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L conversion: (19595 R + 38470 G + 7471 B + 2^15) >> 16, exact in float32."""
    weights = levels.new_tensor([19595, 38470, 7471]).view(1, 3, *[1] * (levels.ndim - 2))
    return (levels * weights).sum(dim=1, keepdim=True).add_(2 ** 15).div_(2 ** 16).floor_()


def _smooth(levels: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (3x3, centre weight 5, sum 13, rounded), border pixels copied: Sharpness's degenerate.

    Built from shifted slices, several times faster on CPU than the depthwise conv2d of torchvision's
    ``adjust_sharpness``.
    """
    rows = levels[..., :-2] + levels[..., 1:-1] + levels[..., 2:]
    box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    smoothed = levels.clone()
    smoothed[..., 1:-1, 1:-1] = box.add_(levels[..., 1:-1, 1:-1], alpha=4).div_(13).round_()
    return smoothed


def _autocontrast_table(levels: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.autocontrast``: stretch each channel's [min, max] onto [0, 255], truncated."""
    low, high = levels.double().aminmax(dim=2, keepdim=True)
    scale = torch.full_like(high, 255).div_((high - low).clamp(min=1))  # not 255 / t: that is 255 * (1 / t)
    table = (_grey(scale) * scale - low * scale).floor_().clamp_(0, 255)
    return torch.where(high > low, table, _grey(table)).to(levels.dtype)


def _equalize_table(levels: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.equalize`` per channel, from batched 256-bin histograms.

    ``step = (pixels - count of the top level) // 255``; ``table[i] = (step // 2 + pixels below i) // step``;
    the identity where step is 0.
    """
    indices = levels.long()
    ones = levels.new_ones(()).expand_as(levels)
    histogram = levels.new_zeros(*levels.shape[:2], 256).scatter_add_(2, indices, ones)
    top_count = histogram.gather(2, indices.amax(dim=2, keepdim=True))
    step = (levels.shape[-1] - top_count).div_(255).floor_()
    below = histogram.cumsum(dim=2).sub_(histogram)
    table = below.add_(step.div(2).floor_()).div_(step.clamp(min=1)).floor_().clamp_(max=255)
    return torch.where(step > 0, table, _grey(table))


def _solarize_table(levels: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.solarize``: invert the levels at or above the threshold."""
    grey = _grey(levels)
    return torch.where(grey >= thresholds.view(-1, 1, 1), 255 - grey, grey)


def _posterize_table(levels: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.posterize``: keep the top ``bits`` bits of each level."""
    grey = _grey(levels)
    return grey - grey.remainder(torch.exp2(8 - bits).view(-1, 1, 1))


def _contrast_table(levels: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """PIL's Contrast: blend towards the luminance mean, rounded to a grey level."""
    mean = _luminance(levels).mean(dim=2, keepdim=True).add_(0.5).floor_()
    return _blend(mean, _grey(levels), factors)


_TABLES: dict[str, Kernel] = {
    "AutoContrast": _autocontrast_table,
    "Invert": lambda levels, _: 255 - _grey(levels),
    "Equalize": _equalize_table,
    "Solarize": _solarize_table,
    "Posterize": _posterize_table,
    "Contrast": _contrast_table,
    "Brightness": lambda levels, v: _blend(levels.new_zeros(()), _grey(levels), v),
}


def _lookup(table: Kernel) -> Kernel:
    """Kernel applying the 256-entry tables ``table(levels, values)`` ([n, 1 or 3, 256]) to levels [n, 3, H, W]."""
    def kernel(levels: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        flat = levels.flatten(2)
        tables = table(flat, values).expand(len(levels), 3, 256)
        return tables.gather(2, flat.long()).view_as(levels)
    return kernel


_PHOTOMETRIC: dict[str, Kernel] = {
    **{name: _lookup(table) for name, table in _TABLES.items()},
    "Color": lambda levels, v: _blend(_luminance(levels), levels, v),
    "Sharpness": lambda levels, v: _blend(_smooth(levels), levels, v),
}


def _photometric(images: torch.Tensor, levels: torch.Tensor, signs: torch.Tensor,
                 counts: dict[str, int]) -> torch.Tensor:
    """All photometric samples (sorted by op, ``counts[name]`` of each), on shared 8-bit grey levels."""
    grey_levels = images.mul(255).round_()
    outputs = [_PHOTOMETRIC[name](grey, _values(name, level, sign).to(images.dtype))
               for name, grey, level, sign in _runs(counts, grey_levels, levels, signs)]
    return torch.cat(outputs).div_(255)


# -- Cutout --------------------------------------------------------------------------------------------------------

def _cutout(images: torch.Tensor, fractions: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Fast AA's Cutout: a square of side ``fraction * width`` around ``centers`` (x, y) [n, 2], grey-filled.

    The box of ``_pil.cutout_box``, by coordinate comparisons; a zero side leaves the image unchanged.
    """
    height, width = images.shape[-2:]
    side = (fractions * width).view(-1, 1)
    top_left = (centers - side / 2).clamp_(min=0).floor_()
    bottom_right = torch.minimum(top_left + side, centers.new_tensor([width, height])).floor_()
    xs = torch.arange(width, device=images.device)
    ys = torch.arange(height, device=images.device)
    inside_x = (xs >= top_left[:, :1]) & (xs <= bottom_right[:, :1])
    inside_y = (ys >= top_left[:, 1:]) & (ys <= bottom_right[:, 1:]) & (side > 0)
    inside = inside_y[:, None, :, None] & inside_x[:, None, None, :]
    fill = images.new_tensor(CUTOUT_FILL).div_(255).view(1, 3, 1, 1)
    return torch.where(inside, fill, images)


# -- dispatch ------------------------------------------------------------------------------------------------------

def _values(name: str, levels: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Per-sample op values from float64 levels (``OpSpec.value``), mirrored by ``signs`` for signed ops.

    float64, as Python computes Fast AA's values, so that e.g. a factor of exactly 1.0 stays 1.0.
    """
    spec = OPS[name]
    values = spec.value(levels)
    return values * signs if spec.signed else values


def _runs(counts: dict[str, int], *tensors: torch.Tensor) -> Iterator[tuple]:
    """(name, *parts) for each op present, splitting tensors sorted by op into ``counts[name]`` rows each."""
    sizes = list(counts.values())
    for name, count, *parts in zip(counts, sizes, *(tensor.split(sizes) for tensor in tensors)):
        if count:
            yield name, *parts


def apply_sorted(images: torch.Tensor, counts: list[int], levels: torch.Tensor, signs: torch.Tensor,
                 centers: torch.Tensor) -> torch.Tensor:
    """Apply ``OP_NAMES[k]`` to the next ``counts[k]`` images, for each k: the batch comes sorted by op.

    levels [n] (float64), signs [n] (+1 / -1, used by signed ops), centers [n, 2] (used by Cutout).
    Geometric ops share one resampling, photometric ops one conversion to grey levels; the op table lists
    the geometric ops first, then the photometric ones, then Cutout, so each family is one slice of the batch.
    """
    counts = dict(zip(OP_NAMES, counts))
    geometric = {name: count for name, count in counts.items() if name in _COEFFICIENTS}
    photometric = {name: count for name, count in counts.items() if name in _PHOTOMETRIC}
    sizes = [sum(geometric.values()), sum(photometric.values()), counts["Cutout"]]
    images, levels, signs, centers = (tensor.split(sizes) for tensor in (images, levels, signs, centers))
    outputs = []
    if sizes[0]:
        outputs.append(_geometric(images[0], levels[0], signs[0], geometric))
    if sizes[1]:
        outputs.append(_photometric(images[1], levels[1], signs[1], photometric))
    if sizes[2]:
        fractions = _values("Cutout", levels[2], signs[2]).to(images[2].dtype)
        outputs.append(_cutout(images[2], fractions, centers[2]))
    return torch.cat(outputs)
