"""Pictures of a search space's state: softmax(α) over all sub-policies, and β/m of the top ones.

Below both the search (which logs them) and ``analysis`` (which writes them to results/). Figures are built with
Matplotlib's object API, so no pyplot state or backend is touched.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from dada.ops import OP_NAMES


def _pair_matrix(sub_policies: torch.Tensor, weights: torch.Tensor) -> np.ndarray:
    """softmax(α) of 2-op sub-policies laid out as a first-op x second-op matrix (NaN where no sub-policy)."""
    matrix = np.full((len(OP_NAMES), len(OP_NAMES)), np.nan)
    for (first, second), weight in zip(sub_policies.tolist(), weights.tolist()):
        matrix[first, second] = weight
    return matrix


def policy_heatmap(
    sub_policies: torch.Tensor,
    alpha: torch.Tensor,
    probability: torch.Tensor,
    magnitude: torch.Tensor,
    top_k: int = 25,
    title: str = "",
) -> Figure:
    """Left: softmax(α) per op pair (uniform = 1/N). Right: β and m of the ``top_k`` sub-policies by α."""
    weights = torch.softmax(alpha.detach().float().cpu(), 0)
    order = torch.argsort(weights, descending=True, stable=True)[:top_k]
    figure = Figure(figsize=(15, 6.5))
    left, right = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    if sub_policies.shape[1] == 2:
        image = left.imshow(_pair_matrix(sub_policies.cpu(), weights) * len(weights), cmap="viridis")
        left.set_xticks(range(len(OP_NAMES)), OP_NAMES, rotation=90)
        left.set_yticks(range(len(OP_NAMES)), OP_NAMES)
        left.set_xlabel("second operation")
        left.set_ylabel("first operation")
        figure.colorbar(image, ax=left, fraction=0.046, label="softmax(α) × N  (1 = uniform)")
    else:
        left.bar(range(len(weights)), weights.numpy())
        left.set_xlabel("sub-policy")
    left.set_title("sub-policy weights")
    labels = ["+".join(OP_NAMES[o] for o in sub_policies[i].tolist()) for i in order.tolist()]
    values = np.concatenate(
        [probability.detach().cpu()[order].numpy(), magnitude.detach().cpu()[order].numpy()], axis=1
    )
    columns = [f"β{j + 1}" for j in range(sub_policies.shape[1])] + [f"m{j + 1}" for j in range(sub_policies.shape[1])]
    image = right.imshow(values, cmap="magma", vmin=0, vmax=1, aspect="auto")
    right.set_yticks(range(len(labels)), labels, fontsize=7)
    right.set_xticks(range(len(columns)), columns)
    right.set_title(f"top {len(labels)} sub-policies: probability β and magnitude m")
    figure.colorbar(image, ax=right, fraction=0.046)
    figure.suptitle(title)
    figure.tight_layout()
    return figure
