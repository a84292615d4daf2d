"""Schema of the detection app's config (``conf/detect.yaml``); values live in ``conf/``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

from dada.config import SEED_MAX, ConfigValueError, LoggerConfig, ScaleConfig, check_range, check_schema, valid
from dada.detect.datasets import DETECTION_DATASETS
from dada.detect.models import DETECTORS, STAGES


@dataclass
class DetectDatasetConfig:
    """A detection set in COCO's layout (``dada.detect.datasets``) and how the detector sizes its images."""

    name: str = MISSING  # coco | fashion-mnist-detection
    root: str = "${oc.env:DATA_ROOT,./data}"
    min_size: int = valid(">= 1")  # the shorter side after resizing (MMDetection's Resize(1333, 800), keep_ratio)
    max_size: int = valid(">= 1")  # the cap on the longer side, at least min_size
    flip: float = valid("[0, 1]")  # horizontal flip probability in training


@dataclass
class DetectorConfig:
    name: str = MISSING  # retinanet | faster_rcnn | mask_rcnn
    lr: float = valid("> 0")  # at the schedule's batch_size; a scale's smaller batch scales it linearly (dada.scale)
    kwargs: dict[str, Any] = field(default_factory=dict)  # to torchvision's detector class


@dataclass
class DetectScheduleConfig:
    """MMDetection's step schedule (conf/detect_schedule/)."""

    epochs: int = valid(">= 1")
    batch_size: int = valid(">= 1")  # the batch the detector's lr is given at
    momentum: float = valid("[0, 1)")
    weight_decay: float = valid(">= 0")
    milestones: list[float] = valid("> 0")  # epochs after which the lr drops by gamma
    gamma: float = valid("(0, 1]")
    warmup_iters: int = valid(">= 0")  # iterations of linear warmup, 0 for none
    warmup_ratio: float = valid("(0, 1]")  # the warmup's starting fraction of the lr
    grad_clip: float = valid(">= 0")  # the gradients' largest L2 norm; 0: no clipping


@dataclass
class BackboneConfig:
    run: str = MISSING  # a finished dada.train run folder of model=resnet50
    name: str = "resnet50"  # a label: the run folder's variant unless variant_name is set
    frozen_stages: int = valid(
        f"[-1, {len(STAGES)}]"
    )  # MMDetection's: -1 none, 0 the stem, k the stem and the first k stages
    norm_eval: bool = MISSING  # BatchNorm statistics frozen at the backbone's, affine weights trained


@dataclass
class DetectAppConfig:
    dataset: DetectDatasetConfig = MISSING
    detector: DetectorConfig = MISSING
    schedule: DetectScheduleConfig = MISSING
    backbone: BackboneConfig = MISSING
    logger: LoggerConfig = MISSING
    scale: ScaleConfig = MISSING  # train_epochs, train_images, test_images, (train_)batch_size, num_workers apply
    seed: int = valid(f"[0, {SEED_MAX}]", 0)
    device: str = "auto"
    deterministic: bool = True
    threads: Optional[int] = valid(">= 1", None)  # torch's CPU threads; null: its default
    table: str = "none"
    name: str = MISSING
    runs_root: str = "runs"
    run_dir: str = MISSING
    experiment_name: str = "detect_${dataset.name}_${detector.name}"
    variant_name: str = "${backbone.name}${tag}"  # run_dir's variant: the backbone's column
    subset_seed: int = valid(f"[0, {SEED_MAX}]", 0)  # scaled-down runs: the same images for every seed, backbone
    num_workers: int = valid(">= 0", 4)  # DataLoader workers
    train_images: Optional[int] = valid(">= 1", None)  # a subset of the training images with instances; null: all
    test_images: Optional[int] = valid(">= 1", None)  # a subset of the test images; null: all
    tag: str = ""


def validate(cfg: DictConfig) -> None:
    """Refuse unknown keys, unknown names and out-of-range values at start-up, naming the key and the valid range."""
    check_schema(cfg, DetectAppConfig)
    if OmegaConf.is_missing(cfg.backbone, "run"):
        raise ConfigValueError(
            "backbone.run is required: the run folder of a finished dada.train run of model=resnet50, e.g. "
            "backbone.run=runs/paper/table4_imagenet_resnet50/none/seed0"
        )
    for key, choices in (("dataset.name", DETECTION_DATASETS), ("detector.name", DETECTORS)):
        value = OmegaConf.select(cfg, key)
        if value not in choices:
            raise ConfigValueError(f"{key}={value!r} is unknown; valid choices: {', '.join(choices)}")
    check_range(cfg, "dataset.max_size", cfg.dataset.min_size)
