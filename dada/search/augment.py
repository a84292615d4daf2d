"""Apply a sampled sub-policy to a training batch, keeping the gradient paths each estimator needs.

For the straight-through Gumbel estimator the hard category weight and gates carry gradients (Eq. 8-9):
the batch becomes ``w_c · Ō_k(... Ō_1(x))`` with ``Ō_j(y) = b_j O_j(y) + (1 - b_j) y`` (Eq. 4-5), only the
selected sub-policy computed, as in GDAS and the official code. For RELAX and REINFORCE the weights are
constants and only the fired ops run. Magnitudes always get the straight-through gradient of Eq. 10-11.
"""
from __future__ import annotations

import torch

from dada import ops
from dada.search.space import SearchSpace


def augment(images: torch.Tensor, space: SearchSpace, sample, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """``images``: float [B,C,H,W] in [0,1]; ``sample``: an estimator sample (one sub-policy for the batch)."""
    category = int(sample.category)
    gates = sample.gates.view(space.num_sub_policies, space.ops_per_sub_policy)[category]
    levels = space.magnitudes()[category]
    batch = images.shape[0]
    for stage, op in enumerate(space.sub_policies[category].tolist()):
        gate = gates[stage]
        if not gate.requires_grad and gate.item() == 0:
            continue
        level = levels[stage].expand(batch)
        transformed = ops.apply(images, ops.OP_NAMES[op], level, generator=generator)
        images = transformed if not gate.requires_grad else gate * transformed + (1 - gate) * images
    return sample.category_weights[category] * images
