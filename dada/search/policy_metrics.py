"""The policy's state as the dashboards show it: scalar summaries, and one table row per sub-policy named by its ops.

``metrics.jsonl`` keeps every number under its index (``dada.schemas.policy_weight_metric``, read by ``analysis``);
MLflow and W&B get the summaries per epoch, the table (``policy_state``), and the heatmap figure instead of 525
numbered charts.
"""

from __future__ import annotations

import math

import torch

from dada.schemas import POLICY_GROUPS, policy_slot_metric, policy_weight_metric
from dada.search.space import SearchSpace

TABLE_NAME = "policy_state"


def numbered_metrics(space: SearchSpace) -> dict[str, float]:
    """softmax(α) for every sub-policy, and β and m for every op slot, under their index (``metrics.jsonl``)."""
    out = {policy_weight_metric(i): w for i, w in enumerate(space.weights().tolist())}
    for name, values in zip(POLICY_GROUPS, (space.probabilities(), space.magnitudes())):
        for i, row in enumerate(values.tolist()):
            out.update({policy_slot_metric(name, i, j): v for j, v in enumerate(row)})
    return out


def ranking(space: SearchSpace) -> list[int]:
    """Sub-policy indices by α, largest first, in the order ``SearchSpace.export`` takes them."""
    return torch.argsort(space.alpha.detach(), descending=True, stable=True).tolist()


class PolicySummaries:
    """Scalars that follow the whole policy, per epoch: how peaked softmax(α) is (its entropy, and that entropy over
    the uniform's), how far β and m moved from their 0.5 start (mean |β - 0.5|, mean |m - 0.5|), and the turnover
    of the top ``top_k``: the fraction of the exported sub-policies that were not in the previous epoch's top
    ``top_k`` (left out at the first epoch logged by this process, which has no previous)."""

    def __init__(self, top_k: int):
        self.top_k = top_k
        self.previous_top: set[int] | None = None

    def __call__(self, space: SearchSpace) -> dict[str, float]:
        weights = space.weights().detach()
        entropy = float(-(weights * weights.clamp_min(1e-30).log()).sum())
        out = {
            "policy_summary/alpha_entropy": entropy,
            "policy_summary/alpha_entropy_ratio": entropy / math.log(space.num_sub_policies),  # 1: uniform
            "policy_summary/mean_abs_probability_shift": float((space.probabilities().detach() - 0.5).abs().mean()),
            "policy_summary/mean_abs_magnitude_shift": float((space.magnitudes().detach() - 0.5).abs().mean()),
        }
        top = set(ranking(space)[: self.top_k])
        if self.previous_top is not None:
            out[f"policy_summary/top{self.top_k}_turnover"] = len(top - self.previous_top) / len(top)
        self.previous_top = top
        return out


def state_table(space: SearchSpace, epoch: int) -> list[dict[str, float | int | str]]:
    """One row per sub-policy, named by its ops (``Rotate+Solarize``): its weight, β and m per op slot, its rank."""
    weights = space.weights().tolist()
    rank = {index: position + 1 for position, index in enumerate(ranking(space))}
    probabilities, magnitudes = space.probabilities().tolist(), space.magnitudes().tolist()
    return [
        {
            "epoch": epoch,
            "sub_policy": space.sub_policy_name(index),
            "rank": rank[index],
            "weight": weights[index],
            **{f"probability_{slot}": value for slot, value in enumerate(probabilities[index])},
            **{f"magnitude_{slot}": value for slot, value in enumerate(magnitudes[index])},
        }
        for index in range(len(weights))
    ]
