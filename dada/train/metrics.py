"""Numbers from predictions: loss and top-1/top-5 over an epoch, summed across ranks. The statistics over seeds
(mean, standard deviation, confidence interval) are analysis/statistics.py's."""

from __future__ import annotations

import torch
from timm.utils import AverageMeter, accuracy

from dada.train.distributed import Distributed


class ClassificationMeters:
    """Loss and top-1/top-5 accuracy (%) averaged over the images seen, on this rank until ``reduce``.

    Top-5 is measured only with more than 5 classes (with 5 or fewer it is always 100 % and means nothing).
    """

    def __init__(self):
        self.loss, self.top1, self.top5 = AverageMeter(), AverageMeter(), AverageMeter()
        self.has_top5 = True

    def update(self, logits: torch.Tensor, labels: torch.Tensor, loss: float) -> None:
        self.has_top5 = logits.shape[1] > 5
        top1, *top5 = accuracy(logits, labels, topk=(1, 5) if self.has_top5 else (1,))
        count = labels.shape[0]
        self.loss.update(loss, count)
        self.top1.update(top1.item(), count)
        if top5:
            self.top5.update(top5[0].item(), count)

    @property
    def count(self) -> int:
        return self.loss.count

    def reduce(self, dist: Distributed) -> dict[str, float]:
        """Averages over every rank's images: ``loss``, ``error_top1`` and ``error_top5`` (%; left out with 5 classes or
        fewer)."""
        totals = torch.tensor(
            [self.loss.sum, self.top1.sum, self.top5.sum, self.loss.count], dtype=torch.float64, device=dist.device
        )
        loss, top1, top5, count = dist.sum(totals).tolist()
        # timm's accuracy is a float32 percentage of each batch; the sums are 100 x whole numbers of correct images
        errors = {name: 100 * (count - round(total / 100)) / count for name, total in (("top1", top1), ("top5", top5))}
        out = {"loss": loss / count, "error_top1": errors["top1"], "error_top5": errors["top5"]}
        return out if self.has_top5 else {key: value for key, value in out.items() if key != "error_top5"}

    def __repr__(self) -> str:
        return (
            f"ClassificationMeters(count={self.count}, loss={self.loss.avg:.4f}, top1={self.top1.avg:.2f}, "
            f"top5={self.top5.avg:.2f})"
        )
