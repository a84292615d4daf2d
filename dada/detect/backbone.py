"""The backbone's source: a finished ``dada.train`` run of ResNet-50, read from its run folder.

The folder gives the weights (``checkpoint.pt``, loaded with ``weights_only=True``), what the network was
(``summary.json``) and how its inputs were normalised (``config.yaml``: the data set's mean and std), which the
detector then uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dada import checkpoint
from dada.files import UnreadableFileError, read_yaml
from dada.layout import RunFolder

BACKBONE_MODEL = "resnet50"


class BackboneRunError(ValueError):
    """The backbone's run folder is missing, unfinished, or holds no ResNet-50 of ``dada.train``."""


@dataclass(frozen=True)
class BackboneRun:
    """What the detector takes from a ``dada.train`` run."""

    run_dir: Path
    policy: str
    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    model_state: dict[str, torch.Tensor]


def read_backbone_run(run_dir: str | Path) -> BackboneRun:
    """The finished ResNet-50 run at ``run_dir``; BackboneRunError says what is wrong and what to run."""
    run_dir = Path(run_dir)
    advice = (
        f"train it first, e.g. python -m dada.train model=resnet50 ... run_dir={run_dir}, or point backbone.run at a "
        f"finished one"
    )
    typed = RunFolder(run_dir).finished_run("train", "backbone run", advice, BackboneRunError)
    if typed.model != BACKBONE_MODEL:
        raise BackboneRunError(
            f"backbone run {run_dir} trained {typed.model}, not {BACKBONE_MODEL}: the detectors take a ResNet-50 body. "
            f"At a reduced scale dada.train swaps the network (scale.model); train with scale.model=null to keep it"
        )
    state = checkpoint.load(RunFolder(run_dir).checkpoint, kind="train")
    if state is None:
        raise BackboneRunError(f"backbone run {run_dir} has no checkpoint.pt: its weights are gone; train it again")
    mean, std = _normalisation(RunFolder(run_dir).config)
    return BackboneRun(
        run_dir, typed.policy.name if typed.policy else "unknown", typed.dataset, mean, std, state["model"]
    )


def _normalisation(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The backbone run's ``dataset.mean`` and ``dataset.std`` from its ``config.yaml``: 3 numbers each, std > 0."""
    try:
        dataset = read_yaml(path, "backbone run config")["dataset"]
        mean, std = (tuple(dataset[key]) for key in ("mean", "std"))
    except (UnreadableFileError, KeyError, TypeError) as error:
        raise BackboneRunError(
            f"backbone run config {path} does not say how the backbone's inputs were normalised ({error}): "
            f"it needs dataset.mean and dataset.std; train the backbone again, or restore its config.yaml"
        ) from None
    numbers = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in mean + std)
    if not numbers or len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise BackboneRunError(
            f"backbone run config {path} has dataset.mean={list(mean)} and dataset.std={list(std)}: each needs 3 "
            f"numbers, one per RGB channel, and std > 0"
        )
    return mean, std
