"""Claimed GPU-hours against the FLOP lower bound, log-log, with iso-utilisation lines."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.style import STYLE, color

ISO_UTILISATIONS = (0.01, 0.1, 1.0)
DATASET_MARKERS = {"CIFAR-10": "o", "CIFAR-100": "s", "SVHN": "^", "ImageNet": "D"}
# Label offsets in points, by data set, then by claim where labels would collide; the default is (5, 3).
LABEL_OFFSETS = {
    "CIFAR-10": (5, -10),
    ("Fast AA", "CIFAR-10"): (5, 3),
    ("Fast AA", "SVHN"): (-5, 5),
    ("PBA", "SVHN"): (5, -10),
}


def audit_figure(rows: pd.DataFrame, thresholds: dict) -> plt.Figure:
    """x: F / P, the hours the claimed device needs at its fp32 peak; y: the claimed hours. u = x / y, so the
    iso-utilisation lines are the lines y = x / u."""
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(7.5, 7.5))
        low = min(rows["hours_at_peak"].min(), rows["claimed_gpu_hours"].min()) / 3
        high = max(rows["hours_at_peak"].max(), rows["claimed_gpu_hours"].max()) * 30
        span = np.array([low / 100, high * 100])
        axis.fill_between(span, span / thresholds["implausible_above"], span / 1e6, color="tab:red", alpha=0.07)
        axis.fill_between(span, span / thresholds["non_arithmetic_below"], span * 1e6, color="tab:gray", alpha=0.1)
        for utilisation in ISO_UTILISATIONS:
            axis.plot(span, span / utilisation, color="black", linewidth=0.8, linestyle=":")
            top = high / 4  # the labels sit near the top edge, on their lines
            axis.annotate(f"u = {utilisation:.0%}", (top * utilisation, top), fontsize=8, rotation=45, ha="right")
        for _, row in rows.iterrows():
            axis.scatter(
                row["hours_at_peak"],
                row["claimed_gpu_hours"],
                marker=DATASET_MARKERS.get(row["dataset"], "o"),
                color=color(row["method"]),
                edgecolor="black" if row["estimated_by_paper"] else "none",
                s=60,
                zorder=3,
            )
            label = f"{row['method']} {row['dataset']}" + ("*" if row["estimated_by_paper"] else "")
            offset = LABEL_OFFSETS.get((row["method"], row["dataset"]), LABEL_OFFSETS.get(row["dataset"], (5, 3)))
            axis.annotate(label, (row["hours_at_peak"], row["claimed_gpu_hours"]), fontsize=7, xytext=offset,
                          textcoords="offset points", ha="left" if offset[0] > 0 else "right")  # fmt: skip
        axis.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), aspect="equal")
        axis.set_xlabel("FLOP lower bound F / P: hours of the claimed device at its fp32 peak")
        axis.set_ylabel("claimed search GPU-hours (Table 1(a))")
        axis.set_title(
            "Table 1(a)'s search GPU-hours vs the FLOPs of the published protocols\n"
            f"grey: below {thresholds['non_arithmetic_below']:.0%} of peak (non-arithmetic time dominates); "
            f"red: above {thresholds['implausible_above']:.0%}",
            fontsize=9,
        )
        axis.text(
            0.99,
            0.01,
            "* OHL AA: DADA's estimate, not OHL's claim\nmarkers: o CIFAR-10, s CIFAR-100, ^ SVHN, D ImageNet",
            transform=axis.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )
    return figure
