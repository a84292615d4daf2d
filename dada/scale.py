"""The scale (``conf/scale/``), applied once, when the config is composed: the same code path at another size.

`apply_scale` writes the scale's sizes into the keys the run reads (``model.name``, ``search.epochs``,
``recipe.batch_size``, ``dataset.search_images``, ``train_images``, ...) and then clears them from ``scale``, which
keeps only its name. So ``config.yaml``, the trackers' parameters, the run name and the start-of-run line hold the
values that run, and no loop reads ``scale``. A key set on the command line (``model=wrn40_2``,
``dataset.search_images=120``) wins over the scale's file, which then leaves it alone and says so; a scale field set
on the command line (``scale.model=wrn10_1``: a paper recipe on a small network) wins over both. The run folder,
named when Hydra composes, names a network the scale swaps in (`run_dir_suffix`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from dada.config import check_scale
from dada.layout import network_suffix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rule:
    """The scale's ``field`` sets the run's ``key``; ``cap``: it only lowers it (a smaller batch, never larger)."""

    key: str
    field: str
    cap: bool = False
    fallback: Optional[str] = None  # the scale field used when ``field`` is null


_MODEL = Rule("model.name", "model")
_SIZES = (
    Rule("train_images", "train_images"),
    Rule("test_images", "test_images"),
    Rule("num_workers", "num_workers"),
)
RULES = {
    "search": (
        _MODEL,
        Rule("search.epochs", "search_epochs"),
        Rule("search.batch_size", "batch_size", cap=True),
        Rule("dataset.search_images", "search_images"),
    ),
    "train": (
        _MODEL,
        Rule("recipe.epochs", "train_epochs"),
        Rule("recipe.batch_size", "train_batch_size", cap=True, fallback="batch_size"),
        Rule("test_every", "test_every"),
        *_SIZES,
    ),
    "detect": (
        Rule("schedule.epochs", "train_epochs"),
        Rule("schedule.batch_size", "train_batch_size", cap=True, fallback="batch_size"),
        *_SIZES,
    ),
}
# A group choice on the command line chooses the key below it too: model=wrn40_2 sets model.name.
_GROUP_KEYS = {"model.name": "model"}


def command_line_keys(overrides: Iterable[str]) -> set[str]:
    """The keys ``overrides`` (Hydra's ``key=value``, ``+key=value``, ``~key``) set, as dotted paths."""
    return {override.split("=", 1)[0].lstrip("+~") for override in overrides}


def apply_scale(cfg: DictConfig, app: str, overrides: Iterable[str] = ()) -> dict[str, object]:
    """Write the scale's non-null sizes into ``cfg``'s own keys, except those ``overrides`` set, and clear them
    from ``cfg.scale``; return what it set. Idempotent: a second call finds the scale cleared.

    A shorter schedule keeps its shape: the warmup and milestone epochs shrink with the epochs, and a detector's
    lr follows its batch (linear scaling), both here, so the record holds the schedule that runs.
    """
    check_scale(cfg)
    chosen = command_line_keys(overrides)
    if _network_chosen(chosen):  # the command line's network wins: no swap, and no -on-<network> in the folder
        cfg.scale.model = None
    with open_dict(cfg):
        cfg.run_dir = cfg.run_dir  # resolved now: it names the network the scale puts in (dada.layout)
    applied, kept = {}, []
    for rule in RULES[app]:
        parent = rule.key.rpartition(".")[0]
        if parent and OmegaConf.is_missing(cfg, parent):
            continue  # no recipe: the app's validation names the ones to choose from
        value = cfg.scale[rule.field]
        if value is None and rule.fallback:
            value = cfg.scale[rule.fallback]
        if value is None:
            continue
        asked = {f"scale.{rule.field}", f"scale.{rule.fallback}"} & chosen  # the scale itself set on the command line
        current = OmegaConf.select(cfg, rule.key)
        if not asked and (rule.key in chosen or _GROUP_KEYS.get(rule.key) in chosen):
            kept.append(f"{rule.key}={current}")
            continue
        if rule.cap and current is not None:
            value = min(current, value)
        if value != current:
            applied[rule.key] = value
    _keep_shape(cfg, app, applied)
    for key, value in applied.items():
        OmegaConf.update(cfg, key, value, merge=False)
    with open_dict(cfg.scale):
        for field in cfg.scale:
            if field != "name":
                cfg.scale[field] = None
    if applied or kept:
        log.info(
            "scale %s: %s%s",
            cfg.scale.name,
            ", ".join(f"{key}={value}" for key, value in applied.items()) or "nothing to change",
            f"; kept from the command line: {', '.join(kept)}" if kept else "",
        )
    return applied


def _keep_shape(cfg: DictConfig, app: str, applied: dict[str, object]) -> None:
    """Shrink the warmup and milestones with the epochs; a detector's lr follows its batch (added to ``applied``)."""
    schedule = {"train": "recipe", "detect": "schedule"}.get(app)
    if schedule is None or OmegaConf.is_missing(cfg, schedule):
        return
    node = cfg[schedule]
    if f"{schedule}.epochs" in applied:
        fraction = applied[f"{schedule}.epochs"] / node.epochs
        if app == "train":
            applied["recipe.warmup_epochs"] = node.warmup_epochs * fraction
        applied[f"{schedule}.milestones"] = [epoch * fraction for epoch in node.milestones]
    if app == "detect" and "schedule.batch_size" in applied:
        applied["detector.lr"] = cfg.detector.lr * applied["schedule.batch_size"] / node.batch_size


def _network_chosen(chosen: set[str]) -> bool:
    """Whether the command line chose the network (``model=...``, ``model.name=...``) and not the scale's."""
    return bool({"model", "model.name"} & chosen) and "scale.model" not in chosen


def run_dir_suffix(scale_model: str | None, model: str) -> str:
    """The resolver ``${network_suffix:${scale.model},${model.name}}`` of the apps' ``run_dir``: ``-on-<network>``
    when the scale swaps in another network (`dada.layout.network_suffix`), nothing when the command line chose
    the network (Hydra names the run folder before the app starts, so the resolver reads the command line)."""
    return "" if _network_chosen(command_line_keys(hydra_overrides())) else network_suffix(scale_model, model)


def hydra_overrides() -> list[str]:
    """The command line's overrides inside a Hydra app; none outside one."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def scale_name(cfg: DictConfig) -> str:
    """The scale a run ran at (smoke, mini, paper): a label of its record, once `apply_scale` has run."""
    return cfg.scale.name
