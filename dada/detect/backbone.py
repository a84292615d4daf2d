"""The backbone's source: a finished ``dada.train`` run of ResNet-50, read from its run folder.

The folder gives the weights (``checkpoint.pt``, loaded with ``weights_only=True``), what the network was
(``summary.json``) and how its inputs were normalised (``config.yaml``: the data set's mean and std), which the
detector then uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from dada import checkpoint
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
    dataset = OmegaConf.load(RunFolder(run_dir).config).dataset
    return BackboneRun(
        run_dir,
        typed.policy.name if typed.policy else "unknown",
        typed.dataset,
        tuple(dataset.mean),
        tuple(dataset.std),
        state["model"],
    )
