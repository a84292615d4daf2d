"""REINFORCE (score function) estimator with a moving-average baseline."""

import torch
from torch import Tensor

from ._base import Estimator, EstimatorOutput, EstimatorSample, black_box_value


class ReinforceEstimator(Estimator):
    """``(f - baseline) * grad log p(c, b)``; the baseline is a bias-corrected moving average of f.

    The baseline is updated after it is used, so it never depends on the current sample and the
    estimate stays unbiased.
    """

    name = "reinforce"

    def __init__(
        self,
        num_categories: int,
        num_gates: int,
        temperature: float,
        baseline_decay: float = 0.9,
        boundary: str = "straight_through",
    ):
        super().__init__(num_categories, num_gates, temperature, boundary=boundary)
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {baseline_decay}")
        self.baseline_decay = baseline_decay
        self.register_buffer("loss_average", torch.zeros(()))
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @property
    def baseline(self) -> Tensor:
        """Moving average of the losses seen so far, with Adam's bias correction; 0 before the first."""
        if self.num_updates == 0:
            return torch.zeros_like(self.loss_average)
        return self.loss_average / (1 - self.baseline_decay ** self.num_updates.item())

    def gradients(self, sample: EstimatorSample, loss: Tensor | float, retain_graph: bool = False) -> EstimatorOutput:
        """Score-function estimate; ``loss`` is used as a black-box value."""
        value = black_box_value(loss, sample.alpha)
        advantage = value - self.baseline.to(value)
        grad_alpha, grad_beta = self.score(sample)
        self._update_baseline(value)
        return EstimatorOutput(advantage * grad_alpha, advantage * grad_beta)

    def extra_repr(self) -> str:
        return f"num_categories={self.num_categories}, num_gates={self.num_gates}, baseline_decay={self.baseline_decay}"

    @torch.no_grad()
    def _update_baseline(self, value: Tensor) -> None:
        self.loss_average.mul_(self.baseline_decay).add_((1 - self.baseline_decay) * value.to(self.loss_average))
        self.num_updates += 1
