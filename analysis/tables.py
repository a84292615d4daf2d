"""A paper table beside ours: paper value, ours (mean ± std over seeds), difference, for every cell of a layout.

    frame = build_table(get_layout("table1"), read_runs("runs"), load_paper_results(), "smoke", Path("data"))
    write_table(frame, "table1", "smoke", Path("results"))   # results/table1_smoke.md and .csv
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from analysis.paper import citation, lookup
from analysis.runs import finished
from reproduce.plan import missing_data
from reproduce.tables import SEARCH_COST, Cell, EvalJob, Layout

CELL_COLUMNS = ("row", "column", "metric", "paper", "paper_table", "ours_mean", "ours_std", "n", "difference",
                "unit", "seeds", "note")
PAPER_UNITS = {SEARCH_COST: "GPU-hours"}  # every other metric is an error in %


def cell_runs(runs: pd.DataFrame, cell: Cell, scale: str, seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """The finished runs of a cell's job at ``scale`` (only ``seeds`` when given)."""
    job = cell.job
    selected = finished(runs)
    selected = selected[(selected["scale"] == scale) & (selected["experiment"] == job.experiment)
                        & (selected["variant"] == job.variant)]
    return selected[selected["seed"].isin(seeds)] if seeds is not None else selected


def why_not_run(cell: Cell, runs: pd.DataFrame, scale: str, data_root: Path) -> str:
    """The note of a cell without finished runs: no data on disk, a failed run, or not run yet."""
    if cell.job is None:
        return cell.note
    needed = [cell.job.dataset]
    if isinstance(cell.job, EvalJob) and cell.job.search is not None:
        needed.insert(0, cell.job.search.dataset)
    for dataset in needed:
        path = missing_data(dataset, data_root)
        if path is not None:
            return f"not run: no data at {path}"
    tried = runs[(runs["scale"] == scale) & (runs["experiment"] == cell.job.experiment)
                 & (runs["variant"] == cell.job.variant)]
    if not tried.empty:
        return f"failed: {', '.join(sorted(set(tried['status'])))} (see {tried['run_dir'].iloc[0]})"
    return "not run yet"


def _paper_value(paper: pd.DataFrame, cell: Cell) -> tuple[float, str]:
    if cell.paper is None:
        return math.nan, ""
    entry = lookup(paper, cell.paper.table, cell.paper.row, cell.paper.column)
    return entry["value"], cell.paper.table


def _ours(selected: pd.DataFrame, metric: str) -> tuple[float, float, int, str]:
    values = selected[metric].dropna()
    std = values.std(ddof=1) if len(values) > 1 else math.nan
    units = sorted(set(selected["unit"].dropna())) if metric == SEARCH_COST else ["%"]
    return (values.mean() if len(values) else math.nan), std, len(values), "/".join(units)


def _difference(ours: float, paper_value: float, unit: str, metric: str) -> float:
    """ours - paper, only where both exist in the same unit (CPU-hours and GPU-hours do not subtract)."""
    if math.isnan(ours) or math.isnan(paper_value) or unit != PAPER_UNITS.get(metric, "%"):
        return math.nan
    return ours - paper_value


def build_table(layout: Layout, runs: pd.DataFrame, paper: pd.DataFrame, scale: str, data_root: Path,
                seeds: Optional[Sequence[int]] = None) -> pd.DataFrame:
    """One line per cell of ``layout``: the paper's value, ours over the seeds, their difference and a note."""
    records = []
    for cell in layout.cells:
        paper_value, paper_table = _paper_value(paper, cell)
        selected = cell_runs(runs, cell, scale, seeds) if cell.job is not None else runs.iloc[0:0]
        mean, std, count, unit = _ours(selected, cell.metric)
        note = "" if count else why_not_run(cell, runs, scale, data_root)
        if cell.paper is not None and math.isnan(paper_value):
            note = "; ".join(filter(None, [note, "paper: - (not reported)"]))
        records.append((cell.row, cell.column, cell.metric, paper_value, paper_table, mean, std, count,
                        _difference(mean, paper_value, unit, cell.metric), unit,
                        ",".join(map(str, sorted(selected["seed"]))), note))
    return pd.DataFrame.from_records(records, columns=list(CELL_COLUMNS))


# -- writing ----------------------------------------------------------------------------------------------------

def _number(value: float, metric: str) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.3g}" if metric == SEARCH_COST else f"{value:.2f}"


def _mean_std(mean: float, std: float, count: int, digits: str) -> str:
    return f"{mean:{digits}}" + (f" ± {std:{digits}}" if count > 1 else "")


def format_ours(line: pd.Series) -> str:
    """``12.34 ± 0.56 (n=3)``, hours also in seconds; one seed has no spread, and no runs show their note."""
    if line["n"] == 0:
        return line["note"]
    if line["metric"] != SEARCH_COST:
        return f"{_mean_std(line['ours_mean'], line['ours_std'], line['n'], '.2f')} (n={line['n']})"
    hours = _mean_std(line["ours_mean"], line["ours_std"], line["n"], ".3g")
    seconds = _mean_std(line["ours_mean"] * 3600, line["ours_std"] * 3600, line["n"], ".3g")
    return f"{hours} {line['unit']} = {seconds} s (n={line['n']})"


def _format_difference(line: pd.Series) -> str:
    if not math.isnan(line["difference"]):
        return f"{line['difference']:+.3g}" if line["metric"] == SEARCH_COST else f"{line['difference']:+.2f}"
    if line["n"] and not math.isnan(line["paper"]) and line["metric"] == SEARCH_COST:
        return f"— ({line['unit']} vs GPU-hours)"
    return "—"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""
    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def to_markdown(frame: pd.DataFrame) -> str:
    """The table with paper, ours and difference side by side; a cell without runs says why in the ours column."""
    rows = []
    for _, line in frame.iterrows():
        paper = _number(line["paper"], line["metric"])
        if line["paper_table"]:
            paper += f" ({line['paper_table']})"
        rows.append((line["row"], line["column"], paper, format_ours(line), _format_difference(line)))
    return markdown_table(("Row", "Column", "Paper", "Ours (mean ± std, n seeds)", "Difference"), rows)


def citations(frame: pd.DataFrame, paper: pd.DataFrame) -> list[str]:
    """The citation of every paper table the frame quotes."""
    return [f"{table}: {citation(paper, table)}" for table in sorted(set(frame["paper_table"]) - {""})]


def output_name(name: str, scale: str) -> str:
    """``table1_smoke`` at a reduced scale, ``table1`` at the paper's."""
    return name if scale == "paper" else f"{name}_{scale}"
