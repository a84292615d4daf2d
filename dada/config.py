"""Structured-config schemas shared by the Hydra apps, and the start-up checks of a composed config.

Each app's root config starts from a schema registered here, so an unknown key or a wrong type fails at
start-up with Hydra's own message, before any work begins. The numbers live in ``conf/``, not here.
Hydra's ``+key=value`` adds keys past the schema, and a type cannot say "at least 1": `check_schema` and
`check_run_config` (called by each app's validation) catch both.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # the apps' config_path, from the repository root


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
    log_every: int = 20  # steps between step-level metrics, in every app


@dataclass
class ScaleConfig:
    """The same code path at another size: a null field keeps the recipe's value. `dada.scale.apply_scale` moves
    the non-null fields into the run's own keys when the config is composed and clears them here."""

    name: str = MISSING
    model: Optional[str] = None
    search_epochs: Optional[int] = None
    search_images: Optional[int] = None
    train_epochs: Optional[int] = None
    train_images: Optional[int] = None
    test_images: Optional[int] = None
    test_every: Optional[int] = None  # evaluations test every N epochs and at the last; null: every epoch
    batch_size: Optional[int] = None  # caps both apps' batch
    train_batch_size: Optional[int] = None  # caps an evaluation's batch instead; null: batch_size
    num_workers: Optional[int] = None  # DataLoader workers at this size (0: in process); null: the app's


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
    threads: Optional[int] = None  # torch's CPU threads; null: its default. CPU results depend on it (README)
    table: str = "none"
    name: str = MISSING
    runs_root: str = "runs"
    run_dir: str = MISSING  # <runs_root>/<scale>/<experiment_name>/<variant_name>/seed<N> (dada/layout.py)


def register(name: str, node: type) -> None:
    """Register an app's root schema under ``name`` (idempotent)."""
    ConfigStore.instance().store(name=name, node=node)


APP_SCHEMAS = {  # app -> (module, class) of its root schema, which lives beside the app and imports this module
    "search": ("dada.search._config", "SearchAppConfig"),
    "train": ("dada.train._config", "TrainAppConfig"),
    "detect": ("dada.detect._config", "DetectAppConfig"),
}


def register_app_schemas(*apps: str) -> None:
    """Store the root schemas of ``apps`` (default: every app) in Hydra's ConfigStore and the run folder's resolver
    (idempotent), importing only those apps: called before composing, never on import. A search never imports the
    detection stack."""
    from dada.scale import run_dir_suffix  # dada.scale imports this module

    OmegaConf.register_new_resolver("network_suffix", run_dir_suffix, replace=True)  # the apps' run_dir
    for app in apps or APP_SCHEMAS:
        module, name = APP_SCHEMAS[app]
        register(f"{app}_schema", getattr(importlib.import_module(module), name))


def compose_app_config(app: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/<app>.yaml`` (``search``, ``train`` or ``detect``) with ``overrides``, as the app's command line composes
    it, the scale applied (`dada.scale.apply_scale`): the config the run records."""
    from dada.scale import apply_scale  # dada.scale imports this module

    if app not in APP_SCHEMAS:
        raise ValueError(f"unknown app {app!r}; valid choices: {', '.join(APP_SCHEMAS)}")
    register_app_schemas(app)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=app, overrides=list(overrides))
    apply_scale(cfg, app, overrides)
    return cfg


class ConfigValueError(ValueError):
    """A config key or value the run cannot use, found at start-up before any data is read."""


def _schema_of(annotation: Any) -> Optional[type]:
    """The dataclass a field holds (``X`` or ``Optional[X]``), or None for plain values and free-form dicts."""
    candidates = typing.get_args(annotation) or (annotation,)
    return next((candidate for candidate in candidates if dataclasses.is_dataclass(candidate)), None)


def check_schema(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    """Refuse a key the schema does not define, also one added with Hydra's ``+key=value`` (which skips struct mode)."""
    hints = typing.get_type_hints(schema)
    for key in cfg.keys():
        name = f"{prefix}{key}"
        if key not in hints:
            raise ConfigValueError(
                f"unknown config key {name!r}: {schema.__name__} has no field {key!r}; valid keys "
                f"at this level: {', '.join(hints)}. Check the spelling, and drop the '+'"
            )
        inner = _schema_of(hints[key])
        if inner is not None and not OmegaConf.is_missing(cfg, key) and isinstance(cfg[key], DictConfig):
            check_schema(cfg[key], inner, f"{name}.")


def check_range(
    cfg: DictConfig, key: str, low: float, high: float = math.inf, *, above: bool = False, nullable: bool = False
) -> None:
    """The value at dotted ``key`` must lie in [low, high] (in (low, high] with ``above``), or be null if nullable."""
    value = OmegaConf.select(cfg, key)
    if value is None and nullable:
        return
    inside = value is not None and (value > low if above else value >= low) and value <= high
    if not inside:
        bounds = f"{'(' if above else '['}{low}, {high}]" if high < math.inf else f"{'> ' if above else '>= '}{low}"
        null = " or null (the recipe's value)" if nullable else ""
        raise ConfigValueError(f"{key}={value} is out of range: it must be {bounds}{null}")


SCALE_SIZES = (
    "search_epochs",
    "search_images",
    "train_epochs",
    "train_images",
    "test_images",
    "test_every",
    "batch_size",
    "train_batch_size",
)


def check_scale(cfg: DictConfig) -> None:
    """Positive scale sizes (0 is not "unset": null is), before `dada.scale.apply_scale` moves them."""
    for key in SCALE_SIZES:
        check_range(cfg, f"scale.{key}", 1, nullable=True)
    check_range(cfg, "scale.num_workers", 0, nullable=True)


def check_run_config(cfg: DictConfig) -> None:
    """What both apps need: positive scale sizes, three-channel statistics, classes."""
    check_scale(cfg)
    check_range(cfg, "threads", 1, nullable=True)
    check_range(cfg, "dataset.num_classes", 1)
    check_range(cfg, "dataset.image_size", 1)
    for key in ("mean", "std"):
        values = list(cfg.dataset[key])
        if len(values) != 3:
            raise ConfigValueError(
                f"dataset.{key}={values} has {len(values)} values; it needs 3, one per RGB channel "
                f"(every data set is read as 3-channel images, Fashion-MNIST included)"
            )
    if not all(value > 0 for value in cfg.dataset.std):
        raise ConfigValueError(f"dataset.std={list(cfg.dataset.std)} must be > 0 in every channel")


def print_job_config(app: str, argv: Sequence[str]) -> bool:
    """``--cfg job`` (or ``-c job``) on ``app``'s command line: print the config the run records, the scale applied
    (Hydra's own printout would show the scale unapplied), and return True; False for any other command line."""
    flags = {"--cfg", "-c"}
    asked = [index for index, arg in enumerate(argv[:-1]) if arg in flags and argv[index + 1] == "job"]
    if not asked:
        return False
    overrides = [arg for index, arg in enumerate(argv) if index not in asked and index - 1 not in asked]
    resolve = "--resolve" in overrides
    cfg = compose_app_config(app, [arg for arg in overrides if arg != "--resolve"])
    print(OmegaConf.to_yaml(cfg, resolve=resolve), end="")
    return True
