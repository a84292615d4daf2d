"""The paper's figures with our runs: Fig. 1 and 3b (test error vs search cost), Fig. 3a (Gumbel vs RELAX).

Each takes the cell table of its layout (``analysis.tables.build_table``), so a figure shows exactly the
numbers its table would, and the paper's points from ``paper_results.yaml``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from analysis.paper import citation
from analysis.style import OURS_MARKER, PAPER_MARKER, STYLE, color

HOURS, ERROR = "search GPU-hours", "test error (%)"


class Pair(NamedTuple):
    """One kind of our point: the cost column and the error column of a row, drawn with a colour and marker."""

    cost: str
    error: str
    label: str
    method: str  # picks the colour: "relax", "gumbel", ...
    marker: str = OURS_MARKER


class Level(NamedTuple):
    """Our error of a released policy whose search we do not run: a horizontal line, no cost."""

    error: str
    label: str
    method: str


def _short(row: str) -> str:
    return row.split(" (")[0]


def _paper_points(axis: plt.Axes, paper: pd.DataFrame, section: str) -> None:
    """The paper's (hours, error) points; a point whose hours the text does not give becomes a dashed line."""
    points = paper[paper["table"] == section].pivot(index="row", columns="column", values="value")
    estimated = set(paper.loc[(paper["table"] == section) & paper["estimated"], "row"])
    for method, point in points.iterrows():
        if math.isnan(point[HOURS]):
            axis.axhline(
                point[ERROR],
                color=color(method),
                ls="--",
                lw=1,
                label=f"{method}, paper: {point[ERROR]:g} % (search time not stated in the text)",
            )
            continue
        label = f"{method} (paper{', hours estimated' if method in estimated else ''})"
        axis.scatter(
            point[HOURS],
            point[ERROR],
            s=60,
            marker=PAPER_MARKER,
            color=color(method),
            label=label,
            edgecolor="black",
            zorder=3,
        )
        axis.annotate(method, (point[HOURS], point[ERROR]), textcoords="offset points", xytext=(6, 4), fontsize=8)


def _cell(cells: pd.DataFrame, row: str, column: str) -> pd.Series:
    return cells[(cells["row"] == row) & (cells["column"] == column)].iloc[0]


def _spread(line: pd.Series) -> float:
    return 0.0 if math.isnan(line["ours_std"]) else line["ours_std"]


def _our_points(axis: plt.Axes, cells: pd.DataFrame, rows: Sequence[str], pairs: Sequence[Pair]) -> list[str]:
    """Plot (cost, error) with ± std bars per row and pair; return a note for each point that has no runs."""
    missing = []
    for row in rows:
        for pair in pairs:
            cost, error = _cell(cells, row, pair.cost), _cell(cells, row, pair.error)
            if not (cost["n"] and error["n"]):
                missing.append(f"{_short(row)}, {pair.label}: {error['note'] or cost['note']}")
                continue
            axis.errorbar(
                cost["ours_mean"],
                error["ours_mean"],
                xerr=_spread(cost),
                yerr=_spread(error),
                fmt=pair.marker,
                ms=12,
                color=color(pair.method),
                ecolor="black",
                capsize=3,
                zorder=4,
                label=f"ours: {_short(row)}, {pair.label} (n={int(error['n'])})",
            )
    return missing


def _our_levels(axis: plt.Axes, cells: pd.DataFrame, rows: Sequence[str], levels: Sequence[Level]) -> list[str]:
    """A dotted line at our mean error per row and level; return a note for each level that has no runs."""
    missing = []
    for row in rows:
        for level in levels:
            line = _cell(cells, row, level.error)
            if not line["n"]:
                missing.append(f"{_short(row)}, {level.label}: {line['note']}")
                continue
            axis.axhline(
                line["ours_mean"],
                color=color(level.method),
                ls=":",
                lw=1.5,
                label=f"ours: {_short(row)}, {level.label}: {line['ours_mean']:.2f} % "
                f"(n={int(line['n'])}, search not run)",
            )
    return missing


def _notes_below(axis: plt.Axes, lines: Sequence[str], heading: str = "not shown:") -> None:
    """Small grey text under the axes, by default what is not drawn and why."""
    if lines:
        axis.text(
            0.0, -0.16, "\n".join([heading, *lines]), transform=axis.transAxes, fontsize=7, va="top", color="dimgray"
        )


