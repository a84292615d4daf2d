"""Batched tensor backend: the 15 ops on float batches [n, 3, H, W] in [0, 1], each sample with its own value.

Results match the PIL reference (``_pil.py``):
- geometric ops resample with PIL's AFFINE coefficients, NEAREST and black fill;
- photometric ops work on 8-bit grey levels with PIL's integer arithmetic (ITU-R 601 luminance, lookup tables,
  truncating blends), so each level comes out as PIL's does.
A batch comes sorted by op in ``KERNEL_ORDER``, so that ops sharing their image-sized work run as one family:
all geometric samples in one ``grid_sample``, all lookup-table samples in one ``gather``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from ._table import CUTOUT_FILL

# A family kernel: (images [n, 3, H, W], values [n], Cutout centres [n, 2]) -> augmented images.
Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# A lookup table: (grey levels [n, 3, H * W], values [n], the identity table [1, 1, 256]) -> [n, 1 or 3, 256].
Table = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# -- geometric ops: PIL's affine map, one resampling ---------------------------------------------------------------

_GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def _geometric(
    images: torch.Tensor, values: torch.Tensor, centers: torch.Tensor, counts: dict[str, int]
) -> torch.Tensor:
    """The geometric family (``counts[name]`` samples of each op, in ``_GEOMETRIC`` order) in one resampling.

    Each op sets one parameter of PIL's affine map (output (x, y) reads input (a x + b y + c, d x + e y + f)):
    ShearX b, ShearY d, TranslateX c (fraction of the width), TranslateY f (of the height), Rotate a rotation
    about the image centre, counter-clockwise in degrees, as ``Image.rotate``.
    """
    height, width = images.shape[-2:]
    sizes = torch.tensor(list(counts.values()), device=values.device)
    # Row i of eye(5) one-hot codes op i; repeating it counts[i] times gives each sorted sample its op's one-hot,
    # so values[:, None] * op_of_sample puts every sample's value in its op's column and zeros elsewhere.
    op_of_sample = torch.eye(len(_GEOMETRIC), dtype=values.dtype, device=values.device).repeat_interleave(sizes, 0)
    shear_x, shear_y, translate_x, translate_y, degrees = (values[:, None] * op_of_sample).T
    angle = -torch.deg2rad(degrees)
    cos, sin = angle.cos(), angle.sin()
    cx, cy = width / 2, height / 2
    coefficients = (
        cos,
        sin + shear_x,
        cx - cos * cx - sin * cy + translate_x * width,
        shear_y - sin,
        cos,
        cy + sin * cx - cos * cy + translate_y * height,
    )
    return _affine(images, *coefficients)


def _affine(
    images: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    d: torch.Tensor,
    e: torch.Tensor,
    f: torch.Tensor,
) -> torch.Tensor:
    """Resample each image with its PIL AFFINE coefficients ([n] each); NEAREST and black fill, PIL's defaults.

    PIL's map acts on pixel-edge coordinates u (pixel k spans [k, k + 1)); affine_grid's theta is the same map
    on grid_sample's coordinates g = 2 u / size - 1 (align_corners=False).
    """
    height, width = images.shape[-2:]
    theta = torch.stack(
        [
            a,
            b * height / width,
            a + (b * height + 2 * c) / width - 1,
            d * width / height,
            e,
            e + (d * width + 2 * f) / height - 1,
        ],
        dim=1,
    )
    grid = F.affine_grid(theta.view(-1, 2, 3).to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


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
    return (levels * weights).sum(dim=1, keepdim=True).add_(2**15).div_(2**16).floor_()


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


def _autocontrast_table(levels: torch.Tensor, _: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.autocontrast``: stretch each channel's [min, max] onto [0, 255], truncated."""
    low, high = levels.double().aminmax(dim=2, keepdim=True)
    scale = torch.full_like(high, 255).div_((high - low).clamp(min=1))  # not 255 / t: that is 255 * (1 / t)
    table = (grey.double() * scale - low * scale).floor_().clamp_(0, 255)
    return torch.where(high > low, table.to(grey.dtype), grey)


