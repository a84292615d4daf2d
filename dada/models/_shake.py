"""Stochastic branch scaling: Shake-Shake (Gastaldi 2017) and ShakeDrop (Yamada et al. 2019).

Both scale a residual branch by one random coefficient in the forward pass and by an
independent one in the backward pass, drawn per sample ("Image" level). ``ForwardBackwardScale``
is the one autograd Function that does this; the two regularisers only choose the coefficients.
"""

import torch


class ForwardBackwardScale(torch.autograd.Function):
    """``y = forward_scale * x`` whose gradient is ``backward_scale * dy`` instead of ``forward_scale * dy``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, forward_scale: torch.Tensor, backward_scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(backward_scale)
        return x * forward_scale

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (backward_scale,) = ctx.saved_tensors
        return grad_output * backward_scale, None, None


def _per_sample_uniform(x: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """One float32 U[low, high) draw per sample of ``x``, shaped to broadcast over (N, C, H, W).

    Always float32, so the random stream and the gate do not depend on the autocast dtype.
    """
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return low + (high - low) * torch.rand(shape, device=x.device, dtype=torch.float32)


def shake_shake(branch_a: torch.Tensor, branch_b: torch.Tensor, training: bool) -> torch.Tensor:
    """Shake-Shake-Image combination of two residual branches (Gastaldi 2017).

    Training: ``alpha * a + (1 - alpha) * b`` forward, gradients ``beta`` and ``1 - beta`` backward,
    with alpha, beta ~ U[0, 1] independent per sample. Evaluation: the expectation, ``0.5 * (a + b)``.
    """
    if not training:
        return 0.5 * (branch_a + branch_b)
    alpha = _per_sample_uniform(branch_a).to(branch_a.dtype)
    beta = _per_sample_uniform(branch_a).to(branch_a.dtype)
    shaken_a = ForwardBackwardScale.apply(branch_a, alpha, beta)
    shaken_b = ForwardBackwardScale.apply(branch_b, 1 - alpha, 1 - beta)
    return shaken_a + shaken_b


def shake_drop(branch: torch.Tensor, survival_prob: float, training: bool) -> torch.Tensor:
    """ShakeDrop (Yamada et al. 2019): scale a residual branch by ``b + alpha - b * alpha``.

    Training: gate b ~ Bernoulli(survival_prob), alpha ~ U[-1, 1] forward and beta ~ U[0, 1] backward
    (``b + alpha - b * alpha`` is 1 when b = 1 and alpha when b = 0, so it is computed as a select),
    all per sample (Fast AA draws the gate once per batch; the expectation is the same and this needs
    no host sync). Evaluation: the expectation, ``survival_prob * branch``.
    """
    if not training:
        return survival_prob * branch
    keep = _per_sample_uniform(branch) < survival_prob
    alpha = _per_sample_uniform(branch, -1.0, 1.0)
    beta = _per_sample_uniform(branch)
    forward_scale = torch.where(keep, 1.0, alpha)
    backward_scale = torch.where(keep, 1.0, beta)
    return ForwardBackwardScale.apply(branch, forward_scale.to(branch.dtype), backward_scale.to(branch.dtype))
