"""Schema of the evaluation app's config (``conf/train.yaml``); values live in ``conf/``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from dada.config import RunConfig, register


@dataclass
class RecipeConfig:
    """Section 4.1 "Policy Evaluation": Fast AA's training hyper-parameters (``conf/recipe/``)."""

    epochs: int = MISSING
    batch_size: int = MISSING  # global: split over the ranks under torchrun
    lr: float = MISSING  # the lr before warmup; the peak is lr * warmup_multiplier
    weight_decay: float = MISSING
    momentum: float = MISSING
    nesterov: bool = MISSING
    grad_clip: float = MISSING  # 0: no clipping
    schedule: str = MISSING  # cosine | multistep, stepped per iteration
    warmup_multiplier: float = 1.0  # GradualWarmupScheduler: lr ramps to lr * multiplier (from 0 when 1)
    warmup_epochs: float = 0.0
    milestones: list[int] = field(default_factory=list)  # multistep: epochs after the warmup
    gamma: float = 0.1  # multistep decay factor
    crop_padding: int = 4  # pad-and-crop of the 32x32 sets
    color_jitter: float = 0.0  # ImageNet: brightness, contrast and saturation strength
    lighting: float = 0.0  # ImageNet: standard deviation of the PCA lighting noise
    eval_batch_size: int = 1024


@dataclass
class PolicyConfig:
    """What runs between crop+flip and normalisation; ``cutout: false`` is the paper's "Baseline"."""

    name: str = MISSING  # none | cutout | autoaugment | randaugment | trivialaugment | random | dada | fastaa
    source: Optional[str] = None  # dada: shipped name or policy.json; autoaugment, fastaa: cifar10 | svhn | imagenet
    num_ops: Optional[int] = None  # randaugment: N; random: operations per sub-policy
    magnitude: Optional[int] = None  # randaugment: M
    num_sub_policies: Optional[int] = None  # random
    cutout: bool = True  # the data set's Cutout after normalisation
    on_device: Optional[bool] = None  # null: batched on the device whenever the policy and the data allow


@dataclass
class TrainAppConfig(RunConfig):
    recipe: RecipeConfig = MISSING
    policy: PolicyConfig = MISSING
    subset_seed: int = 0  # scaled-down runs: the same stratified train/test subsets for every seed and policy
    amp: bool = True  # bf16 autocast (CUDA only)
    channels_last: bool = True  # CUDA only
    compile: bool = False  # torch.compile the model
    num_workers: int = 4  # DataLoader workers, where a loader is used
    log_every: int = 50  # steps between step-level metrics
    tag: str = ""  # appended to the run name, e.g. tag=-relax-seed1


register("train_schema", TrainAppConfig)
