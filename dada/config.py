"""Structured-config schemas shared by the Hydra apps.

Each app's root config starts from a schema registered here, so an unknown key or a wrong type fails at
start-up with Hydra's own message, before any work begins. The numbers live in ``conf/``, not here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SearchPipelineConfig:
    """The official reduced-ImageNet search augmentation around the op (values in conf/dataset/imagenet.yaml)."""

    random_resized_crop_scale: list[float] = MISSING
    color_jitter: float = MISSING
    lighting_std: float = MISSING
    pca_eigval: list[float] = MISSING
    pca_eigvec: list[list[float]] = MISSING
    val_resize: int = MISSING


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str = "${oc.env:DATA_ROOT,./data}"
    num_classes: int = MISSING
    image_size: int = 32
    mean: list[float] = MISSING
    std: list[float] = MISSING
    eval_train_split: str = "${.name}"  # svhn evaluates on train+extra
    search_images: int = MISSING  # the reduced set the search runs on
    search_classes: Optional[int] = None  # reduced ImageNet keeps a subset of classes
    search_split_seed: int = 0
    search_train_fraction: float = 0.5
    cutout: int = 0  # Cutout side in pixels, applied in search and evaluation where the recipe says so
    search_pipeline: Optional[SearchPipelineConfig] = None  # None: pad-crop and flip (the CIFAR search)


@dataclass
class ModelConfig:
    name: str = MISSING
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoggerConfig:
    backends: list[str] = field(default_factory=lambda: ["jsonl"])
    mlflow_uri: str = "sqlite:///mlruns.db"
    wandb_mode: str = "offline"
    wandb_project: str = "dada"
    experiment: str = "dada"
    heatmap_every: int = 5


@dataclass
class ScaleConfig:
    """The same code path at another size: a null field keeps the recipe's value."""

    name: str = MISSING
    model: Optional[str] = None
    search_epochs: Optional[int] = None
    search_images: Optional[int] = None
    train_epochs: Optional[int] = None
    train_images: Optional[int] = None
    test_images: Optional[int] = None
    batch_size: Optional[int] = None


@dataclass
class RunConfig:
    """What a run of either app has: data, model, logging, scale, seed, device, table and where it writes."""

    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    logger: LoggerConfig = MISSING
    scale: ScaleConfig = MISSING
    seed: int = 0
    device: str = "auto"
    deterministic: bool = True
    table: str = "none"
    name: str = MISSING
    run_dir: str = MISSING


def register(name: str, node: type) -> None:
    """Register an app's root schema under ``name`` (idempotent)."""
    ConfigStore.instance().store(name=name, node=node)
