"""One step of DADA's bi-level one-pass optimisation (paper section 3.5, Eq. 16-19), DARTS-style.

The network weights w and the policy d = {α, β, m, φ} are updated alternately. The policy gradient is
the unrolled one: with the virtual step w' = w - ζ∇_w L_train(w, d) (Eq. 17, SGD momentum and weight
decay included as in the official code), ∇_d L_val(w') ≈ -ζ [∇_d L_train(w+, d) - ∇_d L_train(w-, d)] / 2ε
(Eq. 19), with w± = w ± ε∇_{w'} L_val(w') and ε = 0.01 / ‖∇_{w'} L_val(w')‖. The validation batch is only
normalised. ``search.variant`` (dada.search.variant) picks the paper's reading or the official code's:

- ζ: kept (paper) or dropped (official).
- Both L_train(w±) use the same sampled sub-policy, gates and augmented batch. The official code takes one
  estimate for each and divides their difference by 2ε; the paper reading hands the estimator the finite
  difference itself as its black-box objective. The two agree for the straight-through Gumbel estimator,
  which is linear in the loss, but not for RELAX, which is affine in it: with two estimates c_φ cancels.

The network step reuses ∇_w L_train(w, d) from the virtual step: same w, same d, same batch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from dada.search.augment import SearchInputs
from dada.search.space import SearchSpace
from dada.search.variant import VARIANTS, Variant

MODES = ("unrolled", "first_order")
SAMPLINGS = ("batch", "image")
FIRST_ORDER_WARNING = (
    "search.mode=first_order lets the policy minimise the loss of validation images augmented by the policy "
    "itself, which rewards weaker augmentation (FIDELITY.md row 7; the official code without --unrolled does the "
    "same, and its authors support only the unrolled step). Use search.mode=unrolled to reproduce the paper."
)


@dataclass
class StepResult:
    train_loss: float
    val_loss: float
    policy_objective: float
    grad_alpha: torch.Tensor
    grad_probability: torch.Tensor
    grad_magnitude: torch.Tensor
    surrogate_loss: float | None


@dataclass
class FiniteDifference:
    """Eq. 19 per image: ``scale · (ℓ(w+) - ℓ(w-)) / B`` with ``scale = -ζ/2ε`` (paper) or ``-1/2ε`` (official)."""

    plus: torch.Tensor
    minus: torch.Tensor
    scale: torch.Tensor

    def objectives(self) -> torch.Tensor:
        return self.scale * (self.plus - self.minus)


def _losses(
    model: nn.Module,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """Per-image cross-entropy with the given weights; buffers are copies, so BN statistics stay put."""
    logits = functional_call(model, {**params, **buffers}, (images,))
    return nn.functional.cross_entropy(logits, labels, reduction="none")


def virtual_step(
    params: dict[str, torch.Tensor], grads: list[torch.Tensor], optimizer: torch.optim.SGD, lr: float
) -> dict[str, torch.Tensor]:
    """Eq. 17: w' = w - ζ (μ·buf + ∇_w L_train + λw), the next SGD step from the current momentum buffer."""
    group = optimizer.param_groups[0]
    momentum, weight_decay = group["momentum"], group["weight_decay"]
    unrolled = {}
    for (name, weight), grad in zip(params.items(), grads):
        buffer = optimizer.state.get(weight, {}).get("momentum_buffer")
        direction = grad + weight_decay * weight.detach()
        if buffer is not None:
            direction = direction + momentum * buffer
        unrolled[name] = (weight.detach() - lr * direction).requires_grad_(True)
    return unrolled


def finite_difference(
    model: nn.Module,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    direction: list[torch.Tensor],
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: float | None,
    step: float,
) -> FiniteDifference:
    """Eq. 18-19 with ε = ``step``/‖v‖ (``search.fd_epsilon``); ``lr=None`` drops ζ (official). The sum's d-gradient
    is Eq. 18's product."""
    norm = torch.sqrt(sum((v * v).sum() for v in direction))
    epsilon = step / norm.clamp_min(1e-12)
    plus = {n: w.detach() + epsilon * v for (n, w), v in zip(params.items(), direction)}
    minus = {n: w.detach() - epsilon * v for (n, w), v in zip(params.items(), direction)}
    batch = len(labels)
    loss_plus = _losses(model, plus, buffers, images, labels) / batch
    loss_minus = _losses(model, minus, buffers, images, labels) / batch
    return FiniteDifference(loss_plus, loss_minus, -(1.0 if lr is None else lr) / (2 * epsilon))


