"""Structured-config schemas shared by the Hydra apps, and the start-up checks of a composed config.

Each app's root config starts from a schema registered here, so an unknown key or a wrong type fails at
start-up with Hydra's own message, before any work begins. The numbers live in ``conf/``, not here.
Hydra's ``+key=value`` adds keys past the schema, and a type cannot say "at least 1": every numeric field
declares its valid range beside its type (``valid(">= 1")``), and `check_schema` (called by each app's
validation) refuses unknown keys and values out of their range, naming the key. 0 means the same in every app:
``grad_clip: 0`` clips nothing, ``cutout: 0`` cuts nothing out, ``num_workers: 0`` reads in the process.
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
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

# The apps' config_path: the copy of conf/ that a wheel installs as dada/conf, else the source tree's top-level conf/
_INSTALLED_CONF = Path(__file__).resolve().parent / "conf"
CONF_DIR = _INSTALLED_CONF if _INSTALLED_CONF.is_dir() else Path(__file__).resolve().parents[1] / "conf"
SEED_MAX = 2**32 - 1  # NumPy's seeds stop here; torch's and Python's go further


def valid(bounds: str, default: Any = MISSING) -> Any:
    """A dataclass field whose value (each value, for a list) must be finite and lie in ``bounds``: an interval
    such as ``"[0, 1)"`` or ``"(0, 1]"``, or a bound such as ``"> 0"`` or ``">= 1"``. Checked by `check_schema`."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"range": bounds})
    return field(default=default, metadata={"range": bounds})


def within(value: Any, bounds: str) -> bool:
    """Whether ``value`` is a finite number (no bool) inside ``bounds`` (as in `valid`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if bounds.startswith(">"):
        limit = float(bounds.lstrip(">= "))
        return value >= limit if bounds.startswith(">=") else value > limit
    low, high = (float(part) for part in bounds[1:-1].split(","))
    above_low = value >= low if bounds[0] == "[" else value > low
    return above_low and (value <= high if bounds[-1] == "]" else value < high)


@dataclass
class SearchPipelineConfig:
    """The official reduced-ImageNet search augmentation around the op (values in conf/dataset/imagenet.yaml)."""

    random_resized_crop_scale: list[float] = valid("(0, 1]")
    color_jitter: float = valid(">= 0")
    lighting_std: float = valid(">= 0")
    pca_eigval: list[float] = MISSING
    pca_eigvec: list[list[float]] = MISSING
    val_resize: int = valid(">= 1")


@dataclass
class DatasetConfig:
    name: str = MISSING
    root: str = "${oc.env:DATA_ROOT,./data}"
    num_classes: int = valid(">= 1")
    image_size: int = valid(">= 1", 32)
    mean: list[float] = valid("[0, 1]")
    std: list[float] = valid("> 0")
    eval_train_split: str = "${.name}"  # svhn evaluates on train+extra
    search_images: int = valid(">= 1")  # the reduced set the search runs on
    search_classes: Optional[int] = valid(">= 1", None)  # reduced ImageNet keeps a subset of classes
    search_split_seed: int = valid(f"[0, {SEED_MAX}]", 0)
    search_train_fraction: float = valid("(0, 1)", 0.5)
    cutout: int = valid(">= 0", 0)  # Cutout side in pixels (0: none), in search and evaluation where the recipe says
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
    heatmap_every: int = valid(">= 1", 5)
    log_every: int = valid(">= 1", 20)  # steps between step-level metrics, in every app


@dataclass
class ScaleConfig:
    """The same code path at another size: a null field keeps the recipe's value. `dada.scale.apply_scale` moves
    the non-null fields into the run's own keys when the config is composed and clears them here."""

    name: str = MISSING
    model: Optional[str] = None
    search_epochs: Optional[int] = valid(">= 1", None)  # sizes: 0 is not "unset" (null is)
    search_images: Optional[int] = valid(">= 1", None)
    train_epochs: Optional[int] = valid(">= 1", None)
    train_images: Optional[int] = valid(">= 1", None)
    test_images: Optional[int] = valid(">= 1", None)
    test_every: Optional[int] = valid(">= 1", None)  # evaluations test every N epochs and at the last; null: every
    batch_size: Optional[int] = valid(">= 1", None)  # caps both apps' batch
    train_batch_size: Optional[int] = valid(">= 1", None)  # caps an evaluation's batch instead; null: batch_size
    num_workers: Optional[int] = valid(">= 0", None)  # DataLoader workers at this size (0: in process); null: the app's


