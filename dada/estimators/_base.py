"""The interface every estimator implements: draw ``(c, b)`` from p(c, b | alpha, beta), then
turn the loss of that draw into gradients for alpha and beta (Sec. 3.2, Eq. 6)."""

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from . import _distributions as dist


@dataclass(frozen=True, repr=False)
class EstimatorSample:
    """One draw of a sub-policy index and its gates, plus what the estimator needs to get gradients.

    ``category_weights`` (one-hot of ``category``) and ``gates`` (in {0, 1}) are what the loss uses;
    ``alpha`` and ``beta`` are detached copies of the caller's parameters that the gradients refer to.
    """

    category: Tensor
    category_weights: Tensor
    gates: Tensor
    alpha: Tensor
    beta: Tensor
    category_logits: Tensor
    gate_logits: Tensor
    conditional_category_logits: Tensor | None = None
    conditional_gate_logits: Tensor | None = None

    def __repr__(self) -> str:
        on = int(self.gates.detach().sum().item())
        return f"EstimatorSample(category={int(self.category)}, gates_on={on}/{self.gates.numel()})"


@dataclass(frozen=True, repr=False)
class EstimatorOutput:
    """Gradient estimates for alpha [K] and beta [G]; ``surrogate_loss`` is RELAX's variance loss (Eq. 13)."""

    grad_alpha: Tensor
    grad_beta: Tensor
    surrogate_loss: Tensor | None = None

    def __repr__(self) -> str:
        surrogate = "None" if self.surrogate_loss is None else f"{float(self.surrogate_loss):.4g}"
        return (
            f"EstimatorOutput(|grad_alpha|={float(self.grad_alpha.norm()):.4g}, "
            f"|grad_beta|={float(self.grad_beta.norm()):.4g}, surrogate_loss={surrogate})"
        )


BOUNDARIES = ("straight_through", "freeze")


