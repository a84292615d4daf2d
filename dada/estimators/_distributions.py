"""Noise, relaxations and conditional re-sampling for a Categorical x Bernoulli pair.

Logits are kept in the "noisy logit" space throughout: ``z = log pi + g`` for the categorical
(Gumbel-max, Eq. 7-8) and ``z = logit(beta) + logit(u)`` for each gate (Eq. 9). The discrete
sample is ``H(z)``: ``argmax z`` and ``z > 0``; the relaxed sample is ``softmax(z / tau)`` and
``sigmoid(z / tau)``.
"""

import torch
from torch import Tensor


def uniform(num: int, like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``num`` draws from U(0, 1), kept one machine epsilon away from 0 and 1 so logs stay finite."""
    eps = torch.finfo(like.dtype).eps
    noise = torch.rand(num, generator=generator, dtype=like.dtype, device=like.device)
    return noise.clamp_(eps, 1.0 - eps)


def clamp_probability(beta: Tensor, eps: float) -> Tensor:
    """beta clamped to [eps, 1 - eps] in the forward pass only, so logs stay finite.

    The clamp is straight-through: the caller's beta may sit on 0 or 1 and still get a gradient.
    """
    return beta + (beta.clamp(eps, 1.0 - eps) - beta).detach()


def logit(p: Tensor) -> Tensor:
    return torch.log(p) - torch.log1p(-p)


def gumbel_logits(alpha: Tensor, u: Tensor) -> Tensor:
    """Eq. 7: ``log pi + g`` with ``g = -log(-log u)``; same argmax and relaxation as ``alpha + g``."""
    return torch.log_softmax(alpha, dim=-1) - torch.log(-torch.log(u))


def logistic_logits(logits: Tensor, u: Tensor) -> Tensor:
    """Eq. 9 before the temperature: ``logit(beta) + log(u / (1 - u))``."""
    return logits + logit(u)


def conditional_gumbel_logits(alpha: Tensor, category: Tensor, v: Tensor) -> Tensor:
    """Eq. 14: Gumbel-max logits conditioned on ``argmax == category``.

    The maximum ``z_c = -log(-log v_c)`` is a standard Gumbel (the max of ``log pi + g``); every other
    ``z_i = -log(-log(v_i) / pi_i - log v_c)`` is a Gumbel with location ``log pi_i`` truncated below z_c.
    """
    log_pi = torch.log_softmax(alpha, dim=-1)
    log_v_top = torch.log(v[category])
    top = -torch.log(-log_v_top)
    others = -torch.log(-torch.log(v) * torch.exp(-log_pi) - log_v_top)
    is_top = torch.arange(alpha.shape[-1], device=alpha.device) == category
    return torch.where(is_top, top, others)


def conditional_logistic_logits(logits: Tensor, gates: Tensor, v: Tensor) -> Tensor:
    """Eq. 15: gate logits conditioned on ``gates``; ``v' = v (1 - p)`` if off, ``v p + (1 - p)`` if on."""
    p = torch.sigmoid(logits)
    v_prime = torch.where(gates > 0.5, v * p + (1.0 - p), v * (1.0 - p))
    return logistic_logits(logits, v_prime)


def relax(category_logits: Tensor, gate_logits: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """Eq. 7 and Eq. 9: ``softmax(z / tau)`` over the categories and ``sigmoid(z / tau)`` per gate."""
    return torch.softmax(category_logits / temperature, dim=-1), torch.sigmoid(gate_logits / temperature)


def log_prob(alpha: Tensor, beta: Tensor, category: Tensor, gates: Tensor) -> Tensor:
    """``log p(c, b | alpha, beta) = log pi_c + sum_i [b_i log beta_i + (1 - b_i) log(1 - beta_i)]`` (Eq. 6).

    ``beta`` must already be clamped away from 0 and 1.
    """
    log_pi = torch.log_softmax(alpha, dim=-1)[category]
    return log_pi + (gates * torch.log(beta) + (1.0 - gates) * torch.log1p(-beta)).sum()
