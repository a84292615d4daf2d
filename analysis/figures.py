"""The paper's figures with our runs: Fig. 1 and 3b (test error vs search cost), Fig. 3a (Gumbel vs RELAX).

Each takes the cell table of its layout (``analysis.tables.build_table``), so a figure shows exactly the
numbers its table would, and the paper's points from ``paper_results.yaml``.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from analysis.paper import citation
from analysis.style import OURS_MARKER, PAPER_MARKER, STYLE, color

HOURS, ERROR = "search GPU-hours", "test error (%)"


def _paper_points(axis: plt.Axes, paper: pd.DataFrame, section: str) -> None:
    """The paper's (hours, error) points; a point whose hours the text does not give becomes a dashed line."""
    points = paper[paper["table"] == section].pivot(index="row", columns="column", values="value")
    estimated = set(paper.loc[(paper["table"] == section) & paper["estimated"], "row"])
    for method, point in points.iterrows():
        label = f"{method} (paper{', hours estimated' if method in estimated else ''})"
        if math.isnan(point[HOURS]):
            axis.axhline(point[ERROR], color=color(method), ls="--", lw=1,
                         label=f"{method} (paper: {point[ERROR]:g} %, search time not stated in the text)")
            continue
        axis.scatter(point[HOURS], point[ERROR], s=60, marker=PAPER_MARKER, color=color(method), label=label,
                     edgecolor="black", zorder=3)
        axis.annotate(method, (point[HOURS], point[ERROR]), textcoords="offset points", xytext=(6, 4), fontsize=8)


def _cell(cells: pd.DataFrame, row: str, column: str) -> pd.Series:
    return cells[(cells["row"] == row) & (cells["column"] == column)].iloc[0]


def _our_points(axis: plt.Axes, cells: pd.DataFrame, rows: Sequence[str],
                pairs: Sequence[tuple[str, str, str]]) -> list[str]:
    """Plot (cost, error) for each row and (cost column, error column, label); return notes for the missing."""
    missing = []
    for row in rows:
        for cost_column, error_column, label in pairs:
            cost, error = _cell(cells, row, cost_column), _cell(cells, row, error_column)
            if not (cost["n"] and error["n"]):
                note = error["note"] or cost["note"] or "not run yet"
                missing.append(f"{row}, {label}: {note}")
                continue
            axis.errorbar(cost["ours_mean"], error["ours_mean"], xerr=_spread(cost), yerr=_spread(error),
                          fmt=OURS_MARKER, ms=13, color=color(label), ecolor="black", capsize=3, zorder=4,
                          label=f"ours: {row}, {label} (n={int(error['n'])})")
            axis.annotate(f"{row.split(' (')[0]}, {label}", (cost["ours_mean"], error["ours_mean"]),
                          textcoords="offset points", xytext=(6, -10), fontsize=8)
    return missing


def _spread(line: pd.Series) -> float:
    return 0.0 if math.isnan(line["ours_std"]) else line["ours_std"]


def _note(axis: plt.Axes, lines: Sequence[str]) -> None:
    if lines:
        axis.text(0.01, 0.01, "not shown:\n" + "\n".join(lines), transform=axis.transAxes, fontsize=7,
                  va="bottom", color="dimgray", wrap=True)


def cost_error_figure(cells: pd.DataFrame, paper: pd.DataFrame, section: str, paper_rows: Sequence[str],
                      pairs: Sequence[tuple[str, str, str]], title: str) -> plt.Figure:
    """Left: the paper's points and ours on the paper's data set. Right: ours on every data set of the layout."""
    all_rows = list(dict.fromkeys(cells["row"]))
    with plt.rc_context(STYLE):
        figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
        _paper_points(left, paper, section)
        _note(left, _our_points(left, cells, paper_rows, pairs))
        _note(right, _our_points(right, cells, all_rows, pairs))
        left.set_title(f"the paper's setting ({', '.join(paper_rows)})", fontsize=10)
        right.set_title("ours, every data set (our device-hours)", fontsize=10)
        for axis in (left, right):
            axis.set_xscale("log")
            axis.set_xlabel("policy search cost (device-hours, log scale; paper: GPU-hours)")
            axis.set_ylabel("test error (%)")
            if axis.get_legend_handles_labels()[0]:
                axis.legend(fontsize=7, loc="upper right")
        figure.suptitle(f"{title}\npaper: {citation(paper, section)}", fontsize=10)
        figure.tight_layout()
    return figure


def fig1(cells: pd.DataFrame, paper: pd.DataFrame, caption: str) -> plt.Figure:
    """Fig. 1: test error vs search cost, AA / PBA / Fast AA / OHL AA / DADA (CIFAR-10, WRN-28-10) and ours."""
    pairs = [("search cost, RELAX", "test error, DADA (RELAX)", "relax")]
    return cost_error_figure(cells, paper, "fig1", ["CIFAR-10"], pairs,
                             f"Fig. 1: test error vs policy search cost ({caption})")


def fig3b(cells: pd.DataFrame, paper: pd.DataFrame, caption: str) -> plt.Figure:
    """Fig. 3b: speed/accuracy trade-off on CIFAR-10 with WRN-40-2, DADA searched on reduced and full data."""
    pairs = [("search cost, reduced", "Reduced", "DADA reduced"), ("search cost, full", "Full", "DADA full")]
    return cost_error_figure(cells, paper, "fig3b", ["CIFAR-10 / Wide-ResNet-40-2"], pairs,
                             f"Fig. 3b: speed/accuracy trade-off, WRN-40-2 ({caption})")


def fig3a(cells: pd.DataFrame, runs_by_cell: dict[tuple[str, str], Sequence[float]], paper: pd.DataFrame,
          caption: str) -> plt.Figure:
    """Fig. 3a: test error of the policies searched with Gumbel-Softmax and with RELAX, mean ± std and each seed."""
    rows = list(dict.fromkeys(cells["row"]))
    estimators = (("test error, DADA (Gumbel)", "gumbel"), ("test error, DADA (RELAX)", "relax"))
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(9, 5))
        missing = []
        for offset, (column, estimator) in enumerate(estimators):
            for position, row in enumerate(rows):
                line = _cell(cells, row, column)
                x = position + (offset - 0.5) * 0.38
                if not line["n"]:
                    missing.append(f"{row}, {estimator}: {line['note']}")
                    continue
                axis.bar(x, line["ours_mean"], width=0.36, yerr=_spread(line), capsize=4, color=color(estimator),
                         label=f"{estimator} (ours)")
                seeds = runs_by_cell.get((row, column), [])
                axis.scatter([x] * len(seeds), seeds, color="black", s=12, zorder=3)
        axis.set_xticks(range(len(rows)), [row.replace(" (", "\n(") for row in rows], fontsize=8)
        axis.set_ylabel("test error (%)")
        unique = dict(zip(*reversed(axis.get_legend_handles_labels())))  # one legend entry per estimator
        if unique:
            axis.legend(unique.values(), unique.keys(), fontsize=8)
        _note(axis, missing + [f"paper: not stated in the text ({citation(paper, 'fig3a')})"])
        axis.set_title(f"Fig. 3a: Gumbel-Softmax vs RELAX policy search, bars mean ± std, dots seeds\n({caption})",
                       fontsize=10)
        figure.tight_layout()
    return figure
