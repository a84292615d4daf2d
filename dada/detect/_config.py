"""Schema of the detection app's config (``conf/detect.yaml``); values live in ``conf/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from dada.config import ConfigValueError, LoggerConfig, ScaleConfig, check_range, check_scale, check_schema
from dada.detect.datasets import DETECTION_DATASETS
from dada.detect.models import DETECTORS, STAGES


@dataclass
class DetectDatasetConfig:
    """A detection set in COCO's layout (``dada.detect.datasets``) and how the detector sizes its images."""

    name: str = MISSING  # coco | fashion-mnist-detection
    root: str = "${oc.env:DATA_ROOT,./data}"
    min_size: int = MISSING  # the shorter side after resizing (MMDetection's Resize(1333, 800), keep_ratio)
    max_size: int = MISSING  # the cap on the longer side
    flip: float = MISSING  # horizontal flip probability in training


@dataclass
class DetectorConfig:
    name: str = MISSING  # retinanet | faster_rcnn | mask_rcnn
    lr: float = MISSING  # at the schedule's batch_size; a scale's smaller batch scales it linearly (dada.scale)
    kwargs: dict[str, Any] = field(default_factory=dict)  # to torchvision's detector class


@dataclass
class DetectScheduleConfig:
    """MMDetection's step schedule (conf/detect_schedule/)."""

    epochs: int = MISSING
    batch_size: int = MISSING  # the batch the detector's lr is given at
    momentum: float = MISSING
    weight_decay: float = MISSING
    milestones: list[float] = MISSING  # epochs after which the lr drops by gamma
    gamma: float = MISSING
    warmup_iters: int = MISSING  # iterations of linear warmup, 0 for none
    warmup_ratio: float = MISSING  # the warmup's starting fraction of the lr
    grad_clip: float = MISSING  # the gradients' largest L2 norm; 0: no clipping


@dataclass
class BackboneConfig:
    run: str = MISSING  # a finished dada.train run folder of model=resnet50
    name: str = "resnet50"  # a label: the run folder's variant unless variant_name is set
    frozen_stages: int = MISSING  # MMDetection's: -1 none, 0 the stem, k the stem and the first k stages
    norm_eval: bool = MISSING  # BatchNorm statistics frozen at the backbone's, affine weights trained


@dataclass
class DetectAppConfig:
    dataset: DetectDatasetConfig = MISSING
    detector: DetectorConfig = MISSING
    schedule: DetectScheduleConfig = MISSING
    backbone: BackboneConfig = MISSING
    logger: LoggerConfig = MISSING
    scale: ScaleConfig = MISSING  # train_epochs, train_images, test_images, (train_)batch_size, num_workers apply
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    threads: Optional[int] = None  # torch's CPU threads; null: its default
    table: str = "none"
    name: str = MISSING
    runs_root: str = "runs"
    run_dir: str = MISSING
    experiment_name: str = "detect_${dataset.name}_${detector.name}"
    variant_name: str = "${backbone.name}${tag}"  # run_dir's variant: the backbone's column
    subset_seed: int = 0  # scaled-down runs: the same train/test images for every seed and backbone
    num_workers: int = 4  # DataLoader workers
    train_images: Optional[int] = None  # a subset of the training images with instances (subset_seed); null: all
    test_images: Optional[int] = None  # a subset of the test images; null: all
    tag: str = ""


def validate(cfg: DictConfig) -> None:
    """Refuse unknown keys, unknown names and out-of-range values at start-up, naming the key and the valid range."""
    check_schema(cfg, DetectAppConfig)
    if OmegaConf.is_missing(cfg.backbone, "run"):
        raise ConfigValueError(
            "backbone.run is required: the run folder of a finished dada.train run of model=resnet50, e.g. "
            "backbone.run=runs/paper/table4_imagenet_resnet50/none/seed0"
        )
    for key, valid in (("dataset.name", DETECTION_DATASETS), ("detector.name", DETECTORS)):
        value = OmegaConf.select(cfg, key)
        if value not in valid:
            raise ConfigValueError(f"{key}={value!r} is unknown; valid choices: {', '.join(valid)}")
    check_scale(cfg)
    for key in ("train_images", "test_images"):
        check_range(cfg, key, 1, nullable=True)
    check_range(cfg, "threads", 1, nullable=True)
    for key in ("schedule.epochs", "schedule.batch_size", "dataset.min_size", "logger.log_every"):
        check_range(cfg, key, 1)
    check_range(cfg, "dataset.max_size", cfg.dataset.min_size)
    check_range(cfg, "detector.lr", 0, above=True)
    check_range(cfg, "schedule.gamma", 0, 1, above=True)
    check_range(cfg, "schedule.warmup_ratio", 0, 1, above=True)
    for key in ("schedule.momentum", "schedule.weight_decay", "schedule.warmup_iters", "schedule.grad_clip"):
        check_range(cfg, key, 0)
    check_range(cfg, "dataset.flip", 0, 1)
    check_range(cfg, "backbone.frozen_stages", -1, len(STAGES))
