"""Batched, on-device versions of the standard CIFAR pipeline: pad-crop, flip, normalise, Cutout.

Each draws its randomness per image from one generator, without a Python loop over images.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform(batch: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """U[0, 1) draws from ``generator`` on its own device, moved to ``device``."""
    source = generator.device if generator is not None else device
    return torch.rand(batch, generator=generator, device=source).to(device)


def random_crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by ``padding``, crop back at a random offset per image, flip half of them horizontally."""
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4)
    shift_y = (_uniform(batch, generator, images.device) * (2 * padding + 1)).long()
    shift_x = (_uniform(batch, generator, images.device) * (2 * padding + 1)).long()
    rows = (torch.arange(height, device=images.device) + shift_y[:, None])[:, None, :, None]
    cols = (torch.arange(width, device=images.device) + shift_x[:, None])[:, None, None, :]
    flip = _uniform(batch, generator, images.device) < 0.5
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    batch_index = torch.arange(batch, device=images.device)[:, None, None, None]
    channel_index = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols]


def normalize(images: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 or [0,1] float in, normalised float out."""
    if images.dtype == torch.uint8:
        images = images.float().div_(255)
    mean_t = torch.tensor(mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean_t) / std_t


def cutout(images: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """DeVries & Taylor (2017): zero a ``size`` x ``size`` square (clipped at the border) at a random centre."""
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