def _finish_axis(axis: plt.Axes) -> None:
    axis.set_xscale("log")
    axis.margins(x=0.25, y=0.25)
    axis.set_xlabel("policy search cost (device-hours, log scale; paper: GPU-hours)")
    axis.set_ylabel("test error (%)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=7, loc="best", markerscale=0.6)


def cost_error_figure(
    cells: pd.DataFrame,
    paper: pd.DataFrame,
    section: str,
    paper_rows: Sequence[str],
    pairs: Sequence[Pair],
    title: str,
    levels: Sequence[Level] = (),
) -> plt.Figure:
    """Left: the paper's points and ours on the paper's data set. Right: ours on every data set of the layout."""
    all_rows = list(dict.fromkeys(cells["row"]))
    with plt.rc_context(STYLE):
        figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5))
        _paper_points(left, paper, section)
        for axis, rows in ((left, paper_rows), (right, all_rows)):
            _notes_below(axis, _our_points(axis, cells, rows, pairs) + _our_levels(axis, cells, rows, levels))
        left.set_title(f"the paper's setting ({', '.join(paper_rows)}): paper and ours", fontsize=10)
        right.set_title("ours on every data set run (our device-hours)", fontsize=10)
        for axis in (left, right):
            _finish_axis(axis)
        figure.suptitle(f"{title}\npaper: {citation(paper, section)}", fontsize=10)
        figure.tight_layout()
    return figure


def fig1(cells: pd.DataFrame, paper: pd.DataFrame, caption: str) -> plt.Figure:
    """Fig. 1: test error vs search cost, AA / PBA / Fast AA / OHL AA / DADA (CIFAR-10, WRN-28-10) and ours."""
    pairs = [
        Pair("search cost, RELAX", "test error, DADA (RELAX)", "DADA, RELAX", "relax"),
        Pair("search cost, Gumbel", "test error, DADA (Gumbel)", "DADA, Gumbel", "gumbel", "P"),
    ]
    levels = [Level("test error, Fast AA", "Fast AA's released policy", "Fast AA")]
    return cost_error_figure(
        cells, paper, "fig1", ["CIFAR-10"], pairs, f"Fig. 1: test error vs policy search cost ({caption})", levels
    )


def fig3b(cells: pd.DataFrame, paper: pd.DataFrame, caption: str) -> plt.Figure:
    """Fig. 3b: speed/accuracy trade-off on CIFAR-10 with WRN-40-2, DADA searched on reduced and full data."""
    pairs = [
        Pair("search cost, reduced", "Reduced", "DADA, reduced-data search", "relax"),
        Pair("search cost, full", "Full", "DADA, full-data search", "relax", "D"),
    ]
    return cost_error_figure(
        cells,
        paper,
        "fig3b",
        ["CIFAR-10 / Wide-ResNet-40-2"],
        pairs,
        f"Fig. 3b: speed/accuracy trade-off, WRN-40-2 ({caption})",
    )


def fig3a(
    cells: pd.DataFrame, seed_values: dict[tuple[str, str], Sequence[float]], paper: pd.DataFrame, caption: str
) -> plt.Figure:
    """Fig. 3a: test error of the policies searched with Gumbel-Softmax and with RELAX, mean ± std and each seed.

    Data sets with no run of either estimator get no group on the axis; every cell not drawn is named, with its
    reason, in the notes below."""
    estimators = (("test error, DADA (Gumbel)", "gumbel"), ("test error, DADA (RELAX)", "relax"))
    rows = [row for row in dict.fromkeys(cells["row"]) if any(_cell(cells, row, c)["n"] for c, _ in estimators)]
    not_run = [
        f"{row}, {estimator}: {_cell(cells, row, column)['note']}"
        for row in dict.fromkeys(cells["row"])
        for column, estimator in estimators
        if not _cell(cells, row, column)["n"]
    ]
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(9, 5))
        for offset, (column, estimator) in enumerate(estimators):
            for position, row in enumerate(rows):
                line, x = _cell(cells, row, column), position + (offset - 0.5) * 0.38
                if not line["n"]:
                    continue
                axis.bar(
                    x,
                    line["ours_mean"],
                    width=0.36,
                    yerr=_spread(line),
                    capsize=4,
                    color=color(estimator),
                    label=f"{estimator} (ours)",
                )
                values = seed_values.get((row, column), [])
                axis.scatter([x] * len(values), values, color="black", s=12, zorder=3)
        axis.set_xticks(range(len(rows)), [row.replace(" (", "\n(") for row in rows], fontsize=8)
        axis.set_xlim(-0.6, len(rows) - 0.4)
        axis.set_ylabel("test error (%)")
        unique = dict(zip(*reversed(axis.get_legend_handles_labels())))  # one legend entry per estimator
        if unique:
            axis.legend(unique.values(), unique.keys(), fontsize=8, loc="upper center")
        notes = [citation(paper, "fig3a"), *(["not drawn:", *not_run] if not_run else [])]
        _notes_below(axis, notes, heading="paper: not stated in the text")
        axis.set_title(
            f"Fig. 3a: Gumbel-Softmax vs RELAX policy search, bars mean ± std, dots seeds\n({caption})", fontsize=10
        )
        figure.tight_layout()
    return figure