@dataclass
class RunConfig:
    """What a run of either app has: data, model, logging, scale, seed, device, table and where it writes."""

    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    logger: LoggerConfig = MISSING
    scale: ScaleConfig = MISSING
    seed: int = valid(f"[0, {SEED_MAX}]", 0)
    device: str = "auto"
    deterministic: bool = True
    threads: Optional[int] = valid(">= 1", None)  # torch's CPU threads; null: its default. CPU results depend on it
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
    module, name = APP_SCHEMAS[app]
    check_schema(cfg, getattr(importlib.import_module(module), name))  # as given: a refusal quotes what was typed
    apply_scale(cfg, app, overrides)
    return cfg


class ConfigValueError(ValueError):
    """A config key or value the run cannot use, found at start-up before any data is read."""


def _schema_of(annotation: Any) -> Optional[type]:
    """The dataclass a field holds (``X`` or ``Optional[X]``), or None for plain values and free-form dicts."""
    candidates = typing.get_args(annotation) or (annotation,)
    return next((candidate for candidate in candidates if dataclasses.is_dataclass(candidate)), None)


def check_schema(cfg: DictConfig, schema: type, prefix: str = "") -> None:
    """Refuse a key the schema does not define, also one added with Hydra's ``+key=value`` (which skips struct mode),
    and a value outside the range its field declares (`valid`), naming the key and the range."""
    hints = typing.get_type_hints(schema)
    bounds = {item.name: item.metadata.get("range") for item in dataclasses.fields(schema)}
    for key in cfg.keys():
        name = f"{prefix}{key}"
        if key not in hints:
            raise ConfigValueError(
                f"unknown config key {name!r}: {schema.__name__} has no field {key!r}; valid keys "
                f"at this level: {', '.join(hints)}. Check the spelling, and drop the '+'"
            )
        if bounds.get(key) and not OmegaConf.is_missing(cfg, key):
            _check_bounds(name, cfg[key], bounds[key], nullable=type(None) in typing.get_args(hints[key]))
        inner = _schema_of(hints[key])
        if inner is not None and not OmegaConf.is_missing(cfg, key) and isinstance(cfg[key], DictConfig):
            check_schema(cfg[key], inner, f"{name}.")


def _check_bounds(name: str, value: Any, bounds: str, nullable: bool) -> None:
    if value is None and nullable:
        return
    values = OmegaConf.to_container(value) if isinstance(value, ListConfig) else None
    if values is not None and all(within(item, bounds) for item in values):
        return
    if values is None and within(value, bounds):
        return
    shown = values if values is not None else value
    finite = " (a finite number)" if isinstance(value, float) and not math.isfinite(value) else ""
    verb = "lie in" if bounds[0] in "[(" else "be"
    must = f"each value must {verb} {bounds}" if values is not None else f"it must {verb} {bounds}{finite}"
    raise ConfigValueError(f"{name}={shown} is out of range: {must}{' or null' if nullable else ''}")


def check_range(
    cfg: DictConfig, key: str, low: float, high: float = math.inf, *, above: bool = False, nullable: bool = False
) -> None:
    """The value at dotted ``key`` must lie in [low, high] (in (low, high] with ``above``), or be null if nullable."""
    value = OmegaConf.select(cfg, key)
    if value is None and nullable:
        return
    inside = value is not None and math.isfinite(value) and (value > low if above else value >= low) and value <= high
    if not inside:
        bounds = f"{'(' if above else '['}{low}, {high}]" if high < math.inf else f"{'> ' if above else '>= '}{low}"
        null = " or null (the recipe's value)" if nullable else ""
        raise ConfigValueError(f"{key}={value} is out of range: it must be {bounds}{null}")


def check_scale(cfg: DictConfig) -> None:
    """The scale's sizes against their declared ranges, before `dada.scale.apply_scale` moves them."""
    check_schema(cfg.scale, ScaleConfig, "scale.")


def check_run_config(cfg: DictConfig) -> None:
    """What the search and the evaluation need beyond the ranges: three-channel statistics."""
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