class BiLevelOptimizer:
    """Owns both optimisers and performs one joint step on a (train, val) pair of batches.

    ``inputs`` is the augmentation seam: it turns [0,1] batches into network inputs (training batch augmented
    by the sampled sub-policies, validation batch normalised).
    """

    def __init__(
        self,
        model: nn.Module,
        space: SearchSpace,
        estimator: nn.Module,
        network_optimizer: torch.optim.SGD,
        policy_optimizer: torch.optim.Optimizer,
        grad_clip: float,
        inputs: SearchInputs,
        fd_epsilon: float,
        variant: Variant = VARIANTS["official"],
        mode: str = "unrolled",
        sampling: str = "batch",
    ):
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; valid: {', '.join(MODES)}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}; valid: {', '.join(SAMPLINGS)}")
        if mode == "first_order":
            warnings.warn(FIRST_ORDER_WARNING, stacklevel=2)
        self.model, self.space, self.estimator, self.inputs = model, space, estimator, inputs
        self.network_optimizer, self.policy_optimizer = network_optimizer, policy_optimizer
        self.grad_clip, self.variant, self.mode, self.sampling = grad_clip, variant, mode, sampling
        self.fd_epsilon = fd_epsilon

    def step(
        self,
        train_batch: tuple[torch.Tensor, torch.Tensor],
        val_batch: tuple[torch.Tensor, torch.Tensor],
        generator: torch.Generator,
    ) -> StepResult:
        """Both batches hold [0,1] float images (the training batch already cropped and flipped)."""
        result, network_grads = self._gradients(train_batch, val_batch, generator)
        self.policy_optimizer.step()
        if self.variant.project:
            self.space.project_()
        self._network_step(network_grads)
        return result

    def hypergradient(
        self,
        train_batch: tuple[torch.Tensor, torch.Tensor],
        val_batch: tuple[torch.Tensor, torch.Tensor],
        generator: torch.Generator,
    ) -> StepResult:
        """One step's policy-gradient estimate (also left in the policy's ``.grad``), updating nothing: the
        training forward's BatchNorm statistics are put back."""
        buffers = {name: buffer.clone() for name, buffer in self.model.named_buffers()}
        result = self._gradients(train_batch, val_batch, generator)[0]
        with torch.no_grad():
            for name, buffer in self.model.named_buffers():
                buffer.copy_(buffers[name])
        return result

    def _gradients(self, train_batch, val_batch, generator) -> tuple[StepResult, tuple[torch.Tensor, ...]]:
        (train_images, train_labels), (val_images, val_labels) = train_batch, val_batch
        params = dict(self.model.named_parameters())
        buffers = {n: b.clone() for n, b in self.model.named_buffers()}
        lr = self.network_optimizer.param_groups[0]["lr"]

        draws = len(train_labels) if self.sampling == "image" else 1
        samples = [
            self.estimator.sample(self.space.alpha, self.space.probabilities().flatten(), generator=generator)
            for _ in range(draws)
        ]
        augmented = self.inputs.train(train_images, samples)
        train_loss = nn.functional.cross_entropy(self.model(augmented), train_labels)
        network_grads = torch.autograd.grad(train_loss, list(params.values()), retain_graph=True)

        difference = None
        if self.mode == "unrolled":
            unrolled = virtual_step(params, network_grads, self.network_optimizer, lr)
            val_loss = _losses(self.model, unrolled, buffers, self.inputs.val(val_images), val_labels).mean()
            direction = torch.autograd.grad(val_loss, list(unrolled.values()))
            difference = finite_difference(
                self.model,
                params,
                buffers,
                direction,
                augmented,
                train_labels,
                lr if self.variant.scale_by_lr else None,
                self.fd_epsilon,
            )
            objectives = difference.objectives()
        else:
            val_augmented = self.inputs.train(val_images, samples)
            objectives = nn.functional.cross_entropy(self.model(val_augmented), val_labels, reduction="none")
            objectives = objectives / len(val_labels)
            val_loss = objectives.sum()

        return self._policy_gradient(samples, objectives, difference, train_loss, val_loss), network_grads

    def _estimate(self, samples, objectives: torch.Tensor, difference: FiniteDifference | None):
        """α and β estimates; ``objectives`` are the per-image parts, each sample driving its images' parts."""
        per_sample = (lambda parts: [parts.sum()]) if len(samples) == 1 else list
        if difference is not None and self.variant.difference_of_estimates:
            return self.estimator.difference_of_estimates(
                samples, per_sample(difference.plus), per_sample(difference.minus), difference.scale
            )
        return self.estimator.gradients_many(samples, per_sample(objectives))

    def _policy_gradient(self, samples, objectives, difference, train_loss, val_loss) -> StepResult:
        self.policy_optimizer.zero_grad(set_to_none=True)
        objective = objectives.sum()
        grad_magnitude = torch.zeros_like(self.space.magnitude)
        if objective.requires_grad:  # else no op fired, and nothing depends on d
            (grad_magnitude,) = torch.autograd.grad(
                objective, [self.space.magnitude], retain_graph=True, allow_unused=True, materialize_grads=True
            )
        estimate = self._estimate(samples, objectives, difference)
        grad_probability = estimate.grad_beta.view_as(self.space.probability)
        self.space.alpha.grad = estimate.grad_alpha.detach()
        self.space.probability.grad = grad_probability.detach()
        self.space.magnitude.grad = grad_magnitude.detach()
        surrogate = None if estimate.surrogate_loss is None else float(estimate.surrogate_loss)
        return StepResult(
            train_loss.item(),
            val_loss.item(),
            objective.item(),
            estimate.grad_alpha.detach(),
            grad_probability.detach(),
            grad_magnitude.detach(),
            surrogate,
        )

    def _network_step(self, grads: tuple[torch.Tensor, ...]) -> None:
        params = dict(self.model.named_parameters())
        self.network_optimizer.zero_grad(set_to_none=True)
        for weight, grad in zip(params.values(), grads):
            weight.grad = grad.detach()
        if self.grad_clip > 0:  # 0: no clipping, as in the evaluation and the detection
            nn.utils.clip_grad_norm_(list(params.values()), self.grad_clip)
        self.network_optimizer.step()