class Estimator(nn.Module):
    """Gradient estimator for E[f(c, b)], c ~ Categorical(softmax(alpha)), b_i ~ Bernoulli(beta_i).

    Subclasses refine ``sample`` (what the loss sees) and implement ``gradients``. beta is clamped to
    [eps, 1 - eps] before its logit; ``boundary`` says what the clamp passes back: the gradient unchanged
    (``straight_through``) or zero outside the interval (``freeze``, the official code's plain clamp).
    ``temperature`` is the relaxation's tau (the paper's value is in conf/estimator/).
    """

    name: str = ""

    def __init__(
        self,
        num_categories: int,
        num_gates: int,
        temperature: float,
        eps: float = 1e-6,
        boundary: str = "straight_through",
    ):
        super().__init__()
        if num_categories < 1 or num_gates < 0:
            raise ValueError(f"need num_categories >= 1 and num_gates >= 0, got {num_categories} and {num_gates}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if not 0 < eps < 0.5:
            raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"unknown boundary {boundary!r}; valid: {', '.join(BOUNDARIES)}")
        self.num_categories = num_categories
        self.num_gates = num_gates
        self.temperature = temperature
        self.eps = eps
        self.boundary = boundary

    def sample(self, alpha: Tensor, beta: Tensor, generator: torch.Generator | None = None) -> EstimatorSample:
        """Eq. 7-9: ``c = argmax(log pi + g)``, ``b = 1[logit(beta) + logit(u) > 0]``, as constants.

        All noise comes from ``generator`` (on alpha's device) when one is given, never the global RNG.
        """
        alpha, beta = self._leaf_copies(alpha, beta)
        if generator is not None and generator.device.type != alpha.device.type:
            raise ValueError(f"generator is on {generator.device}, alpha on {alpha.device}; they must match")
        category_logits = dist.gumbel_logits(alpha, dist.uniform(self.num_categories, alpha, generator))
        gate_logits = dist.logistic_logits(self.gate_logits(beta), dist.uniform(self.num_gates, beta, generator))
        category = category_logits.detach().argmax()
        return EstimatorSample(
            category=category,
            category_weights=nn.functional.one_hot(category, self.num_categories).to(alpha.dtype),
            gates=(gate_logits.detach() > 0).to(beta.dtype),
            alpha=alpha,
            beta=beta,
            category_logits=category_logits,
            gate_logits=gate_logits,
        )

    def gradients(self, sample: EstimatorSample, loss: Tensor | float, retain_graph: bool = False) -> EstimatorOutput:
        """Estimate dE[f]/dalpha and dE[f]/dbeta from the loss of ``sample``.

        ``retain_graph`` keeps the loss's graph for a later backward (gumbel only: the other
        estimators read the loss as a value and never backpropagate through it).
        """
        raise NotImplementedError

    def gradients_many(
        self, samples: Sequence[EstimatorSample], losses: Sequence[Tensor], retain_graph: bool = False
    ) -> EstimatorOutput:
        """The summed estimate for independent samples whose losses add up: ``f = sum_i f_i(q_i)``.

        Used for one sub-policy per image; ``losses[i]`` is the part of the loss that sample ``i`` drives.
        """
        outputs = [self.gradients(sample, loss, retain_graph) for sample, loss in zip(samples, losses, strict=True)]
        surrogates = [out.surrogate_loss for out in outputs if out.surrogate_loss is not None]
        return EstimatorOutput(
            torch.stack([out.grad_alpha for out in outputs]).sum(0),
            torch.stack([out.grad_beta for out in outputs]).sum(0),
            torch.stack(surrogates).sum() if surrogates else None,
        )

    def difference_of_estimates(
        self, samples: Sequence[EstimatorSample], plus: Sequence[Tensor], minus: Sequence[Tensor], scale: Tensor
    ) -> EstimatorOutput:
        """``scale · (ĝ[f+] - ĝ[f-])``, the official finite difference of two estimates on the same samples.

        The default is the score-function form, ``scale · (f+ - f-) · grad log p``: any baseline or control
        variate that does not depend on f cancels in the difference.
        """
        grad_alpha, grad_beta = torch.zeros(()), torch.zeros(())
        for sample, loss_plus, loss_minus in zip(samples, plus, minus, strict=True):
            value = black_box_value(scale * (loss_plus - loss_minus), sample.alpha)
            score_alpha, score_beta = self.score(sample)
            grad_alpha, grad_beta = grad_alpha + value * score_alpha, grad_beta + value * score_beta
        return EstimatorOutput(grad_alpha, grad_beta)

    def log_prob(self, sample: EstimatorSample) -> Tensor:
        """``log p(c, b | alpha, beta)`` of the sample, differentiable in ``sample.alpha`` and ``sample.beta``."""
        beta = self._clamp(sample.beta)
        return dist.log_prob(sample.alpha, beta, sample.category, sample.gates)

    def gate_logits(self, beta: Tensor) -> Tensor:
        """``logit(beta)``, beta clamped to [eps, 1 - eps] (see ``boundary``)."""
        return dist.logit(self._clamp(beta))

    def _clamp(self, beta: Tensor) -> Tensor:
        if self.boundary == "freeze":
            return beta.clamp(self.eps, 1.0 - self.eps)
        return dist.clamp_probability(beta, self.eps)

    def score(self, sample: EstimatorSample) -> tuple[Tensor, Tensor]:
        """``grad log p(c, b)`` with respect to alpha and beta (the score function)."""
        return torch.autograd.grad(self.log_prob(sample), (sample.alpha, sample.beta), materialize_grads=True)

    def extra_repr(self) -> str:
        return f"num_categories={self.num_categories}, num_gates={self.num_gates}, temperature={self.temperature}"

    def _leaf_copies(self, alpha: Tensor, beta: Tensor) -> tuple[Tensor, Tensor]:
        expected = {"alpha": (alpha, self.num_categories), "beta": (beta, self.num_gates)}
        for name, (value, size) in expected.items():
            if not torch.is_tensor(value) or value.shape != (size,):
                shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
                raise ValueError(f"{name} must be a tensor of shape ({size},), got {shape}")
            if not value.is_floating_point():
                raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
        return alpha.detach().clone().requires_grad_(), beta.detach().clone().requires_grad_()


def black_box_value(loss: Tensor | float, like: Tensor) -> Tensor:
    """The loss as a detached scalar, for the estimators that treat f as a black box."""
    value = torch.as_tensor(loss).detach()
    if value.numel() != 1:
        raise ValueError(f"loss must be a scalar, got shape {tuple(value.shape)}")
    return value.reshape(()).to(dtype=like.dtype, device=like.device)
