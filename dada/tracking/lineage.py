"""Which search a run's policy came from, as tags, so that MLflow and W&B show the link from a search to the
evaluations that used its policy.

An evaluation trains with ``policy.source=<search run>/policy.json``. That search's folder holds its
``summary.json`` (the estimator) and ``tracking_ids.json`` (its MLflow and W&B run ids).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

IDS_FILE = "tracking_ids.json"  # each optional backend's run id, so that a resumed run continues the same runs


def searched_policy(cfg: Any) -> Path | None:
    """The ``policy.json`` of a search that this run trains with (``policy.source``), or None."""
    source = OmegaConf.select(cfg, "policy.source", default=None) if OmegaConf.is_config(cfg) else None
    if not source:
        return None
    path = Path(str(source))
    return path.resolve() if path.is_file() and (path.parent / "summary.json").is_file() else None


def lineage_tags(cfg: Any) -> dict[str, str]:
    """``experiment`` (the run layout's experiment name), and for a run on a searched policy: the search's folder,
    its MLflow and W&B run ids (``search.mlflow_run_id``, ``search.wandb_run_id``) and its ``estimator``."""
    tags = {}
    experiment = OmegaConf.select(cfg, "experiment_name", default=None) if OmegaConf.is_config(cfg) else None
    if experiment:
        tags["experiment"] = str(experiment)
    policy = searched_policy(cfg)
    if policy is None:
        return tags
    tags["search.run_dir"] = str(policy.parent)
    summary = _read_json(policy.parent / "summary.json")
    if "estimator" in summary:
        tags["estimator"] = str(summary["estimator"])
    for backend, ids in _read_json(policy.parent / IDS_FILE).items():
        if isinstance(ids, dict) and "run_id" in ids:
            tags[f"search.{backend}_run_id"] = str(ids["run_id"])
    return tags


def _read_json(path: Path) -> dict:
    """A run folder's JSON file, or {} when it is missing or unreadable (lineage is a convenience, never an error)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
