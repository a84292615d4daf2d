"""MMDetection's step schedule made concrete: length in iterations, the lr at the batch, and the per-iteration factor.

The lr is the detector's at the schedule's batch (16 in MMDetection's 1x: 8 GPUs x 2 images), scaled linearly when
the batch is smaller (MMDetection's ``auto_scale_lr``, Goyal et al. 2017). The factor ramps linearly from
``warmup_ratio`` to 1 over ``warmup_iters`` iterations, and drops by ``gamma`` at each milestone epoch. A scaled-down
run keeps the shape: the milestones shrink with the epoch count, as the classification recipes' do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DetectionSchedule:
    epochs: int
    batch_size: int
    steps_per_epoch: int
    lr: float
    warmup_steps: int
    warmup_ratio: float
    milestone_steps: tuple[int, ...]
    gamma: float

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def factor(self, step: int) -> float:
        """The lr multiplier at iteration ``step`` (from 0): warmup times the milestones' decay."""
        warmup = 1.0
        if step < self.warmup_steps:
            warmup = self.warmup_ratio + (1 - self.warmup_ratio) * step / self.warmup_steps
        return warmup * self.gamma ** sum(step >= milestone for milestone in self.milestone_steps)


def plan_detection_schedule(schedule, detector_lr: float, train_size: int) -> DetectionSchedule:
    """``schedule`` (conf/detect_schedule/) for ``train_size`` images at ``detector_lr`` (a scaled schedule's
    epochs, milestones and batch, and the lr that follows the batch, come from `dada.scale.apply_scale`)."""
    steps_per_epoch = math.ceil(train_size / schedule.batch_size)
    milestones = tuple(round(epoch * steps_per_epoch) for epoch in schedule.milestones)
    return DetectionSchedule(
        epochs=schedule.epochs,
        batch_size=schedule.batch_size,
        steps_per_epoch=steps_per_epoch,
        lr=detector_lr,
        warmup_steps=schedule.warmup_iters,
        warmup_ratio=schedule.warmup_ratio,
        milestone_steps=milestones,
        gamma=schedule.gamma,
    )


def create_optimizer(model: nn.Module, schedule_cfg, plan: DetectionSchedule) -> torch.optim.SGD:
    """SGD with momentum and weight decay on every trainable parameter (MMDetection's default)."""
    parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
    return torch.optim.SGD(
        parameters, lr=plan.lr, momentum=schedule_cfg.momentum, weight_decay=schedule_cfg.weight_decay
    )


def create_scheduler(optimizer: torch.optim.Optimizer, plan: DetectionSchedule) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per iteration, after the optimiser."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, plan.factor)
