"""Apply sampled sub-policies to a training batch, keeping the gradient paths each estimator needs.

For the straight-through Gumbel estimator the hard category weight and gates carry gradients (Eq. 8-9):
image i becomes ``w_c · Ō_k(... Ō_1(x))`` with ``Ō_j(y) = b_j O_j(y) + (1 - b_j) y`` (Eq. 4-5), only its
selected sub-policy computed, as in GDAS and the official code. For RELAX and REINFORCE the weights are
constants and only the fired ops run. Magnitudes always get the straight-through gradient of Eq. 10-11.
"""
from __future__ import annotations

from typing import Sequence

import torch

from dada import ops
from dada.search.space import SearchSpace


def augment(images: torch.Tensor, space: SearchSpace, samples: Sequence, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """``images``: float [B,C,H,W] in [0,1]. ``samples``: one estimator sample for the whole batch (the
    official default), or one per image."""
    batch = images.shape[0]
    if len(samples) not in (1, batch):
        raise ValueError(f"need one sample for the batch or one per image ({batch}), got {len(samples)}")
    categories = torch.stack([sample.category for sample in samples]).expand(batch)
    gates = torch.stack([sample.gates.view(space.num_sub_policies, -1)[int(sample.category)] for sample in samples])
    weights = torch.stack([sample.category_weights[int(sample.category)] for sample in samples])
    gates, weights = gates.expand(batch, -1), weights.expand(batch)
    op_index, levels = space.sub_policies[categories], space.magnitudes()[categories]
    for stage in range(op_index.shape[1]):
        gate = gates[:, stage]
        if gate.requires_grad:  # straight-through gates: every op runs, the gate mixes (Eq. 4)
            transformed = ops.apply_indexed(images, op_index[:, stage], levels[:, stage], generator=generator)
            gate = gate.view(batch, 1, 1, 1)
            images = gate * transformed + (1 - gate) * images
        elif bool(gate.any()):
            images = ops.apply_indexed(images, op_index[:, stage], levels[:, stage], mask=gate > 0.5,
                                       generator=generator)
    return weights.view(batch, 1, 1, 1) * images