def _equalize_table(levels: torch.Tensor, _: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
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
    return torch.where(step > 0, table, grey)


def _contrast_table(levels: torch.Tensor, factors: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
    """PIL's Contrast: blend towards the luminance mean, rounded to a grey level."""
    mean = _luminance(levels).mean(dim=2, keepdim=True).add_(0.5).floor_()
    return _blend(mean, grey, factors)


_TABLES: dict[str, Table] = {
    "AutoContrast": _autocontrast_table,
    "Invert": lambda levels, _, grey: 255 - grey,
    "Equalize": _equalize_table,
    # PIL's solarize: invert the levels at or above the threshold.
    "Solarize": lambda levels, v, grey: torch.where(grey >= v.view(-1, 1, 1), 255 - grey, grey),
    # PIL's posterize: keep the top ``bits`` bits of each level.
    "Posterize": lambda levels, bits, grey: grey - grey.remainder(torch.exp2(8 - bits).view(-1, 1, 1)),
    "Contrast": _contrast_table,
    "Brightness": lambda levels, v, grey: _blend(0.0, grey, v),
}


def _grey_levels(kernel: Callable[..., torch.Tensor]) -> Kernel:
    """Make ``kernel`` (on grey levels 0..255) a kernel on float images in [0, 1].

    Values reach it in the images' dtype, as PIL's C code casts its float arguments.
    """

    @functools.wraps(kernel)
    def on_levels(images: torch.Tensor, values: torch.Tensor, centers: torch.Tensor, **options) -> torch.Tensor:
        return kernel(images.mul(255).round_(), values.to(images.dtype), centers, **options).div_(255)

    return on_levels


@_grey_levels
def _lookup(levels: torch.Tensor, values: torch.Tensor, centers: torch.Tensor, counts: dict[str, int]) -> torch.Tensor:
    """The lookup-table family: ``counts[name]`` samples of each op, in order; their tables applied in one gather."""
    flat = levels.flatten(2)
    grey = _grey(levels)
    tables = [
        _TABLES[name](run, value, grey).expand(len(run), 3, 256) for name, run, value in _runs(counts, flat, values)
    ]
    return torch.cat(tables).gather(2, flat.long()).view_as(levels)


@_grey_levels
def _color(levels: torch.Tensor, factors: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """PIL's Color: blend towards the luminance."""
    return _blend(_luminance(levels), levels, factors)


@_grey_levels
def _sharpness(levels: torch.Tensor, factors: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """PIL's Sharpness: blend towards the SMOOTH-filtered image."""
    return _blend(_smooth(levels), levels, factors)


# -- Cutout --------------------------------------------------------------------------------------------------------


def _cutout(images: torch.Tensor, fractions: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Fast AA's Cutout: a square of side ``fraction * width`` around ``centers`` (x, y) [n, 2], grey-filled.

    The box of ``_pil.cutout_box``, by coordinate comparisons; a zero side leaves the image unchanged.
    """
    height, width = images.shape[-2:]
    side = (fractions * width).view(-1, 1)
    top_left = (centers - side / 2).clamp_(min=0).floor_()
    bottom_right = top_left + side
    bottom_right[:, 0].clamp_(max=width)
    bottom_right[:, 1].clamp_(max=height)
    bottom_right.floor_()
    xs = torch.arange(width, device=images.device)
    ys = torch.arange(height, device=images.device)
    inside_x = (xs >= top_left[:, :1]) & (xs <= bottom_right[:, :1])
    inside_y = (ys >= top_left[:, 1:]) & (ys <= bottom_right[:, 1:]) & (side > 0)
    inside = inside_y[:, None, :, None] & inside_x[:, None, None, :]
    fill = images.new_tensor(CUTOUT_FILL).div_(255).view(1, 3, 1, 1)
    return torch.where(inside, fill, images)


# -- dispatch ------------------------------------------------------------------------------------------------------

KERNEL_ORDER: tuple[str, ...] = (*_GEOMETRIC, *_TABLES, "Color", "Sharpness", "Cutout")


def _runs(counts: dict, *tensors: torch.Tensor) -> Iterator[tuple]:
    """(key, *parts) for each key with rows, splitting tensors sorted by key into ``counts[key]`` rows each."""
    sizes = list(counts.values())
    for key, count, *parts in zip(counts, sizes, *(tensor.split(sizes) for tensor in tensors)):
        if count:
            yield key, *parts


def apply_sorted(images: torch.Tensor, counts: list[int], values: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Apply ``KERNEL_ORDER[k]`` to the next ``counts[k]`` images, for each k: the batch comes sorted so.

    values [n]: each sample's op value (``OpSpec.value``, mirrored); centers [n, 2]: Cutout centres (x, y).
    """
    counts = dict(zip(KERNEL_ORDER, counts))  # the list, position k for KERNEL_ORDER[k], as a dict by op name
    geometric = {name: counts[name] for name in _GEOMETRIC}
    tables = {name: counts[name] for name in _TABLES}
    families: dict[Kernel, int] = {
        functools.partial(_geometric, counts=geometric): sum(geometric.values()),
        functools.partial(_lookup, counts=tables): sum(tables.values()),
        _color: counts["Color"],
        _sharpness: counts["Sharpness"],
        _cutout: counts["Cutout"],
    }
    return torch.cat(
        [
            kernel(images_run, value, center)
            for kernel, images_run, value, center in _runs(families, images, values, centers)
        ]
    )
