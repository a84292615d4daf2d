"""Numbers from predictions (loss, top-1/top-5 over an epoch, summed across ranks) and from finished runs
(mean, standard deviation and 95% confidence interval over seeds)."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

import torch
from scipy import stats
from timm.utils import AverageMeter, accuracy

from dada.train.distributed import Distributed

RunLike = Union[Mapping[str, Any], str, os.PathLike]


class ClassificationMeters:
    """Loss and top-1/top-5 accuracy (%) averaged over the images seen, on this rank until ``reduce``."""

    def __init__(self):
        self.loss, self.top1, self.top5 = AverageMeter(), AverageMeter(), AverageMeter()

    def update(self, logits: torch.Tensor, labels: torch.Tensor, loss: float) -> None:
        top1, top5 = accuracy(logits, labels, topk=(1, 5))
        count = labels.shape[0]
        self.loss.update(loss, count)
        self.top1.update(top1.item(), count)
        self.top5.update(top5.item(), count)

    @property
    def count(self) -> int:
        return self.loss.count

    def reduce(self, dist: Distributed) -> dict[str, float]:
        """Averages over every rank's images: ``loss``, ``error_top1`` and ``error_top5`` (%)."""
        totals = torch.tensor([self.loss.sum, self.top1.sum, self.top5.sum, self.loss.count],
                              dtype=torch.float64, device=dist.device)
        loss, top1, top5, count = dist.sum(totals).tolist()
        # timm's accuracy is a float32 percentage of each batch; the sums are 100 x whole numbers of correct images
        errors = {name: 100 * (count - round(total / 100)) / count for name, total in (("top1", top1), ("top5", top5))}
        return {"loss": loss / count, "error_top1": errors["top1"], "error_top5": errors["top5"]}

    def __repr__(self) -> str:
        return (f"ClassificationMeters(count={self.count}, loss={self.loss.avg:.4f}, top1={self.top1.avg:.2f}, "
                f"top5={self.top5.avg:.2f})")


@dataclass(frozen=True)
class Aggregate:
    """A metric over seeds: mean, sample standard deviation and the t-distribution 95% confidence interval."""

    metric: str
    values: tuple[float, ...]
    mean: float
    std: float
    ci95: tuple[float, float]

    @property
    def count(self) -> int:
        return len(self.values)

    def __str__(self) -> str:
        low, high = self.ci95
        return f"{self.metric}: {self.mean:.2f} ± {self.std:.2f} (95% CI {low:.2f} to {high:.2f}, n={self.count})"


def _summary(run: RunLike) -> Mapping[str, Any]:
    if isinstance(run, Mapping):
        return run
    path = Path(run)
    path = path / "summary.json" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no summary at {path}: is the run finished?")
    return json.loads(path.read_text())


def aggregate(runs: Iterable[RunLike], metric: str = "test_error_top1") -> Aggregate:
    """Aggregate ``metric`` over runs (summary dicts, run folders or summary.json paths), e.g. one per seed.

    With one run the standard deviation and the interval are NaN: one seed says nothing about the spread.
    """
    summaries = [_summary(run) for run in runs]
    if not summaries:
        raise ValueError("aggregate needs at least one run")
    missing = [index for index, summary in enumerate(summaries) if metric not in summary]
    if missing:
        raise KeyError(f"runs {missing} have no {metric!r}; keys of the first: {sorted(summaries[0])}")
    values = tuple(float(summary[metric]) for summary in summaries)
    count = len(values)
    mean = sum(values) / count
    if count == 1:
        return Aggregate(metric, values, mean, math.nan, (math.nan, math.nan))
    std = math.sqrt(sum((value - mean) ** 2 for value in values) / (count - 1))
    half_width = stats.t.ppf(0.975, count - 1) * std / math.sqrt(count)
    return Aggregate(metric, values, mean, std, (mean - half_width, mean + half_width))
