"""The search-cost report: the paper's GPU-hours per data set (Table 1a) beside our measured device-hours, and both on
one scale, Titan-XP-equivalent hours.

Titan-XP-equivalent hours divide FLOPs by the Titan XP's fp32 peak (``device_throughput`` in paper_results.yaml,
from NVIDIA's specifications). Ours: the FLOPs the search counted (``SearchCost.flops``), so the hours a Titan XP
would need at 100 % of its peak, a lower bound. The paper's: its device-hours times that device's fp32 peak, so the
same conversion at equal utilisation on every device (the papers give no FLOPs).
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import pandas as pd

from analysis.paper import citation, lookup
from analysis.style import describe_devices
from analysis.tables import cell_runs, format_ours, markdown_table
from dada.layout import RunFolder
from dada.schemas import SummaryError, read_summary
from reproduce.tables import SEARCH_COST, TABLE1_ROWS, table1

PAPER_METHODS = ("AA", "PBA", "Fast AA", "OHL AA", "DADA")
REFERENCE_DEVICE = "Titan XP"
# Table 1(a)'s caption: Titan XP for PBA and DADA, AA on Tesla P100, Fast AA on Tesla V100; OHL AA's is not named.
PAPER_DEVICES = {"AA": "Tesla P100", "PBA": "Titan XP", "Fast AA": "Tesla V100", "OHL AA": None, "DADA": "Titan XP"}
NOT_MEASURED = "not measured"
ONE_SCALE = "Titan-XP-eq. hours"


def peak_flops(paper: pd.DataFrame, device: str) -> float:
    """A device's fp32 peak in FLOP/s, from ``device_throughput`` in paper_results.yaml."""
    return lookup(paper, "device_throughput", device, "fp32 peak")["value"] * 1e12


def titan_xp_hours(flops: float, paper: pd.DataFrame) -> float:
    """Hours a Titan XP needs for ``flops`` at its fp32 peak."""
    return flops / peak_flops(paper, REFERENCE_DEVICE) / 3600


def _number(value: float) -> str:
    """3 significant digits; whole numbers from 100 up (4,380, not 4.38e+03)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _paper_cells(paper: pd.DataFrame, row: str | None) -> pd.DataFrame | None:
    if row is None:
        return None
    return paper[(paper["table"] == "table1a") & (paper["row"] == row)].set_index("column")


def _paper_hours(cells: pd.DataFrame | None) -> list[str]:
    if cells is None:
        return ["not in the paper"] * len(PAPER_METHODS)
    out = []
    for method in PAPER_METHODS:
        value, estimated = cells.loc[method, "value"], cells.loc[method, "estimated"]
        out.append("-" if math.isnan(value) else f"{value:g}{'*' if estimated else ''}")
    return out


def _paper_one_scale(cells: pd.DataFrame | None, paper: pd.DataFrame) -> list[str]:
    """Each method's device-hours converted to Titan-XP-equivalent hours by the ratio of fp32 peaks."""
    if cells is None:
        return ["not in the paper"] * len(PAPER_METHODS)
    out = []
    for method in PAPER_METHODS:
        value, device = cells.loc[method, "value"], PAPER_DEVICES[method]
        if math.isnan(value):
            out.append("-")
        elif device is None:
            out.append("device not named")
        else:
            out.append(
                f"{_number(titan_xp_hours(value * 3600 * peak_flops(paper, device), paper))}"
                f"{'*' if cells.loc[method, 'estimated'] else ''}"
            )
    return out


def _search_flops(run_dirs: Sequence[str]) -> list[tuple[float, float | None, float | None]]:
    """(flops, network_flops, policy_flops) of each run whose summary counted them."""
    counted = []
    for run_dir in run_dirs:
        try:
            cost = read_summary(RunFolder(run_dir).summary).cost
        except (OSError, SummaryError):  # e.g. an MLflow run whose folder is elsewhere
            continue
        if cost is not None and getattr(cost, "flops", None) is not None:
            counted.append((cost.flops, cost.network_flops, cost.policy_flops))
    return counted


def _ours_flops(runs: pd.DataFrame, paper: pd.DataFrame) -> tuple[str, str, str]:
    """PFLOPs, Titan-XP-equivalent hours and the policy updates' share of the FLOPs, averaged over ``runs``."""
    if runs.empty:
        return "-", "-", "-"
    counted = _search_flops(list(runs["run_dir"]))
    if not counted:
        return NOT_MEASURED, NOT_MEASURED, NOT_MEASURED
    seeds = f" ({len(counted)} of {len(runs)} runs counted)" if len(counted) != len(runs) else ""
    flops = statistics.fmean(total for total, _, _ in counted)
    shares = [
        policy / (policy + network)
        for _, network, policy in counted
        if network is not None and policy is not None and policy + network > 0
    ]
    share = f"{100 * statistics.fmean(shares):.0f} %" if shares else NOT_MEASURED
    return f"{_number(flops / 1e15)}{seeds}", f"{_number(titan_xp_hours(flops, paper))}{seeds}", share


