"""RELAX estimator (Grathwohl et al., 2018; DADA Sec. 3.4, Eq. 12-15) with a learned control variate."""

import dataclasses
from typing import Sequence

import torch
from torch import Tensor, nn

from . import _distributions as dist
from ._base import Estimator, EstimatorOutput, EstimatorSample, black_box_value


class Surrogate(nn.Module):
    """c_phi: a 2-layer tanh MLP on the relaxed sample [softmax(z / tau), sigmoid(z / tau)].

    100 hidden units and inputs mapped from [0, 1] to [-1, 1], as in the official DADA code.
    """

    def __init__(self, num_inputs: int, hidden_size: int = 100):
        super().__init__()
        self.hidden = nn.Linear(num_inputs, hidden_size)
        self.output = nn.Linear(hidden_size, 1)

    def forward(self, relaxed: Tensor) -> Tensor:
        return self.output(torch.tanh(self.hidden(2.0 * relaxed - 1.0))).squeeze(-1)


class RelaxEstimator(Estimator):
    """Eq. 12: ``[f(q) - c(z~)] grad log p(q) + grad c(z) - grad c(z~)``, unbiased for any c_phi.

    ``gradients`` also accumulates Eq. 13's ``grad_phi mean(g^2)`` into the surrogate's ``.grad``, so
    an optimizer over ``estimator.parameters()`` trains c_phi to reduce the variance.
    """

    name = "relax"

    def __init__(
        self,
        num_categories: int,
        num_gates: int,
        temperature: float,
        hidden_size: int = 100,
        boundary: str = "straight_through",
    ):
        super().__init__(num_categories, num_gates, temperature, boundary=boundary)
        self.surrogate = Surrogate(num_categories + num_gates, hidden_size)

    def sample(self, alpha: Tensor, beta: Tensor, generator: torch.Generator | None = None) -> EstimatorSample:
        """Draw z and q = H(z) (Eq. 7-9), then z~ ~ p(z | q) by conditional re-sampling (Eq. 14-15)."""
        sample = super().sample(alpha, beta, generator)
        v_category = dist.uniform(self.num_categories, sample.alpha, generator)
        v_gates = dist.uniform(self.num_gates, sample.beta, generator)
        logits = self.gate_logits(sample.beta)
        return dataclasses.replace(
            sample,
            conditional_category_logits=dist.conditional_gumbel_logits(sample.alpha, sample.category, v_category),
            conditional_gate_logits=dist.conditional_logistic_logits(logits, sample.gates, v_gates),
        )

    def gradients(self, sample: EstimatorSample, loss: Tensor | float, retain_graph: bool = False) -> EstimatorOutput:
        """Eq. 12 for alpha and beta; ``loss`` is used as a black-box value. Returns Eq. 13's variance loss."""
        estimates, variance_loss = self._estimate(sample, loss)
        self._train_surrogate(variance_loss)
        grad_alpha, grad_beta = (estimate.detach() for estimate in estimates)
        return EstimatorOutput(grad_alpha, grad_beta, variance_loss.detach())

    def difference_of_estimates(
        self, samples: Sequence[EstimatorSample], plus: Sequence[Tensor], minus: Sequence[Tensor], scale: Tensor
    ) -> EstimatorOutput:
        """The official architect: ``scale · (ĝ[f+] - ĝ[f-])`` with the same z, z~ and c_phi, so the control
        variate cancels and alpha, beta get ``scale · (f+ - f-) · grad log p``; c_phi is trained on
        ``scale · (grad_phi mean(ĝ[f+]^2) - grad_phi mean(ĝ[f-]^2))``.
        """
        grad_alpha, grad_beta, surrogate = 0.0, 0.0, 0.0
        for sample, loss_plus, loss_minus in zip(samples, plus, minus, strict=True):
            (alpha_plus, beta_plus), variance_plus = self._estimate(sample, loss_plus)
            (alpha_minus, beta_minus), variance_minus = self._estimate(sample, loss_minus)
            self._train_surrogate(scale.detach() * (variance_plus - variance_minus))
            grad_alpha = grad_alpha + scale.detach() * (alpha_plus - alpha_minus).detach()
            grad_beta = grad_beta + scale.detach() * (beta_plus - beta_minus).detach()
            surrogate = surrogate + (variance_plus + variance_minus).detach() / 2
        return EstimatorOutput(grad_alpha, grad_beta, surrogate)

    def _estimate(self, sample: EstimatorSample, loss: Tensor | float) -> tuple[list[Tensor], Tensor]:
        """Eq. 12's estimates for (alpha, beta), differentiable in phi, and Eq. 13's ``mean(ĝ^2)``."""
        if sample.conditional_category_logits is None:
            raise ValueError("relax needs a sample drawn by RelaxEstimator.sample (it carries z~)")
        value = black_box_value(loss, sample.alpha)
        parameters = (sample.alpha, sample.beta)
        control_relaxed = self.surrogate(self.relaxed_input(sample.category_logits, sample.gate_logits))
        control_conditional = self.surrogate(
            self.relaxed_input(sample.conditional_category_logits, sample.conditional_gate_logits)
        )
        control_gradients = torch.autograd.grad(
            control_relaxed - control_conditional, parameters, create_graph=True, materialize_grads=True
        )
        estimates = [
            (value - control_conditional) * score + control
            for score, control in zip(self.score(sample), control_gradients)
        ]
        return estimates, torch.cat(estimates).pow(2).mean()

    def _train_surrogate(self, objective: Tensor) -> None:
        """Accumulate ``grad_phi objective`` into the surrogate's ``.grad`` (Eq. 13)."""
        trainable = [parameter for parameter in self.parameters() if parameter.requires_grad]
        if trainable:
            objective.backward(inputs=trainable)

    def relaxed_input(self, category_logits: Tensor, gate_logits: Tensor) -> Tensor:
        """The surrogate's input: [softmax(z / tau) (K), sigmoid(z / tau) (G)] (Eq. 7 and 9)."""
        return torch.cat(dist.relax(category_logits, gate_logits, self.temperature))
