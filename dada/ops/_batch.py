"""Batched application: validate, sort the batch by op so each kernel family runs once, add the ST gradient."""

from __future__ import annotations

import math

import torch

from ._table import OP_NAMES, batch_values, check_level, check_sign, op_spec
from ._tensor import KERNEL_ORDER, apply_sorted


def apply(
    x: torch.Tensor,
    name: str,
    level: float | torch.Tensor,
    mask: torch.Tensor | None = None,
    sign: int | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    center: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply op ``name`` to a batch ``x`` [B, 3, H, W]; see ``apply_indexed`` for the arguments."""
    op_spec(name)
    check_image_range(x)
    op_index = torch.full((len(x),), OP_NAMES.index(name), dtype=torch.long, device=x.device)
    return apply_indexed(x, op_index, level, mask, sign, generator, center=center)


def check_image_range(x: torch.Tensor) -> None:
    """Raise unless ``x`` is an image batch [B, 3, H, W] of uint8, or of finite floats in [0, 1].

    One pass over the pixels: the public entry points (``apply``, ``Policy.apply_batch``) call it once; the
    search's hot path (``apply_indexed``) does not.
    """
    _check_images(x)
    if not x.is_floating_point() or x.numel() == 0:
        return
    low, high = torch.aminmax(x.detach())
    low, high = low.item(), high.item()
    if not 0.0 <= low <= high <= 1.0:  # also false for NaN; an Inf lies outside
        found = "NaN values" if math.isnan(low) else f"values in [{low:g}, {high:g}]"
        raise ValueError(f"float images must lie in [0, 1] (or be uint8 in [0, 255]); found {found}")


def apply_indexed(
    x: torch.Tensor,
    op_index: torch.Tensor,
    level: float | torch.Tensor,
    mask: torch.Tensor | None = None,
    sign: int | torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    center: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply op ``OP_NAMES[op_index[i]]`` at ``level[i]`` to sample i of ``x``, for every i where ``mask`` holds.

    x: uint8, or float in [0, 1], [B, 3, H, W] on any device; the result has x's dtype. level: a float or [B],
    in [0, 1]. mask: bool [B], None = all; unmasked samples come back unchanged. sign: +1, -1 or [B] of them,
    fixing the random mirror of signed ops; None draws it per sample. center: Cutout centres (x, y) in pixels,
    [B, 2] or [2]; None draws them uniformly over the image. generator: drives both draws.

    Eq. 10-11 (straight-through): when ``level`` requires grad, d out / d level[i] = 1 for every pixel of
    every masked sample i (0 for the others), for all 15 ops; gradients reach float ``x`` as the identity,
    so the earlier op of a sub-policy also gets Eq. 11's gradient.
    """
    _check_images(x)
    images = _as_float(x)
    batch, device = len(images), images.device
    level = _per_sample("level", level, batch, device, torch.float64)
    check_level(level)
    if level.requires_grad and not x.is_floating_point():
        raise ValueError("the straight-through magnitude gradient needs float images in [0, 1], got uint8")
    op_index = _check_op_index(op_index, batch, device)
    active = _check_mask(mask, batch, device)
    signs, centers = _draws(images, sign, center, generator)
    with torch.no_grad():
        out = _apply_groups(images, op_index, active, batch_values(op_index, level, signs), centers)
    out = _straight_through(out, images, level, active)
    return out.to(x.dtype) if x.is_floating_point() else out.mul_(255).round_().to(torch.uint8)


def _apply_groups(
    images: torch.Tensor, op_index: torch.Tensor, active: torch.Tensor, values: torch.Tensor, centers: torch.Tensor
) -> torch.Tensor:
    """Sort the active samples by op (in ``KERNEL_ORDER``) and augment them in one pass; the others pass through."""
    rank = torch.tensor([KERNEL_ORDER.index(name) for name in OP_NAMES], device=images.device)[op_index]
    key = torch.where(active, rank, len(OP_NAMES))  # inactive samples get the last key, so they sort to the end
    order = torch.argsort(key, stable=True)
    counts = torch.bincount(key, minlength=len(OP_NAMES) + 1).tolist()
    order = order[: len(order) - counts.pop()]  # pop the inactive count off the counts and drop those samples
    if len(order) == 0:
        return images.clone()
    return images.index_copy(0, order, apply_sorted(images[order], counts, values[order], centers[order]))


def _straight_through(
    out: torch.Tensor, images: torch.Tensor, level: torch.Tensor, active: torch.Tensor
) -> torch.Tensor:
    """Eq. 10: forward ``out`` unchanged; backward d out / d level = 1 on the active samples, d out / d x = I."""
    if level.requires_grad:
        out = out + ((level - level.detach()) * active).to(out.dtype).view(-1, 1, 1, 1)
    if images.requires_grad:
        out = out + (images - images.detach())
    return out


# -- argument plumbing -------------------------------------------------------------------------------------------


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected an image batch [B, 3, H, W], got {getattr(x, 'shape', type(x))}")
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ValueError(f"images must be uint8 or float in [0, 1], got {x.dtype}")


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """x as float in [0, 1]: uint8 scaled; half precision widened to float32, where grey levels stay exact."""
    if x.dtype == torch.uint8:
        return x.float().div_(255)
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _check_op_index(op_index: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    if not isinstance(op_index, torch.Tensor) or op_index.shape != (batch,) or op_index.is_floating_point():
        raise ValueError(f"op_index must be an integer tensor of shape ({batch},)")
    op_index = op_index.to(device=device, dtype=torch.long)
    if not bool(((op_index >= 0) & (op_index < len(OP_NAMES))).all()):
        raise ValueError(f"op_index must lie in [0, {len(OP_NAMES) - 1}], indexing OP_NAMES: {', '.join(OP_NAMES)}")
    return op_index


def _per_sample(
    argument: str, value: object, batch: int, device: torch.device, dtype: torch.dtype, trailing: tuple[int, ...] = ()
) -> torch.Tensor:
    """Broadcast a scalar or tensor argument to shape [batch, *trailing] on ``device``, keeping autograd."""
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    try:
        return tensor.expand(batch, *trailing)
    except RuntimeError:
        raise ValueError(
            f"{argument} must be a scalar or of shape {(batch, *trailing)}, got {tuple(tensor.shape)}"
        ) from None


def _check_mask(mask: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor of shape ({batch},) or None")
    return _per_sample("mask", mask, batch, device, torch.bool)


def _draws(
    images: torch.Tensor,
    sign: int | torch.Tensor | None,
    center: torch.Tensor | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mirror signs [B] (float64) and Cutout centres [B, 2]: the given ones, or drawn."""
    batch, device = len(images), images.device
    check_sign(sign)
    if sign is None:
        sign = torch.where(_uniform((batch,), generator, device) < 0.5, -1.0, 1.0)  # Fast AA's random mirror
    if center is None:
        height, width = images.shape[-2:]
        center = _uniform((batch, 2), generator, device) * images.new_tensor([width, height])
    return (
        _per_sample("sign", sign, batch, device, torch.float64),
        _per_sample("center", center, batch, device, images.dtype, trailing=(2,)),
    )


def _uniform(shape: int | tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """U[0, 1) draws from ``generator`` (on its own device), moved to ``device``; dada.transforms draws with it too."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source).to(device)
