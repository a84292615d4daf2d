"""One look for every figure: a colour per method, the paper's vs our markers, captions naming scale and device."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd


def use_file_backend() -> None:
    """Draw to files only (Agg): for the command-line entry points, never called on import."""
    matplotlib.use("Agg")


# The one colour map: Gumbel orange and RELAX green as in analysis/estimators.py.
METHOD_COLORS = {
    "AA": "tab:blue",
    "PBA": "tab:purple",
    "Fast AA": "tab:brown",
    "OHL AA": "tab:pink",
    "DADA": "tab:green",
    "relax": "tab:green",
    "relax-paper": "yellowgreen",  # RELAX under search.variant=paper
    "gumbel": "tab:orange",
    "none": "tab:gray",
    "random": "tab:olive",
    "cutout": "tab:cyan",
    "autoaugment": "tab:blue",
    "randaugment": "tab:red",
    "trivialaugment": "black",
    "fastaa": "tab:brown",
}
PAPER_MARKER, OURS_MARKER = "o", "*"
NO_RUNS = "no finished runs"
FIGURE_FORMATS = ("png", "pdf")

STYLE = {
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.dpi": 130,
    "axes.spines.top": False,
    "axes.spines.right": False,
}  # use as `with plt.rc_context(STYLE):`


def color(method: str) -> str:
    """The colour of a paper method ("Fast AA"), an estimator ("relax") or a policy column ("none")."""
    if method.startswith("DADA"):
        return METHOD_COLORS["DADA"]
    key = method.split("-")[-1] if method.startswith("dada-") else method
    if key not in METHOD_COLORS:
        raise ValueError(f"no colour for {method!r}; known: {', '.join(METHOD_COLORS)}")
    return METHOD_COLORS[key]


def describe_devices(runs: pd.DataFrame) -> str:
    """``Intel Xeon (CPU-hours)`` for the devices that ran ``runs``; "no finished runs" when empty."""
    pairs = sorted({(row.device_name, row.unit) for row in runs.itertuples() if isinstance(row.device_name, str)})
    if not pairs:
        return NO_RUNS
    return "; ".join(f"{name} ({unit or 'unit unknown'})" for name, unit in pairs)


def scale_caption(scale: str, runs: pd.DataFrame) -> str:
    """What every title carries: the scale (reduced scales say so), and the networks and devices of ``runs``.

    The networks are named because a reduced scale swaps the paper's network for a small one
    (``conf/scale/smoke.yaml``), while rows keep the paper's names.
    """
    reduced = "" if scale == "paper" else ", REDUCED: not the paper's sizes"
    devices = describe_devices(runs)
    if devices == NO_RUNS:
        return f"{scale} scale{reduced}; ours: no finished runs"
    networks = ", ".join(sorted({model for model in runs["model"] if isinstance(model, str)})) or "unknown"
    return f"{scale} scale{reduced}; ours: {networks} on {devices}{mixed_devices_note(runs)}"


def mixed_devices_note(runs: pd.DataFrame) -> str:
    """A warning when ``runs`` were measured on more than one device (their hours are then not comparable)."""
    count = len({name for name in runs["device_name"] if isinstance(name, str)})
    return f" (MIXED: {count} devices; compare costs only between runs on the same device)" if count > 1 else ""


def save_figure(figure: plt.Figure, out_dir: Path, name: str, formats: Iterable[str] = FIGURE_FORMATS) -> list[Path]:
    """Write ``<out_dir>/<name>.png`` and ``.pdf`` and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{extension}" for extension in formats]
    for path in paths:  # no creation date in PDFs, so unchanged results give unchanged files
        figure.savefig(path, bbox_inches="tight", metadata={"CreationDate": None} if path.suffix == ".pdf" else None)
    plt.close(figure)
    return paths
