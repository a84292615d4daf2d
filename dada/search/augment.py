"""The network inputs of a search step, with the gradient paths each estimator and ``search.variant`` needs.

Training images are augmented by the sampled sub-policies, then normalised and cut out; validation images are
only normalised, like the official ``transform_test``. Two placements of the gradient paths:

- ``paper``: in pixel space, as Eq. 4-5 and 10-11 are written. For the straight-through Gumbel estimator image
  i becomes ``w_c · Ō_k(... Ō_1(x))`` with ``Ō_j(y) = b_j O_j(y) + (1 - b_j) y``, so every op of the selected
  sub-policy runs; magnitudes get the straight-through gradient inside the ops.
- ``official``: the ops run as constants on the fired gates only (the official data loader), and the network
  input x carries the gradients, as the official ``DifferentiableAugment``/``MixedAugment`` do.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from dada import ops, transforms
from dada.search.space import SearchSpace


def _selected(space: SearchSpace, samples: Sequence, batch: int):
    """Per image: the sub-policy index [B], its gates [B, k] and its category weight [B]."""
    if len(samples) not in (1, batch):
        raise ValueError(f"need one sample for the batch or one per image ({batch}), got {len(samples)}")
    categories = torch.stack([sample.category for sample in samples]).expand(batch)
    gates = torch.stack([sample.gates.view(space.num_sub_policies, -1)[int(sample.category)] for sample in samples])
    weights = torch.stack([sample.category_weights[int(sample.category)] for sample in samples])
    return categories, gates.expand(batch, -1), weights.expand(batch)


def augment(
    images: torch.Tensor, space: SearchSpace, samples: Sequence, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``paper`` placement. ``images``: float [B,C,H,W] in [0,1]. ``samples``: one estimator sample for the whole
    batch (the official default), or one per image."""
    batch = images.shape[0]
    categories, gates, weights = _selected(space, samples, batch)
    op_index, levels = space.sub_policies[categories], space.magnitudes()[categories]
    for stage in range(op_index.shape[1]):
        gate = gates[:, stage]
        if gate.requires_grad:  # straight-through gates: every op runs, the gate mixes (Eq. 4)
            transformed = ops.apply_indexed(images, op_index[:, stage], levels[:, stage], generator=generator)
            gate = gate.view(batch, 1, 1, 1)
            images = gate * transformed + (1 - gate) * images
        elif bool(gate.any()):
            images = ops.apply_indexed(
                images, op_index[:, stage], levels[:, stage], mask=gate > 0.5, generator=generator
            )
    return weights.view(batch, 1, 1, 1) * images


def apply_fired(
    images: torch.Tensor, space: SearchSpace, samples: Sequence, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``official`` placement, pixel part: the fired ops at the clamped magnitudes, as constants."""
    categories, gates, _ = _selected(space, samples, images.shape[0])
    op_index, levels = space.sub_policies[categories], space.magnitudes().detach()[categories]
    with torch.no_grad():
        for stage in range(op_index.shape[1]):
            fired = gates[:, stage].detach() > 0.5
            if bool(fired.any()):
                images = ops.apply_indexed(
                    images, op_index[:, stage], levels[:, stage], mask=fired, generator=generator
                )
    return images


def on_network_input(inputs: torch.Tensor, space: SearchSpace, samples: Sequence) -> torch.Tensor:
    """``official`` placement, gradient part, on the normalised (and cut-out) input x.

    Magnitude (DifferentiableAugment): ``x + Σ_fired (m - sg(m))``, the raw m (no clamp, so m may drift).
    Gumbel (MixedAugment): ``Σ_s T_s x_s`` over the 2^k gate patterns, with ``T_s = Π_j g_j or (1 - g_j)`` and
    ``x_s = 1`` for every pattern but the drawn one, then ``w_c x + Σ_{c'≠c} w_c'``. Since ``Σ_s T_s = 1`` and
    ``Σ_c w_c = 1`` as functions (not just in value), both sums collapse to ``1 + w_c T (x - 1)``, same value
    and same gradient as the official loops.
    """
    batch = inputs.shape[0]
    categories, gates, weights = _selected(space, samples, batch)
    fired = (gates.detach() > 0.5).to(inputs.dtype)
    magnitude = space.magnitude[categories]
    inputs = inputs + (fired * (magnitude - magnitude.detach())).sum(1).view(batch, 1, 1, 1)
    if not (gates.requires_grad or weights.requires_grad):  # RELAX and REINFORCE: no relaxed path
        return inputs
    pattern = torch.where(fired > 0, gates, 1 - gates).prod(1)
    return 1 + (weights * pattern).view(batch, 1, 1, 1) * (inputs - 1)


class SearchInputs:
    """Maps [0,1] batches to network inputs: the augmentation seam of ``BiLevelOptimizer``.

    ``train`` augments by the sampled sub-policies, then applies ``after_ops`` (ImageNet's lighting noise),
    normalises and cuts out; ``val`` only normalises.
    """

    def __init__(
        self,
        space: SearchSpace,
        mean: Sequence[float],
        std: Sequence[float],
        cutout: int,
        generator: torch.Generator | None,
        official: bool,
        after_ops: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.space, self.mean, self.std, self.cutout = space, list(mean), list(std), cutout
        self.generator, self.official, self.after_ops = generator, official, after_ops

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return transforms.normalize(images, self.mean, self.std)

    def train(self, images: torch.Tensor, samples: Sequence) -> torch.Tensor:
        if self.official:
            images = apply_fired(images, self.space, samples, self.generator)
        else:
            images = augment(images, self.space, samples, self.generator)
        if self.after_ops is not None:
            images = self.after_ops(images)
        inputs = transforms.cutout_normalized(self.normalize(images), self.cutout, self.generator)
        return on_network_input(inputs, self.space, samples) if self.official else inputs

    def val(self, images: torch.Tensor) -> torch.Tensor:
        return self.normalize(images)
