"""The search-cost report: the paper's GPU-hours per data set (Table 1a) beside our measured device-hours.

No Titan-XP-equivalent conversion is made: we have no measured factor between our device and the
paper's Titan XP, so our hours are reported as measured, with the device named.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import pandas as pd

from analysis.paper import citation
from analysis.tables import cell_runs, markdown_table
from reproduce.tables import SEARCH_COST, TABLE1_ROWS, table1

PAPER_METHODS = ("AA", "PBA", "Fast AA", "OHL AA", "DADA")


def _measured(selected: pd.DataFrame) -> str:
    """``0.0123 ± 0.0004 CPU-hours on <device> (n=2)`` over a cell's finished search runs."""
    if selected.empty:
        return "—"
    hours = selected[SEARCH_COST]
    spread = f" ± {hours.std(ddof=1):.3g}" if len(hours) > 1 else ""
    devices = ", ".join(sorted(set(selected["device_name"].dropna())))
    return f"{hours.mean():.3g}{spread} {selected['unit'].iloc[0]} on {devices} (n={len(hours)})"


def _paper_hours(paper: pd.DataFrame, row: Optional[str]) -> list[str]:
    if row is None:
        return ["not in the paper"] * len(PAPER_METHODS)
    cells = paper[(paper["table"] == "table1a") & (paper["row"] == row)].set_index("column")
    out = []
    for method in PAPER_METHODS:
        value, estimated = cells.loc[method, "value"], cells.loc[method, "estimated"]
        out.append("-" if math.isnan(value) else f"{value:g}{'*' if estimated else ''}")
    return out


def cost_report(runs: pd.DataFrame, paper: pd.DataFrame, scale: str,
                seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """One line per Table 1 data set: the paper's GPU-hours per method, and ours for RELAX and Gumbel."""
    cost_cells = [cell for cell in table1().cells if cell.metric == SEARCH_COST]
    records = []
    for row, paper_row, *_ in TABLE1_ROWS:
        record = {"data set": row}
        record.update(zip([f"paper {method} (GPU-hours)" for method in PAPER_METHODS], _paper_hours(paper, paper_row)))
        for cell in (cell for cell in cost_cells if cell.row == row):
            record[f"ours, {cell.column}"] = _measured(cell_runs(runs, cell, scale, seeds))
        records.append(record)
    return pd.DataFrame.from_records(records)


def cost_markdown(report: pd.DataFrame, paper: pd.DataFrame, scale: str) -> str:
    lines = [
        f"## Search cost: the paper's GPU-hours beside ours ({scale} scale)",
        "",
        markdown_table(list(report.columns), report.astype(str).values.tolist()),
        "",
        f"Paper: {citation(paper, 'table1a')}; * estimated by the paper.",
        "Ours: device-hours of the search loop as measured by dada.tracking.DeviceClock (data loading excluded), "
        "on the device named; CPU-hours count one process per hour, not per thread. "
        "No Titan-XP-equivalent is given: we have no measured conversion factor to the paper's GPU.",
    ]
    if scale != "paper":
        lines.append(f"At {scale} scale the search is shortened (conf/scale/{scale}.yaml), so these hours are not "
                     "comparable to the paper's.")
    return "\n".join(lines)
