"""The search-cost report: the paper's GPU-hours per data set (Table 1a) beside our measured device-hours.

No Titan-XP-equivalent conversion is made: we have no measured factor between our device and the
paper's Titan XP, so our hours are reported as measured, with the device named.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from analysis.paper import citation
from analysis.style import describe_devices
from analysis.tables import cell_runs, format_ours, markdown_table
from reproduce.tables import SEARCH_COST, TABLE1_ROWS, table1

PAPER_METHODS = ("AA", "PBA", "Fast AA", "OHL AA", "DADA")


def _paper_hours(paper: pd.DataFrame, row: str | None) -> list[str]:
    if row is None:
        return ["not in the paper"] * len(PAPER_METHODS)
    cells = paper[(paper["table"] == "table1a") & (paper["row"] == row)].set_index("column")
    out = []
    for method in PAPER_METHODS:
        value, estimated = cells.loc[method, "value"], cells.loc[method, "estimated"]
        out.append("-" if math.isnan(value) else f"{value:g}{'*' if estimated else ''}")
    return out


def cost_report(table1_cells: pd.DataFrame, runs: pd.DataFrame, paper: pd.DataFrame, scale: str,
                seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """One line per Table 1 data set: the paper's GPU-hours per method beside ours (RELAX and Gumbel searches).

    ``table1_cells`` is Table 1's cell table (``build_table``); ours names the devices the hours were measured on.
    """
    records = []
    for row, paper_row, *_ in TABLE1_ROWS:
        record = {"data set": row}
        record.update(zip([f"paper {method} (GPU-hours)" for method in PAPER_METHODS], _paper_hours(paper, paper_row)))
        for cell in table1().cells:
            if cell.row == row and cell.metric == SEARCH_COST:
                line = table1_cells[(table1_cells["row"] == row) & (table1_cells["column"] == cell.column)].iloc[0]
                devices = describe_devices(cell_runs(runs, cell, scale, seeds))
                record[f"ours, {cell.column}"] = format_ours(line) + (f" on {devices}" if line["n"] else "")
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
