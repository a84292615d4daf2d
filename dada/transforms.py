"""Batched, on-device image transforms: the CIFAR pipeline (pad-crop, flip, normalise, Cutout) and the ImageNet one.

The ImageNet search pipeline (VDIGPKU/DADA, search_relax/dataset.py) is random resized crop, flip and colour jitter
before the augmentation, then PCA lighting noise and normalisation; validation is resize then centre crop.
Each transform draws its randomness per image from one generator, without a Python loop over images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from dada.ops._batch import _uniform

_GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as torchvision's rgb_to_grayscale


def _normal(shape: int | tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """N(0, 1) draws from ``generator`` on its own device, moved to ``device``."""
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=source).to(device)


def _to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 scaled to [0,1] float; float left as it is."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


def _per_image(factor: torch.Tensor | float, images: torch.Tensor) -> torch.Tensor:
    """A scalar or one value per image, shaped to broadcast over [B, C, H, W]."""
    return torch.as_tensor(factor, dtype=images.dtype, device=images.device).reshape(-1, 1, 1, 1)


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2."""
    flip = _uniform(images.shape[0], generator, images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def random_crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding``, crop back at a random offset per image, flip half of them horizontally."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4)
    shift_y = (_uniform(batch, generator, images.device) * (2 * padding + 1)).long()
    shift_x = (_uniform(batch, generator, images.device) * (2 * padding + 1)).long()
    rows = (torch.arange(height, device=images.device) + shift_y[:, None])[:, None, :, None]
    cols = (torch.arange(width, device=images.device) + shift_x[:, None])[:, None, None, :]
    batch_index = torch.arange(batch, device=images.device)[:, None, None, None]
    channel_index = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return random_flip(padded[batch_index, channel_index, rows, cols], generator)


def normalize(images: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 or [0,1] float in, normalised float out."""
    images = _to_float(images)
    mean_t = torch.tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def cutout_normalized(images: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The data set's Cutout (DeVries & Taylor 2017; the official ``CutoutDefault``) on normalised images: zero a
    ``size`` x ``size`` pixel square (clipped at the border) at a random centre per image, i.e. the mean colour.

    Not the search-space op ``Cutout`` of `dada.ops` (Fast AA's CutoutAbs), which works on [0, 1] images before
    normalisation, fills grey (125, 123, 114) and takes its side as a fraction of the width.
    """
    if size <= 0:
        return images
    batch, _, height, width = images.shape
    centre_y = (_uniform(batch, generator, images.device) * height).long()[:, None, None]
    centre_x = (_uniform(batch, generator, images.device) * width).long()[:, None, None]
    rows = torch.arange(height, device=images.device)[None, :, None]
    cols = torch.arange(width, device=images.device)[None, None, :]
    top, left = centre_y - size // 2, centre_x - size // 2
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return images.masked_fill(inside[:, None], 0.0)


def random_resized_crop_boxes(
    batch: int,
    height: int,
    width: int,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Crop boxes (top, left, height, width) as long [B, 4], drawn like torchvision's RandomResizedCrop.get_params.

    Each image gets 10 tries of an area fraction U(scale) and a log-uniform aspect ratio w/h in ``ratio``; the
    first box that fits is kept, otherwise the centre crop of the whole image with its ratio clamped to ``ratio``.
    """
    tries = 10
    area = _uniform((batch, tries), generator, device).double() * (scale[1] - scale[0]) + scale[0]
    log_ratio = _uniform((batch, tries), generator, device).double() * math.log(ratio[1] / ratio[0])
    aspect = torch.exp(log_ratio + math.log(ratio[0]))
    target = area * (height * width)
    box_w, box_h = torch.sqrt(target * aspect).round(), torch.sqrt(target / aspect).round()
    fits = (box_w > 0) & (box_w <= width) & (box_h > 0) & (box_h <= height)
    first = fits.int().argmax(1, keepdim=True)
    in_ratio = width / height
    if in_ratio < min(ratio):
        fallback_w, fallback_h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fallback_w, fallback_h = int(round(height * max(ratio))), height
    else:
        fallback_w, fallback_h = width, height
    found = fits.any(1)
    box_h = torch.where(found, box_h.gather(1, first).squeeze(1), fallback_h)
    box_w = torch.where(found, box_w.gather(1, first).squeeze(1), fallback_w)
    top = (_uniform(batch, generator, device).double() * (height - box_h + 1)).floor()
    left = (_uniform(batch, generator, device).double() * (width - box_w + 1)).floor()
    top = torch.where(found, top, (height - fallback_h) // 2)
    left = torch.where(found, left, (width - fallback_w) // 2)
    return torch.stack([top, left, box_h, box_w], 1).long()


def resized_crop(images: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Crop each image to its box (top, left, height, width) and resize it to ``size`` x ``size``, bicubic.

    One ``grid_sample`` call over the whole image, no antialiasing, the output clamped to [0, 1]. Near a box edge
    the bicubic taps read the pixels just beyond it (torchvision crops first and replicates the crop's edge); at
    the image's edge they replicate it.
    """
    images = _to_float(images)
    batch, channels, height, width = images.shape
    top, left, box_h, box_w = boxes.to(device=images.device, dtype=images.dtype).unbind(1)
    theta = torch.zeros(batch, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = box_w / width
    theta[:, 0, 2] = (2 * left + box_w) / width - 1
    theta[:, 1, 1] = box_h / height
    theta[:, 1, 2] = (2 * top + box_h) / height - 1
    grid = F.affine_grid(theta, [batch, channels, size, size], align_corners=False)
    out = F.grid_sample(images, grid, mode="bicubic", padding_mode="border", align_corners=False)
    return out.clamp_(0, 1)


def random_resized_crop(
    images: torch.Tensor,
    size: int,
    scale: Sequence[float] = (0.08, 1.0),
    ratio: Sequence[float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """torchvision's RandomResizedCrop, bicubic, per image: uint8 or [0,1] float [B,C,H,W] -> float [B,C,size,size]."""
    batch, _, height, width = images.shape
    boxes = random_resized_crop_boxes(batch, height, width, scale, ratio, generator, images.device)
    return resized_crop(images, boxes, size)


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """Luma of RGB [B, 3, H, W] as [B, 1, H, W]."""
    red, green, blue = images.unbind(1)
    return (red * _GRAY_WEIGHTS[0] + green * _GRAY_WEIGHTS[1] + blue * _GRAY_WEIGHTS[2]).unsqueeze(1)


def _blend(images: torch.Tensor, other: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    factor = _per_image(factor, images)
    return (images * factor + other * (1 - factor)).clamp_(0, 1)


def adjust_brightness(images: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """torchvision's adjust_brightness on [0,1] floats, with one factor per image (or one for all)."""
    return (images * _per_image(factor, images)).clamp_(0, 1)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """torchvision's adjust_contrast on RGB [0,1] floats: blend with the mean grey of each image."""
    return _blend(images, _grayscale(images).mean((1, 2, 3), keepdim=True), factor)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """torchvision's adjust_saturation on RGB [0,1] floats: blend with the grayscale image."""
    return _blend(images, _grayscale(images), factor)


def color_jitter(
    images: torch.Tensor,
    brightness: float,
    contrast: float,
    saturation: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """torchvision's ColorJitter (no hue) on RGB [0,1] floats, factors U[max(0, 1-x), 1+x] per image.

    torchvision shuffles the order of the three adjustments per image; here one random order is drawn per batch.
    A strength of 0 skips its adjustment.
    """
    adjustments = [(adjust_brightness, brightness), (adjust_contrast, contrast), (adjust_saturation, saturation)]
    source = generator.device if generator is not None else images.device
    order = torch.randperm(len(adjustments), generator=generator, device=source).tolist()
    for index in order:
        adjust, strength = adjustments[index]
        if strength > 0:
            low = max(0.0, 1 - strength)
            factor = low + (1 + strength - low) * _uniform(images.shape[0], generator, images.device)
            images = adjust(images, factor)
    return images


def lighting(
    images: torch.Tensor,
    std: float,
    eigval: Sequence[float],
    eigvec: Sequence[Sequence[float]],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """AlexNet PCA lighting noise: add eigvec @ (alpha * eigval), alpha ~ N(0, std^2) per image, to every pixel.

    On [0,1] float RGB, not clamped (as the official Lighting, applied after ToTensor).
    """
    if std == 0:
        return images
    eigval_t = torch.as_tensor(eigval, dtype=images.dtype, device=images.device)
    eigvec_t = torch.as_tensor(eigvec, dtype=images.dtype, device=images.device)
    alpha = _normal((images.shape[0], 3), generator, images.device).to(images.dtype) * std
    offset = (alpha * eigval_t) @ eigvec_t.T
    return images + offset[:, :, None, None]


def resize_shorter(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the shorter side is ``size`` (the longer one scaled and truncated, as torchvision's Resize(int)).

    Bicubic with antialiasing, uint8 or [0,1] float in, float clamped to [0, 1] out.
    """
    images = _to_float(images)
    height, width = images.shape[-2:]
    if height <= width:
        out = (size, int(size * width / height))
    else:
        out = (int(size * height / width), size)
    return F.interpolate(images, size=out, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window, placed as torchvision's center_crop does."""
    height, width = images.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"center_crop: {size}x{size} does not fit in a {height}x{width} image")
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return images[..., top : top + size, left : left + size]
