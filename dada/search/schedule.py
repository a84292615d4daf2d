"""The search's epochs as the official code runs them: its batches and its network learning rate.

Two settings of ``conf/search/_base.yaml`` (FIDELITY.md rows 22-23):

- ``search.drop_last``: the official loaders keep the last partial batch (VDIGPKU/DADA search_relax/dataset.py:
  342-351, ``drop_last=False``), so 2000 search-train images at batch 128 give 16 steps an epoch, not 15;
- ``search.lr_step_first``: the official loop steps the cosine schedule at the *start* of each epoch and then
  reads the rate (search_relax/train_search_paper.py:160-162, train_search.py:168-170), so epoch e (from 0)
  trains at lr(e + 1) and the last epoch at ``lr_min``; stepping at the end trains epoch e at lr(e).
"""

from __future__ import annotations

import math

import torch


def steps_per_epoch(count: int, batch_size: int, drop_last: bool) -> int:
    """Batches in one pass over ``count`` images."""
    return count // batch_size if drop_last else math.ceil(count / batch_size)


def epoch_batches(
    count: int, batch_size: int, generator: torch.Generator, device: torch.device, drop_last: bool
) -> list[torch.Tensor]:
    """One random pass over ``count`` images as index batches; the last one partial unless ``drop_last``."""
    order = torch.randperm(count, generator=generator, device=device)
    if drop_last:
        order = order[: steps_per_epoch(count, batch_size, drop_last) * batch_size]
    return list(order.split(batch_size))


def network_schedule(
    optimizer: torch.optim.Optimizer, epochs: int, lr_min: float, step_first: bool
) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine decay from the optimizer's lr to ``lr_min`` over ``epochs``, stepped once after every epoch.

    ``step_first`` runs it one epoch ahead, as the official loop's step before each epoch does: epoch e trains
    at lr(e + 1), in closed form ``lr_min + (lr - lr_min) (1 + cos(pi t / epochs)) / 2`` at t = e + 1.
    """
    if not step_first:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=lr_min)
    lr = optimizer.param_groups[0]["lr"]

    def factor(epoch: int) -> float:
        return (lr_min + (lr - lr_min) * (1 + math.cos(math.pi * (epoch + 1) / epochs)) / 2) / lr

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
