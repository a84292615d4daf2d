"""A recipe made concrete: the schedule's length in steps, the SGD optimiser and timm's per-step lr schedule.

Fast AA wraps its cosine (or multi-step) schedule in ``GradualWarmupScheduler``: with multiplier m > 1
the lr ramps linearly from ``lr`` to ``m * lr`` over the warmup epochs (from 0 to ``lr`` when m = 1),
then the schedule runs from the peak. Here timm's schedulers do the same with ``warmup_prefix=True``,
stepped every iteration; the cosine reaches 0 at the last step (Fast AA's, whose T_max counts the warmup
epochs too, stops at about 0.25% of the peak). A scaled-down run keeps the schedule's shape: warmup
and milestones shrink with the epoch count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler
from torch import nn

SCHEDULES = ("cosine", "multistep")


@dataclass(frozen=True)
class Schedule:
    """Training length after the scale: epochs, global batch, and the warmup and milestones in steps."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    warmup_steps: int
    milestone_steps: tuple[int, ...]

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def plan_schedule(recipe, train_size: int) -> Schedule:
    """The recipe's schedule for ``train_size`` images (a scaled recipe's epochs, warmup and milestones come
    shortened by `dada.scale.apply_scale`)."""
    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"unknown recipe.schedule {recipe.schedule!r}; valid choices: {', '.join(SCHEDULES)}")
    epochs, batch_size = recipe.epochs, recipe.batch_size
    steps_per_epoch = train_size // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch size {batch_size} exceeds the {train_size} training images")
    warmup_steps = round(recipe.warmup_epochs * steps_per_epoch)
    milestones = tuple(round(epoch * steps_per_epoch) for epoch in recipe.milestones)
    return Schedule(epochs, batch_size, steps_per_epoch, warmup_steps, milestones)


def peak_lr(recipe) -> float:
    """The lr the warmup reaches: ``lr * warmup_multiplier`` (Fast AA's GradualWarmupScheduler)."""
    return recipe.lr * max(recipe.warmup_multiplier, 1.0)


def create_optimizer(model: nn.Module, recipe) -> torch.optim.SGD:
    """SGD as Fast AA's train.py: momentum, optional Nesterov, weight decay on every parameter."""
    return torch.optim.SGD(
        model.parameters(),
        lr=peak_lr(recipe),
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )


def create_scheduler(optimizer: torch.optim.Optimizer, recipe, schedule: Schedule) -> Scheduler:
    """timm's cosine or multi-step schedule after a linear warmup; call ``step_update(step)`` before each step."""
    warmup = dict(
        warmup_t=schedule.warmup_steps,
        warmup_prefix=True,
        t_in_epochs=False,
        warmup_lr_init=recipe.lr if recipe.warmup_multiplier > 1 else 0.0,
    )
    if recipe.schedule == "cosine":
        return CosineLRScheduler(
            optimizer, t_initial=max(schedule.total_steps - schedule.warmup_steps, 1), lr_min=0.0, **warmup
        )
    # timm applies milestone m at step index m - 1; + 1 makes the decay start at step m, as MultiStepLR does.
    return MultiStepLRScheduler(
        optimizer, decay_t=[step + 1 for step in schedule.milestone_steps], decay_rate=recipe.gamma, **warmup
    )
