"""The search space's parameters d = {α, β, m} (paper section 3.1-3.2) and the policy they export."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from dada.ops import OP_NAMES
from dada.policy import Operation, Policy, SubPolicy


class SearchSpace(nn.Module):
    """All sub-policies of ``ops_per_sub_policy`` ops, with their logits α, probabilities β and magnitudes m.

    Defaults follow the official code: C(15, 2) = 105 unordered pairs in op-table order, α equal (a uniform
    softmax, Eq. 3), β = m = 0.5. β and m are kept in [0, 1] by ``project_`` after every update.
    """

    def __init__(
        self,
        ops_per_sub_policy: int = 2,
        ordered: bool = False,
        alpha_init: float = 1e-3,
        probability_init: float = 0.5,
        magnitude_init: float = 0.5,
    ):
        super().__init__()
        pick = itertools.permutations if ordered else itertools.combinations
        pairs = list(pick(range(len(OP_NAMES)), ops_per_sub_policy))
        self.ordered = ordered
        self.register_buffer("sub_policies", torch.tensor(pairs, dtype=torch.long), persistent=False)
        shape = self.sub_policies.shape
        self.alpha = nn.Parameter(torch.full((shape[0],), float(alpha_init)))
        self.probability = nn.Parameter(torch.full(shape, float(probability_init)))
        self.magnitude = nn.Parameter(torch.full(shape, float(magnitude_init)))

    @property
    def num_sub_policies(self) -> int:
        return self.sub_policies.shape[0]

    @property
    def ops_per_sub_policy(self) -> int:
        return self.sub_policies.shape[1]

    def weights(self) -> torch.Tensor:
        """π = softmax(α), Eq. 3."""
        return torch.softmax(self.alpha, dim=0)

    def probabilities(self) -> torch.Tensor:
        return self.probability.clamp(0.0, 1.0)

    def magnitudes(self) -> torch.Tensor:
        return self.magnitude.clamp(0.0, 1.0)

    @torch.no_grad()
    def project_(self) -> None:
        """Keep β and m inside [0, 1] after an optimiser step."""
        self.probability.clamp_(0.0, 1.0)
        self.magnitude.clamp_(0.0, 1.0)

    def sub_policy_name(self, index: int) -> str:
        return "+".join(OP_NAMES[o] for o in self.sub_policies[index].tolist())

    @torch.no_grad()
    def export(self, top_k: int, name: str = "dada-search", generator: torch.Generator | None = None) -> Policy:
        """The final policy: the ``top_k`` sub-policies by α with their β, m and softmax weight (section 3.2).

        Equal α are ranked in op-table order, or with ``generator`` in a random order drawn from it: the official
        code's ``random.sample`` order of the sub-policies (FIDELITY.md row 11), which decides the export at step 0.
        """
        alpha = self.alpha.detach().cpu()
        listing = torch.arange(len(alpha)) if generator is None else torch.randperm(len(alpha), generator=generator)
        order = listing[torch.argsort(alpha[listing], descending=True, stable=True)][:top_k].tolist()
        weights, probabilities, magnitudes = self.weights(), self.probabilities(), self.magnitudes()
        subs = [
            SubPolicy(
                tuple(
                    Operation(OP_NAMES[op], round(probabilities[i, j].item(), 6), round(magnitudes[i, j].item(), 6))
                    for j, op in enumerate(self.sub_policies[i].tolist())
                ),
                weight=round(weights[i].item(), 8),
            )
            for i in order
        ]
        return Policy(subs, name=name, source="dada search")

    def extra_repr(self) -> str:
        return (
            f"sub_policies={self.num_sub_policies}, ops_per_sub_policy={self.ops_per_sub_policy}, "
            f"ordered={self.ordered}"
        )
