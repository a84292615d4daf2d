"""How far each search moved its policy from where it started: α, β and m of its last logged epoch.

A search starts from a uniform softmax(α) and β = m = 0.5 (conf/search/_base.yaml). Per search run:
- the entropy of softmax(α), beside log(K) for K sub-policies (the uniform start), and softmax(α) · K at its
  smallest and largest (1 = uniform);
- the largest and the mean |β - 0.5| and |m - 0.5| over all op slots of the search space;
- per search variant, the top-k overlap between seeds, beside its chance level k / K.
A released policy (no search state) gets the |p - 0.5| and |m - 0.5| of its exported sub-policies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from analysis.runs import read_epoch_metrics
from analysis.statistics import mean_pairwise_overlap
from dada.policy import Policy

MOVEMENT_COLUMNS = (
    "search",
    "seed",
    "epochs",
    "entropy",
    "entropy_uniform",
    "weight_min_x_uniform",
    "weight_max_x_uniform",
    "beta_max_abs",
    "beta_mean_abs",
    "m_max_abs",
    "m_mean_abs",
)


def _group(last: pd.Series, prefix: str) -> np.ndarray:
    return np.array([last[key] for key in sorted(last.index) if key.startswith(prefix)], dtype=float)


def search_movement(run_dir: str | Path) -> dict[str, float]:
    """softmax(α), β and m of a search's last logged epoch, as distances from the start (see the module)."""
    records = read_epoch_metrics(run_dir)
    last = records.sort_values("epoch").iloc[-1]
    weights = _group(last, "policy/weight/")
    beta, magnitude = _group(last, "policy/probability/") - 0.5, _group(last, "policy/magnitude/") - 0.5
    count = len(weights)
    return {
        "epochs": int(last["epoch"]),
        "entropy": float(-(weights * np.log(weights)).sum()),
        "entropy_uniform": math.log(count),
        "weight_min_x_uniform": float(weights.min() * count),
        "weight_max_x_uniform": float(weights.max() * count),
        "beta_max_abs": float(np.abs(beta).max()),
        "beta_mean_abs": float(np.abs(beta).mean()),
        "m_max_abs": float(np.abs(magnitude).max()),
        "m_mean_abs": float(np.abs(magnitude).mean()),
    }


def movement_table(searches: pd.DataFrame) -> pd.DataFrame:
    """One line per search run of ``searches`` (the runs table's lines, ``variant`` naming the search)."""
    records = [
        {"search": line.variant, "seed": line.seed, **search_movement(line.run_dir)}
        for line in searches.sort_values(["variant", "seed"]).itertuples()
    ]
    return pd.DataFrame.from_records(records, columns=list(MOVEMENT_COLUMNS))


def released_movement(name: str) -> dict[str, float]:
    """|p - 0.5| and |m - 0.5| over the op slots of a shipped (or saved) policy's sub-policies."""
    operations = [op for sub in Policy.load(name).sub_policies for op in sub.operations]
    beta = np.abs(np.array([op.probability for op in operations]) - 0.5)
    magnitude = np.abs(np.array([op.level for op in operations]) - 0.5)
    return {
        "beta_max_abs": float(beta.max()),
        "beta_mean_abs": float(beta.mean()),
        "m_max_abs": float(magnitude.max()),
        "m_mean_abs": float(magnitude.mean()),
    }


def overlap_between_seeds(searches: pd.DataFrame, seeds: Iterable[int]) -> dict[str, tuple[float, int, float]]:
    """Per search variant: the mean top-k overlap over pairs of ``seeds``, the pair count, and the chance level
    k / K (k exported of K sub-policies, read from the first run's policy and metrics)."""
    found = {}
    for variant, lines in searches[searches["seed"].isin(list(seeds))].groupby("variant"):
        overlap, pairs = mean_pairwise_overlap(
            {f"seed{seed}": others for seed, others in zip(lines["seed"], lines["top_overlap"])}
        )
        first = lines.iloc[0]["run_dir"]
        k = len(Policy.load(Path(first) / "policy.json").sub_policies)
        count = sum(key.startswith("policy/weight/") for key in read_epoch_metrics(first).columns)
        found[variant] = (overlap, pairs, k / count)
    return found
