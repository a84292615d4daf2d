"""Inside the searches: the final policy of each search (heatmap) and the gradient estimators' variance per epoch.

Both read the run folders' ``metrics.jsonl`` (per-epoch ``policy/*`` and ``grad/*/variance``), so they work
on any finished search, at any scale. The bias/variance on toy problems with exact gradients is
``analysis.estimators``; this is the same question asked over the course of a real search.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from analysis.runs import read_epoch_metrics
from analysis.style import STYLE, color
from dada.files import read_yaml
from dada.layout import RunFolder
from dada.plots import policy_heatmap
from dada.schemas import GRADIENT_GROUPS, gradient_metric, policy_slot_metric, policy_weight_metric
from dada.search.space import SearchSpace

GROUPS = GRADIENT_GROUPS
GROUP_LABELS = {"alpha": "α (sub-policy logits)", "probability": "β (probabilities)", "magnitude": "m (magnitudes)"}


def _space_from_metrics(run_dir: Path) -> tuple[SearchSpace, int]:
    """The search space as the last epoch left it, rebuilt from ``metrics.jsonl`` and ``config.yaml``."""
    recipe = read_yaml(RunFolder(run_dir).config, "run config")["search"]
    space = SearchSpace(recipe["ops_per_sub_policy"], recipe["ordered"])
    last = read_epoch_metrics(run_dir).iloc[-1]
    count, slots = space.sub_policies.shape
    weights = torch.tensor([last[policy_weight_metric(i)] for i in range(count)])
    with torch.no_grad():
        space.alpha.copy_(weights.log())  # softmax(log w) = w: the heatmap shows the logged weights
        for name, parameter in (("probability", space.probability), ("magnitude", space.magnitude)):
            parameter.copy_(
                torch.tensor([[last[policy_slot_metric(name, i, j)] for j in range(slots)] for i in range(count)])
            )
    return space, int(last["epoch"])


def policy_figure(run_dir: Path, title: str, top_k: int = 25) -> plt.Figure:
    """softmax(α) over every sub-policy and β, m of the ``top_k`` best, after the search's last epoch."""
    space, epoch = _space_from_metrics(run_dir)
    return policy_heatmap(
        space.sub_policies,
        space.alpha,
        space.probabilities(),
        space.magnitudes(),
        top_k,
        title=f"{title}, after epoch {epoch}",
    )


def gradient_variance(searches: pd.DataFrame) -> pd.DataFrame:
    """Long table: experiment, estimator, seed, epoch, group, variance (per-coordinate, averaged) of each search."""
    frames = []
    for search in searches.itertuples():
        epochs = read_epoch_metrics(search.run_dir)
        for group in GROUPS:
            frames.append(
                pd.DataFrame(
                    {
                        "experiment": search.experiment,
                        "estimator": search.variant,
                        "seed": search.seed,
                        "epoch": epochs["epoch"],
                        "group": group,
                        "variance": epochs[gradient_metric(group, "variance")],
                    }
                )
            )
    columns = ["experiment", "estimator", "seed", "epoch", "group", "variance"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def gradient_variance_figure(variance: pd.DataFrame, caption: str) -> plt.Figure:
    """Per search experiment (rows) and parameter group (columns): variance per epoch, one line per seed."""
    experiments = list(dict.fromkeys(variance["experiment"]))
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(
            max(len(experiments), 1), len(GROUPS), figsize=(13, 3.4 * max(len(experiments), 1)), squeeze=False
        )
        for row, experiment in enumerate(experiments):
            for column, group in enumerate(GROUPS):
                axis = axes[row, column]
                selected = variance[(variance["experiment"] == experiment) & (variance["group"] == group)]
                for estimator, lines in selected.groupby("estimator"):
                    for index, (_, line) in enumerate(lines.groupby("seed")):
                        label = f"{estimator} ({lines['seed'].nunique()} seeds)" if index == 0 else None
                        axis.plot(
                            line["epoch"], line["variance"], marker="o", color=color(estimator), label=label, alpha=0.8
                        )
                axis.set_yscale("log")
                axis.xaxis.set_major_locator(MaxNLocator(integer=True))
                axis.set_title(f"{experiment}: {GROUP_LABELS[group]}", fontsize=9)
                axis.set_xlabel("search epoch")
                axis.set_ylabel("variance of the estimate")
                axis.legend(fontsize=7)
        if not experiments:
            axes[0, 0].text(0.5, 0.5, "no finished searches", ha="center")
        figure.suptitle(
            "Gradient estimator variance over the course of the search: per-coordinate variance of the "
            f"policy gradient within an epoch, mean over coordinates\n({caption})",
            fontsize=10,
        )
        figure.tight_layout()
    return figure
