"""Straight-through Gumbel-Softmax estimator (Sec. 3.3, Eq. 7-9): biased, but a plain backward pass."""

import dataclasses
from typing import Sequence

import torch
from torch import Tensor

from . import _distributions as dist
from ._base import Estimator, EstimatorOutput, EstimatorSample


def straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward value ``hard``, gradient of ``soft``."""
    return hard + (soft - soft.detach())


class GumbelEstimator(Estimator):
    """Hard samples in the forward pass, gradients of the relaxed samples in the backward pass.

    The loss must be computed from ``sample.category_weights`` and ``sample.gates``.
    """

    name = "gumbel"

    def sample(self, alpha: Tensor, beta: Tensor, generator: torch.Generator | None = None) -> EstimatorSample:
        """Eq. 8: one-hot ``argmax`` forward, ``softmax((alpha + g) / tau)`` backward; Eq. 9 for the gates."""
        sample = super().sample(alpha, beta, generator)
        relaxed_category, relaxed_gates = dist.relax(sample.category_logits, sample.gate_logits, self.temperature)
        return dataclasses.replace(
            sample,
            category_weights=straight_through(sample.category_weights, relaxed_category),
            gates=straight_through(sample.gates, relaxed_gates),
        )

    def gradients(self, sample: EstimatorSample, loss: Tensor | float, retain_graph: bool = False) -> EstimatorOutput:
        """Backpropagate ``loss`` to the sample's alpha and beta."""
        if not (torch.is_tensor(loss) and loss.requires_grad):
            raise ValueError(
                "gumbel needs a loss computed through autograd from sample.category_weights or sample.gates"
            )
        grad_alpha, grad_beta = torch.autograd.grad(
            loss, (sample.alpha, sample.beta), retain_graph=retain_graph, allow_unused=True, materialize_grads=True
        )
        return EstimatorOutput(grad_alpha, grad_beta)

    def gradients_many(
        self, samples: Sequence[EstimatorSample], losses: Sequence[Tensor], retain_graph: bool = False
    ) -> EstimatorOutput:
        """One backward pass for all samples: the straight-through gradient is linear in the loss."""
        leaves = [sample.alpha for sample in samples] + [sample.beta for sample in samples]
        grads = torch.autograd.grad(
            sum(losses), leaves, retain_graph=retain_graph, allow_unused=True, materialize_grads=True
        )
        return EstimatorOutput(torch.stack(grads[: len(samples)]).sum(0), torch.stack(grads[len(samples) :]).sum(0))

    def difference_of_estimates(
        self, samples: Sequence[EstimatorSample], plus: Sequence[Tensor], minus: Sequence[Tensor], scale: Tensor
    ) -> EstimatorOutput:
        """Linear in the loss: the difference of two estimates is the estimate of the difference."""
        return self.gradients_many(samples, [scale * (p - m) for p, m in zip(plus, minus, strict=True)])
