"""Finished runs as one DataFrame, read from the run folders (default) or from the MLflow store.

Both readers return the same columns (`RUN_COLUMNS`), one line per run. A run folder is
``<runs root>/<scale>/<experiment>/<variant>/seed<N>`` (``dada.layout.run_dir``); the MLflow reader finds
that path in each run's ``run_dir`` tag, so both name experiment, variant and seed the same way.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from dada.files import UnreadableFileError, read_json
from dada.layout import RunFolder, find_run_dirs, parse_run_dir
from dada.schemas import DetectSummary, SearchSummary, parse_summary

# A detection run's COCO AP (%), as dada.schemas.DetectSummary names them (Table 5).
AP_METRICS = ("ap_bbox", "ap50_bbox", "ap75_bbox", "aps_bbox", "apm_bbox", "apl_bbox", "ap_mask")

RUN_COLUMNS = (
    "run_dir",
    "scale",
    "experiment",
    "variant",
    "seed",
    "app",
    "status",
    "dataset",
    "model",
    "estimator",
    "policy",
    "test_error_top1",
    "test_error_top5",
    "train_error_top1",
    "search_device_hours",
    "eval_device_hours",
    "unit",
    "device_name",
    "epochs",
    "top_overlap",
    *AP_METRICS,
)
NUMBERS = (
    "test_error_top1",
    "test_error_top5",
    "train_error_top1",
    "search_device_hours",
    "eval_device_hours",
    "epochs",
    *AP_METRICS,
)


def _location(run_dir: Path) -> dict[str, Any]:
    return {"run_dir": str(run_dir), **parse_run_dir(run_dir)}


def _number(value: Any) -> float:
    return float(value) if value is not None else math.nan


def run_record(run_dir: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """One line of the runs table from a run folder and its ``summary.json`` (search, evaluation or detection)."""
    typed = parse_summary(dict(summary))
    if isinstance(typed, DetectSummary):
        return _detect_record(run_dir, summary, typed)
    search = isinstance(typed, SearchSummary)
    cost = typed.cost
    return {
        **_location(run_dir),
        "app": typed.app,
        "status": summary.get("status", "UNKNOWN"),
        "dataset": typed.dataset,
        "model": typed.model,
        "estimator": typed.estimator if search else None,
        "policy": None if search or typed.policy is None else typed.policy.name,
        "test_error_top1": math.nan if search else typed.test_error_top1,
        "test_error_top5": math.nan if search or typed.test_error_top5 is None else typed.test_error_top5,
        "train_error_top1": math.nan if search else typed.train_error_top1,  # the final epoch's, on augmented images
        "search_device_hours": cost.search_device_hours if search and cost else math.nan,
        "eval_device_hours": cost.eval_device_hours if not search and cost else math.nan,
        "unit": cost.unit if cost else None,
        "device_name": cost.device_name if cost else None,
        "epochs": float(typed.epochs),
        "top_overlap": dict(typed.top_overlap_with_other_seeds) if search else {},  # per sibling seed folder
        **dict.fromkeys(AP_METRICS, math.nan),
    }


def _detect_record(run_dir: Path, summary: Mapping[str, Any], typed: DetectSummary) -> dict[str, Any]:
    """A detection run's line: its AP (NaN where COCOeval gives none), its backbone's policy, the evaluation cost."""
    cost = typed.cost
    return {
        **_location(run_dir),
        "app": typed.app,
        "status": summary.get("status", "UNKNOWN"),
        "dataset": typed.dataset,
        "model": typed.model,
        "estimator": None,
        "policy": typed.backbone_policy,
        **dict.fromkeys(("test_error_top1", "test_error_top5", "train_error_top1", "search_device_hours"), math.nan),
        "eval_device_hours": cost.eval_device_hours if cost else math.nan,
        "unit": cost.unit if cost else None,
        "device_name": cost.device_name if cost else None,
        "epochs": float(typed.epochs),
        "top_overlap": {},
        **{metric: _number(getattr(typed, metric)) for metric in AP_METRICS},
    }


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))
    return frame.astype({"seed": "int64", **{column: "float64" for column in NUMBERS}})


def read_runs(runs_root: str | Path = "runs") -> pd.DataFrame:
    """Every run folder under ``runs_root`` that has a ``summary.json`` (any status), sorted by path."""
    records = [record for record in map(_record_or_none, find_run_dirs(runs_root)) if record is not None]
    return _frame(records)


def _record_or_none(run_dir: Path) -> dict[str, Any] | None:
    """The run's line, or None with a warning naming its ``summary.json`` when that cannot be read: one bad file
    never stops the analysis of the others."""
    path = RunFolder(run_dir).summary
    try:
        return run_record(run_dir, read_json(path, "run summary"))
    except UnreadableFileError as error:  # its message names the file
        warnings.warn(f"a run was left out: {error}", RuntimeWarning)
    except (ValueError, TypeError, KeyError) as error:  # SummaryError is a ValueError
        warnings.warn(f"a run was left out: {path} is no run summary ({type(error).__name__}: {error})", RuntimeWarning)
    return None


def _result(app: str, hours: float, unit: str, error: float, ap: float) -> str:
    if app == "search":
        return f"search {hours:.4g} {unit}"
    return f"box AP {ap:.2f} %" if app == "detect" else f"test error {error:.2f} %"


def runs_listing(runs: pd.DataFrame) -> str:
    """Every run as one line: where it is, its app and status, and its main number (test error, search cost or AP)."""
    if runs.empty:
        return "no runs found (a run folder is <runs root>/<scale>/<experiment>/<variant>/seed<N> with a summary.json)"
    numbers = zip(runs["app"], runs["search_device_hours"], runs["unit"], runs["test_error_top1"], runs["ap_bbox"])
    shown = runs.assign(result=[_result(*line) for line in numbers])
    columns = ["scale", "experiment", "variant", "seed", "app", "status", "result"]
    return shown[columns].to_string(index=False)


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys back into nested dicts: ``{"cost.unit": "GPU-hours"}`` -> ``{"cost": {"unit": "GPU-hours"}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def _mlflow_summary(run) -> dict[str, Any]:
    """A run's summary as the tracker handed it to MLflow: numbers as metrics, the rest as ``summary.*`` tags."""
    tags = run.data.tags
    flat = {
        **run.data.metrics,
        **{key[len("summary.") :]: value for key, value in tags.items() if key.startswith("summary.")},
    }
    if "schema_version" in flat:  # a tag, so a string
        flat["schema_version"] = int(flat["schema_version"])
    summary = {**_nested(flat), "status": run.info.status, "dataset": tags.get("dataset"), "model": tags.get("model")}
    if tags.get("app") == "search":
        summary["estimator"] = tags.get("estimator")
    else:
        summary["policy"] = {**summary.get("policy", {}), "name": tags.get("policy")}
    return summary


def read_runs_mlflow(tracking_uri: str = "sqlite:///mlruns.db", experiment: str = "dada") -> pd.DataFrame:
    """The runs of an MLflow experiment, as `read_runs` reads their folders (runs made with ``logger=mlflow``)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    records, token = [], None
    while found is not None:
        page = client.search_runs([found.experiment_id], max_results=1000, page_token=token)
        records += [run_record(Path(run.data.tags["run_dir"]), _mlflow_summary(run)) for run in page]
        token = page.token
        if not token:
            break
    return _frame(sorted(records, key=lambda record: record["run_dir"]))


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose status is FINISHED."""
    return runs[runs["status"] == "FINISHED"]


def read_epoch_metrics(run_dir: str | Path) -> pd.DataFrame:
    """The per-epoch lines of a run's ``metrics.jsonl`` (those with an ``epoch`` field), one row per epoch.

    An epoch logged twice (a run folder resumed before the tracker cut its records on resume) keeps its last record.
    """
    lines = RunFolder(run_dir).metrics.read_text().splitlines()
    records = {record["epoch"]: record for record in map(json.loads, lines) if "epoch" in record}
    return pd.DataFrame.from_records(list(records.values()))
