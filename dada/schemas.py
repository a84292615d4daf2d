"""The files that pass between stages, typed and versioned: ``summary.json`` of the apps and the metric names.

The apps write summaries through these classes and ``analysis`` reads them back through them; nobody parses a key
out of an f-string. ``SCHEMA_VERSION`` goes up when a field changes meaning; a reader refuses a newer version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dada.files import read_json

SCHEMA_VERSION = 1


class SummaryError(ValueError):
    """A ``summary.json`` that this version of dada cannot read."""


@dataclass(frozen=True)
class DeviceInfo:
    """What a cost was measured on (``dada.tracking.DeviceClock``)."""

    unit: str  # "GPU-hours" or "CPU-hours"
    device_name: str
    device_count: int
    num_threads: int = 0


@dataclass(frozen=True)
class SearchCost(DeviceInfo):
    """Device time, and FLOPs (``dada.tracking.flops``: one step counted, times the steps; None: not measured).

    ``flops`` = ``network_flops`` (each step's training forward and backward to the weights, as plain training
    would run) + ``policy_flops`` (the rest of each bi-level step: the unrolled validation pass, the finite
    difference and the estimator) + the per-epoch search-val accuracy passes (forward only).
    """

    search_device_hours: float = 0.0  # device time of the search loop alone, across resumes
    images_per_second: float = 0.0
    flops: float | None = None
    network_flops: float | None = None
    policy_flops: float | None = None


@dataclass(frozen=True)
class EvalCost(DeviceInfo):
    eval_device_hours: float = 0.0  # training and testing, across resumes
    flops: float | None = None  # training steps and test passes (dada.tracking.flops); None: not measured


@dataclass(frozen=True)
class PolicyInfo:
    """The policy an evaluation trained with."""

    name: str
    source: str | None = None  # the shipped name or policy.json path, the seed's draw, or the settings
    on_device: bool = False
    cutout: int = 0


@dataclass(frozen=True)
class _Summary:
    app: ClassVar[str] = ""
    name: str
    seed: int
    dataset: str
    model: str
    scale: str
    epochs: int

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json`` (the tracker adds ``status`` when the run closes)."""
        return {"app": self.app, "schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """The summary in ``data``; keys this version does not know are ignored (``app``, ``status``, ...)."""
        values = _known(cls, data)
        for key, kind in (("cost", cls._cost_type()), ("policy", PolicyInfo)):
            if isinstance(values.get(key), dict) and kind is not None:
                values[key] = kind(**_known(kind, values[key]))
        return cls(**values)

    @classmethod
    def _cost_type(cls) -> type | None:
        return None


@dataclass(frozen=True)
class SearchSummary(_Summary):
    app: ClassVar[str] = "search"
    estimator: str = ""
    variant: str = "official"  # search.variant (FIDELITY.md)
    policy: str = ""  # the path of policy.json
    search_seconds: float = 0.0
    cost: SearchCost | None = None
    top_overlap_with_other_seeds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def _cost_type(cls) -> type:
        return SearchCost


@dataclass(frozen=True)
class TrainSummary(_Summary):
    app: ClassVar[str] = "train"
    policy: PolicyInfo | None = None
    train_images: int = 0
    test_images: int = 0
    batch_size: int = 0
    world_size: int = 1
    test_error_top1: float = 0.0  # the final epoch's, in %
    test_error_top5: float | None = None  # only with more than 5 classes
    test_error_best_epoch_selected_on_test: float = 0.0  # optimistic: the epoch is chosen on the test set
    best_epoch_selected_on_test: int = 0
    train_loss: float = 0.0
    train_error_top1: float = 0.0  # the final epoch's, on augmented images
    seconds: float = 0.0
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    cost: EvalCost | None = None

    @classmethod
    def _cost_type(cls) -> type:
        return EvalCost


@dataclass(frozen=True)
class DetectSummary(_Summary):
    """A detection run (``dada.detect``): COCO AP (%) of the final epoch's detector on the test images.

    ``None`` for an AP that COCOeval cannot give: ``ap_mask`` of a box-only detector, ``apl_bbox`` (etc.) when the
    test images hold no object of that size.
    """

    app: ClassVar[str] = "detect"
    detector: str = ""
    backbone_run: str = ""  # the dada.train run folder whose ResNet-50 initialised the backbone
    backbone_policy: str = ""  # that run's policy (none, dada, ...)
    train_images: int = 0
    test_images: int = 0
    batch_size: int = 0
    steps: int = 0
    min_size: int = 0  # the detector's image resizing: shorter side, longer side's cap
    max_size: int = 0
    ap_bbox: float | None = None  # box AP at IoU 0.50:0.95, and the five below: COCOeval's stats[0:6]
    ap50_bbox: float | None = None
    ap75_bbox: float | None = None
    aps_bbox: float | None = None
    apm_bbox: float | None = None
    apl_bbox: float | None = None
    ap_mask: float | None = None
    train_loss: float = 0.0  # the final epoch's mean of the summed detector losses
    seconds: float = 0.0
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    cost: EvalCost | None = None

    @classmethod
    def _cost_type(cls) -> type:
        return EvalCost


def _known(kind: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(kind)}
    return {key: value for key, value in data.items() if key in names}


SUMMARIES = {summary.app: summary for summary in (SearchSummary, TrainSummary, DetectSummary)}


def parse_summary(data: dict[str, Any]) -> SearchSummary | TrainSummary | DetectSummary:
    """The typed summary of ``data`` (a ``summary.json``); SummaryError if its app or version is unknown."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if version > SCHEMA_VERSION:
        raise SummaryError(
            f"summary schema version {version} is newer than this dada's ({SCHEMA_VERSION}): update dada to read it"
        )
    app = data.get("app") or ("search" if "search_device_hours" in data.get("cost", {}) else "train")  # version 0
    if app not in SUMMARIES:
        raise SummaryError(f"unknown app {app!r} in a summary; valid: {', '.join(SUMMARIES)}")
    return SUMMARIES[app].from_dict(data)


def read_summary(path: str | Path) -> SearchSummary | TrainSummary | DetectSummary:
    path = Path(path)
    try:
        return parse_summary(read_json(path, "run summary"))
    except (ValueError, TypeError, KeyError) as error:  # UnreadableFileError and SummaryError are ValueErrors
        raise SummaryError(f"{path} is not a readable run summary ({error}); move it away to re-run") from None


# -- metric names in metrics.jsonl ------------------------------------------------------------------------------

POLICY_GROUPS = ("probability", "magnitude")
GRADIENT_GROUPS = ("alpha", "probability", "magnitude")
GRADIENT_STATISTICS = ("mean", "variance", "norm")


def policy_weight_metric(sub_policy: int) -> str:
    """softmax(α) of one sub-policy."""
    return f"policy/weight/{sub_policy:03d}"


def policy_slot_metric(group: str, sub_policy: int, slot: int) -> str:
    """β (``probability``) or m (``magnitude``) of one op slot."""
    if group not in POLICY_GROUPS:
        raise ValueError(f"unknown policy group {group!r}; valid: {', '.join(POLICY_GROUPS)}")
    return f"policy/{group}/{sub_policy:03d}_{slot}"


def gradient_metric(group: str, statistic: str) -> str:
    """An epoch's statistic of the estimator's gradient for one parameter group."""
    if group not in GRADIENT_GROUPS or statistic not in GRADIENT_STATISTICS:
        raise ValueError(
            f"unknown gradient metric {group}/{statistic}; groups: {', '.join(GRADIENT_GROUPS)}, "
            f"statistics: {', '.join(GRADIENT_STATISTICS)}"
        )
    return f"grad/{group}/{statistic}"