def cost_report(
    table1_cells: pd.DataFrame, runs: pd.DataFrame, paper: pd.DataFrame, scale: str, seeds: Sequence[int] | None = None
) -> pd.DataFrame:
    """One line per Table 1 data set: the paper's GPU-hours per method beside ours (RELAX and Gumbel searches), then
    both on one scale: the paper's hours and our FLOPs in Titan-XP-equivalent hours, with our PFLOPs and the share
    of our search's FLOPs spent on policy updates.

    ``table1_cells`` is Table 1's cell table (``build_table``); ours names the devices the hours were measured on.
    Runs whose summaries hold no FLOPs (written before they were counted) say "not measured".
    """
    records = []
    for row, paper_row, *_ in TABLE1_ROWS:
        cells = _paper_cells(paper, paper_row)
        record = {"data set": row}
        record.update(zip([f"paper {method} (GPU-hours)" for method in PAPER_METHODS], _paper_hours(cells)))
        flops = {}
        for cell in table1().cells:
            if cell.row == row and cell.metric == SEARCH_COST:
                line = table1_cells[(table1_cells["row"] == row) & (table1_cells["column"] == cell.column)].iloc[0]
                selected = cell_runs(runs, cell, scale, seeds)
                record[f"ours, {cell.column}"] = format_ours(line) + (
                    f" on {describe_devices(selected)}" if line["n"] else ""
                )
                pflops, hours, share = _ours_flops(selected, paper)
                flops.update(
                    {
                        f"ours, {cell.column}: PFLOPs": pflops,
                        f"ours, {cell.column}: {ONE_SCALE}": hours,
                        f"ours, {cell.column}: policy share of FLOPs": share,
                    }
                )
        record.update(
            zip([f"paper {method} ({ONE_SCALE})" for method in PAPER_METHODS], _paper_one_scale(cells, paper))
        )
        record.update(flops)
        records.append(record)
    return pd.DataFrame.from_records(records)


def cost_markdown(report: pd.DataFrame, paper: pd.DataFrame, scale: str) -> str:
    def table(columns: list[str]) -> str:
        return markdown_table(["data set", *columns], report[["data set", *columns]].astype(str).values.tolist())

    hours = [
        column
        for column in report.columns
        if column.endswith("(GPU-hours)") or (column.startswith("ours, ") and ": " not in column)
    ]
    paper_scale = [column for column in report.columns if column.startswith("paper ") and ONE_SCALE in column]
    ours_scale = [column for column in report.columns if column.startswith("ours, ") and ": " in column]
    devices = ", ".join(f"{method} on {device or 'a GPU it does not name'}" for method, device in PAPER_DEVICES.items())
    peaks = ", ".join(
        f"{device} {peak_flops(paper, device) / 1e12:g}"
        for device in dict.fromkeys(d for d in PAPER_DEVICES.values() if d)
    )
    lines = [
        f"## Search cost: the paper's GPU-hours beside ours ({scale} scale)",
        "",
        table(hours),
        "",
        f"Paper: {citation(paper, 'table1a')}; * estimated by the paper.",
        "Ours: device-hours of the search loop as measured by dada.tracking.DeviceClock (data loading excluded), "
        "on the device named; CPU-hours count one process per hour, not per thread.",
        "",
        f"## Search cost on one scale: {ONE_SCALE} ({scale} scale)",
        "",
        table(paper_scale),
        "",
        table(ours_scale),
        "",
        f"Devices (Table 1(a)'s caption): {devices}. fp32 peaks in TFLOP/s: {peaks} "
        f"({citation(paper, 'device_throughput')}).",
        f"Paper: its device-hours x the device's fp32 peak / the {REFERENCE_DEVICE}'s, i.e. at equal utilisation on "
        "every device (the papers give no FLOPs).",
        f"Ours: the FLOPs the search counted (torch.utils.flop_counter: one step counted, times the steps, plus the "
        f"per-epoch validation passes; matrix products and convolutions only) / the {REFERENCE_DEVICE}'s fp32 peak: "
        "the hours at 100 % of peak, a lower bound. Policy share: the FLOPs of each step beyond the training forward "
        'and backward (unrolled validation pass, finite difference, estimator) over both. "not measured": runs '
        "written before FLOPs were counted.",
    ]
    measured_on = {cell.split(" on ", 1)[1] for column in hours for cell in report[column] if " on " in str(cell)}
    if len(measured_on) > 1:
        lines.append(
            f"Ours were measured on different devices ({'; '.join(sorted(measured_on))}): compare hours only between "
            "cells on the same device."
        )
    if scale != "paper":
        lines.append(
            f"At {scale} scale the search is shortened (conf/scale/{scale}.yaml), so these hours are not "
            "comparable to the paper's."
        )
    return "\n".join(lines)
