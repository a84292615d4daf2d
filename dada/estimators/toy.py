"""Toy problems with closed-form gradients, for checking the estimators' bias and variance.

``f(c, b) = table[c] + sum_i (b_i - t_i)^2`` has
``dE[f]/dalpha_j = pi_j (table_j - sum_k pi_k table_k)`` and ``dE[f]/dbeta_i = 1 - 2 t_i``.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from ._base import Estimator, EstimatorSample


@dataclass(frozen=True)
class ToyProblem:
    """Loss ``table[c] + sum_i (b_i - targets_i)^2`` at parameters alpha [K], beta [G]."""

    name: str
    alpha: Tensor
    beta: Tensor
    table: Tensor
    targets: Tensor

    def loss(self, sample: EstimatorSample) -> Tensor:
        """The loss of a sample, differentiable in its category weights and gates (for gumbel)."""
        return (sample.category_weights * self.table).sum() + (sample.gates - self.targets).pow(2).sum()

    def expected_loss(self, alpha: Tensor, beta: Tensor) -> Tensor:
        """E[f] in closed form."""
        pi = torch.softmax(alpha, dim=-1)
        gate_loss = beta * (1 - self.targets).pow(2) + (1 - beta) * self.targets.pow(2)
        return (pi * self.table).sum() + gate_loss.sum()

    def exact_gradients(self) -> tuple[Tensor, Tensor]:
        """dE[f]/dalpha and dE[f]/dbeta, by differentiating the closed form."""
        alpha = self.alpha.clone().requires_grad_()
        beta = self.beta.clone().requires_grad_()
        return torch.autograd.grad(self.expected_loss(alpha, beta), (alpha, beta))


def categorical_problem(num_categories: int = 6, dtype: torch.dtype = torch.float32) -> ToyProblem:
    """Only the category matters: one gate-free Categorical with uneven logits and losses."""
    index = torch.arange(num_categories, dtype=dtype)
    return ToyProblem(
        name="categorical",
        alpha=torch.linspace(-1.0, 1.0, num_categories, dtype=dtype),
        beta=torch.zeros(0, dtype=dtype),
        table=torch.cos(index) + index / num_categories,
        targets=torch.zeros(0, dtype=dtype),
    )


def bernoulli_problem(num_gates: int = 6, dtype: torch.dtype = torch.float32) -> ToyProblem:
    """Only the gates matter: targets around 0.5 (Grathwohl et al.'s toy), a single dummy category."""
    return ToyProblem(
        name="bernoulli",
        alpha=torch.zeros(1, dtype=dtype),
        beta=torch.linspace(0.2, 0.8, num_gates, dtype=dtype),
        table=torch.zeros(1, dtype=dtype),
        targets=torch.linspace(0.4, 0.6, num_gates, dtype=dtype),
    )


def joint_problem(num_categories: int = 4, num_gates: int = 3, dtype: torch.dtype = torch.float32) -> ToyProblem:
    """Both matter, as in DADA: the categorical and the gates of ``categorical_problem`` and ``bernoulli_problem``."""
    categorical = categorical_problem(num_categories, dtype)
    bernoulli = bernoulli_problem(num_gates, dtype)
    return ToyProblem("joint", categorical.alpha, bernoulli.beta, categorical.table, bernoulli.targets)


PROBLEMS = {"categorical": categorical_problem, "bernoulli": bernoulli_problem, "joint": joint_problem}


def draw_estimates(
    estimator: Estimator, problem: ToyProblem, num_samples: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``num_samples`` gradient estimates, stacked: grad_alpha [N, K] and grad_beta [N, G]."""
    grads_alpha, grads_beta = [], []
    for _ in range(num_samples):
        sample = estimator.sample(problem.alpha, problem.beta, generator)
        output = estimator.gradients(sample, problem.loss(sample))
        grads_alpha.append(output.grad_alpha)
        grads_beta.append(output.grad_beta)
    estimator.zero_grad(set_to_none=True)
    return torch.stack(grads_alpha), torch.stack(grads_beta)


def train_surrogate(
    estimator: Estimator, problem: ToyProblem, num_steps: int, generator: torch.Generator, lr: float = 1e-2
) -> list[float]:
    """Adam on ``estimator.parameters()`` against the variance loss (Eq. 13); returns the losses."""
    optimizer = torch.optim.Adam(estimator.parameters(), lr=lr)
    losses = []
    for _ in range(num_steps):
        optimizer.zero_grad(set_to_none=True)
        sample = estimator.sample(problem.alpha, problem.beta, generator)
        output = estimator.gradients(sample, problem.loss(sample))
        optimizer.step()
        losses.append(float(output.surrogate_loss))
    return losses
