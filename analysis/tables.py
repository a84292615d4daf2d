"""A paper table beside ours: per cell the paper's value and ours (mean, sd, 95 % t CI over seeds), shaped as the paper.

    frame = build_table(get_layout("table1"), read_runs("runs"), load_paper_results(), "smoke", Path("data"))
    error_markdown(frame)    # methods as rows, data sets as columns: "26.30 ± 1.61 (paper 2.7)"
    paired_table(get_layout("table1"), read_runs("runs"), "smoke", TABLE1_REFERENCES)   # vs none and random

The cell table stays long (one line per cell) for the CSV; the markdown pivots it: the layout's columns
(methods) become rows and its rows (data sets) become columns.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from analysis.paper import citation, lookup
from analysis.runs import finished
from analysis.statistics import mean_pairwise_overlap, paired, summarize
from reproduce.plan import experiment_folder, missing_data
from reproduce.tables import SEARCH_COST, TEST_ERROR, Cell, DetectJob, Job, Layout, SearchJob, needed

CELL_COLUMNS = (
    "row",
    "column",
    "metric",
    "paper",
    "paper_table",
    "ours_mean",
    "ours_std",
    "n",
    "ci_half_width",
    "ci_low",
    "ci_high",
    "difference",
    "unit",
    "seeds",
    "top_overlap",
    "overlap_pairs",
    "note",
)
PAIRED_COLUMNS = (
    "row",
    "column",
    "reference",
    "n",
    "seeds",
    "mean_difference",
    "sd_difference",
    "ci_half_width",
    "ci_low",
    "ci_high",
    "p_value",
    "test",
)
PAPER_UNITS = {SEARCH_COST: "GPU-hours"}  # every other metric is an error in %
TABLE1_REFERENCES = ("test error, no policy", "test error, random policy")  # Table 1's paired comparisons
METRIC_PREFIXES = ("test error, ", "search cost, ")


def cell_runs(runs: pd.DataFrame, cell: Cell, scale: str, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """The finished runs of a cell's job at ``scale`` (only ``seeds`` when given)."""
    job = cell.job
    selected = finished(runs)
    folder = experiment_folder(job.experiment, scale)
    selected = selected[
        (selected["scale"] == scale) & (selected["experiment"] == folder) & (selected["variant"] == job.variant)
    ]
    return selected[selected["seed"].isin(seeds)] if seeds is not None else selected


def _datasets(job: Job) -> list[str]:
    """The data sets a job's runs need, in the order a missing one is named: a detection's own first, then its
    backbone's; an evaluation's search's, then its own."""
    chain = needed(job)
    if isinstance(job, DetectJob):
        chain = [job, *chain[:-1]]
    return list(dict.fromkeys(link.dataset for link in chain))


def why_not_run(cell: Cell, runs: pd.DataFrame, scale: str, data_root: Path) -> str:
    """The note of a cell without finished runs: no data on disk, a failed run, or not run yet."""
    if cell.job is None:
        return cell.note
    for dataset in _datasets(cell.job):
        path = missing_data(dataset, data_root)
        if path is not None:
            return f"not run: no data at {path}"
    folder = experiment_folder(cell.job.experiment, scale)
    tried = runs[(runs["scale"] == scale) & (runs["experiment"] == folder) & (runs["variant"] == cell.job.variant)]
    if not tried.empty:
        return f"failed: {', '.join(sorted(set(tried['status'])))} (see {tried['run_dir'].iloc[0]})"
    return "not run yet"


def _paper_value(paper: pd.DataFrame, cell: Cell) -> tuple[float, str]:
    if cell.paper is None:
        return math.nan, ""
    entry = lookup(paper, cell.paper.table, cell.paper.row, cell.paper.column)
    return entry["value"], cell.paper.table


def _unit(selected: pd.DataFrame, metric: str) -> str:
    return "/".join(sorted(set(selected["unit"].dropna()))) if metric == SEARCH_COST else "%"


def _overlap(selected: pd.DataFrame, cell: Cell) -> tuple[float, int]:
    """A search cell's mean pairwise top-k overlap over its selected seeds, and the number of pairs."""
    if not isinstance(cell.job, SearchJob):
        return math.nan, 0
    return mean_pairwise_overlap(
        {f"seed{seed}": overlap for seed, overlap in zip(selected["seed"], selected["top_overlap"])}
    )


def _difference(ours: float, paper_value: float, unit: str, metric: str) -> float:
    """ours - paper, only where both exist in the same unit (CPU-hours and GPU-hours do not subtract)."""
    if math.isnan(ours) or math.isnan(paper_value) or unit != PAPER_UNITS.get(metric, "%"):
        return math.nan
    return ours - paper_value


def build_table(
    layout: Layout,
    runs: pd.DataFrame,
    paper: pd.DataFrame,
    scale: str,
    data_root: Path,
    seeds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """One line per cell of ``layout``: the paper's value, ours over the seeds (mean, sd, 95 % CI), and a note."""
    records = []
    for cell in layout.cells:
        paper_value, paper_table = _paper_value(paper, cell)
        selected = cell_runs(runs, cell, scale, seeds) if cell.job is not None else runs.iloc[0:0]
        ours = summarize(selected[cell.metric])
        unit = _unit(selected, cell.metric)
        records.append(
            (
                cell.row,
                cell.column,
                cell.metric,
                paper_value,
                paper_table,
                ours.mean,
                ours.sd,
                ours.n,
                ours.half_width,
                ours.low,
                ours.high,
                _difference(ours.mean, paper_value, unit, cell.metric),
                unit,
                ",".join(map(str, sorted(selected["seed"]))),
                *_overlap(selected, cell),
                "" if ours.n else why_not_run(cell, runs, scale, data_root),
            )
        )
    return pd.DataFrame.from_records(records, columns=list(CELL_COLUMNS))


def _seed_values(runs: pd.DataFrame, cell: Cell, scale: str, seeds: Sequence[int] | None) -> dict[int, float]:
    selected = cell_runs(runs, cell, scale, seeds)
    return dict(zip(selected["seed"], selected[cell.metric]))


def paired_table(
    layout: Layout, runs: pd.DataFrame, scale: str, references: Sequence[str], seeds: Sequence[int] | None = None
) -> pd.DataFrame:
    """Per layout row, every test-error column minus each reference column on their shared seeds (paired t-test).

    Only comparisons with at least two paired seeds are listed.
    """
    records = []
    for row in dict.fromkeys(cell.row for cell in layout.cells):
        values = {
            cell.column: _seed_values(runs, cell, scale, seeds)
            for cell in layout.cells
            if cell.row == row and cell.metric == TEST_ERROR and cell.job is not None
        }
        for column in values:
            for reference in (reference for reference in references if reference in values and reference != column):
                result = paired(values[column], values[reference])
                change = result.difference
                if change.n >= 2:
                    records.append(
                        (
                            row,
                            column,
                            reference,
                            change.n,
                            ",".join(map(str, result.seeds)),
                            change.mean,
                            change.sd,
                            change.half_width,
                            change.low,
                            change.high,
                            result.p_value,
                            "paired t-test",
                        )
                    )
    return pd.DataFrame.from_records(records, columns=list(PAIRED_COLUMNS))


# -- writing ----------------------------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def line(cells):
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *map(line, rows)])


def method_label(column: str) -> str:
    """A layout column without its metric: "test error, DADA (RELAX)" -> "DADA (RELAX)"."""
    for prefix in METRIC_PREFIXES:
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def typical_seed_count(frame: pd.DataFrame) -> int:
    """The most common number of seeds over the cells that have runs (0 when none has)."""
    counts = frame.loc[frame["n"] > 0, "n"]
    return int(counts.mode().max()) if len(counts) else 0


def _plus_minus(mean: float, half_width: float, n: int, digits: str) -> str:
    return f"{mean:{digits}}" + (f" ± {half_width:{digits}}" if n > 1 else "")


def _ours_value(line: pd.Series) -> str:
    """``12.34 ± 0.56`` (mean ± 95 % CI half-width); hours as ``0.0013 ± 0.0003 CPU-hours = 4.8 ± 1.1 s``."""
    if line["metric"] != SEARCH_COST:
        return _plus_minus(line["ours_mean"], line["ci_half_width"], line["n"], ".2f")
    hours = _plus_minus(line["ours_mean"], line["ci_half_width"], line["n"], ".3g")
    seconds = _plus_minus(line["ours_mean"] * 3600, line["ci_half_width"] * 3600, line["n"], ".3g")
    return f"{hours} {line['unit']} = {seconds} s"


def format_ours(line: pd.Series) -> str:
    """``12.34 ± 0.56 (95 % CI, n=3)``, hours also in seconds; one seed has no interval, no runs show their note."""
    if line["n"] == 0:
        return line["note"]
    return f"{_ours_value(line)} ({'95 % CI, ' if line['n'] > 1 else ''}n={line['n']})"


def _paper_text(line: pd.Series) -> str:
    """``paper 2.7`` (as printed: 26.0, 3.61; ``paper 0.1 GPU-hours`` for a cost), ``paper: not reported``, or ""
    without a paper cell."""
    if not line["paper_table"]:
        return ""
    if math.isnan(line["paper"]):
        return "paper: not reported"
    unit = PAPER_UNITS.get(line["metric"])
    if unit:
        return f"paper {line['paper']:g} {unit}"
    return f"paper {line['paper']:.1f}" if round(line["paper"], 1) == line["paper"] else f"paper {line['paper']:g}"


def format_cell(line: pd.Series, typical_n: int) -> str:
    """A paper-shaped cell: ``26.30 ± 1.61 (paper 2.7)``; ``(n=2; ...)`` when n is not the table's usual one;
    ``paper 2.7 (not run: no data at ...)`` without runs."""
    paper = _paper_text(line)
    if line["n"] == 0:
        return f"{paper} ({line['note']})" if paper else line["note"]
    extras = [f"n={line['n']}"] if line["n"] != typical_n or line["n"] == 1 else []
    extras += [paper] if paper else []
    return _ours_value(line) + (f" ({'; '.join(extras)})" if extras else "")


def _pivot(frame: pd.DataFrame, corner: str, lines: dict[str, Callable[[pd.Series], str]]) -> str:
    """Methods (the layout's columns) as rows, data sets (its rows) as columns; ``lines`` maps a row-label suffix
    to how a cell is written."""
    datasets = list(dict.fromkeys(frame["row"]))
    cells = {(line["row"], line["column"]): line for _, line in frame.iterrows()}
    rows = []
    for column in dict.fromkeys(frame["column"]):
        for suffix, write in lines.items():
            rows.append(
                [
                    method_label(column) + suffix,
                    *[write(cells[dataset, column]) if (dataset, column) in cells else "—" for dataset in datasets],
                ]
            )
    return markdown_table([corner, *datasets], rows)


def error_markdown(frame: pd.DataFrame, typical_n: int) -> str:
    """The error cells of a cell table, paper-shaped: methods as rows, data sets as columns."""
    errors = frame[frame["metric"] != SEARCH_COST]
    return _pivot(errors, "Method", {"": lambda line: format_cell(line, typical_n)})


def _overlap_text(line: pd.Series) -> str:
    if line["overlap_pairs"]:
        return f"{line['top_overlap']:.2f} ({line['overlap_pairs']} pair{'s' if line['overlap_pairs'] > 1 else ''})"
    if line["n"] == 1:
        return "one seed: no pair"
    return "not recorded" if line["n"] else "—"


def search_markdown(frame: pd.DataFrame, typical_n: int) -> str:
    """The search cells: per search its cost and its top-25 overlap between seeds, data sets as columns;
    "" when the table has no search cell."""
    costs = frame[frame["metric"] == SEARCH_COST]
    if costs.empty:
        return ""
    return _pivot(
        costs,
        "Search",
        {": cost": lambda line: format_cell(line, typical_n), ": top-25 overlap between seeds": _overlap_text},
    )


def _p_text(p_value: float) -> str:
    if math.isnan(p_value):
        return "no p: Δ equal on every seed"
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def _paired_text(line: pd.Series) -> str:
    """``-3.17 [-5.06, -1.27], p = 0.019, n = 3``."""
    return (
        f"{line['mean_difference']:+.2f} [{line['ci_low']:+.2f}, {line['ci_high']:+.2f}], "
        f"{_p_text(line['p_value'])}, n = {line['n']}"
    )


def paired_markdown(frame: pd.DataFrame, references: Sequence[str]) -> str:
    """One table per data set: rows methods, columns Δ vs each reference [95 % CI], p."""
    if frame.empty:
        return "No comparison has two paired seeds yet."
    sections = []
    header = ["Method", *[f"Δ vs {method_label(reference)} [95 % CI], p" for reference in references]]
    for row, lines in frame.groupby("row", sort=False):
        found = {(line["column"], line["reference"]): _paired_text(line) for _, line in lines.iterrows()}
        body = [
            [method_label(column), *[found.get((column, reference), "—") for reference in references]]
            for column in dict.fromkeys(lines["column"])
        ]
        sections.append(f"### {row}\n\n{markdown_table(header, body)}")
    return "\n\n".join(sections)


def citations(frame: pd.DataFrame, paper: pd.DataFrame) -> list[str]:
    """The citation of every paper table the frame quotes."""
    return [f"{table}: {citation(paper, table)}" for table in sorted(set(frame["paper_table"]) - {""})]


def output_name(name: str, scale: str) -> str:
    """``table1_smoke`` at a reduced scale (``table1_mini``, ...), ``table1`` at the paper's."""
    return name if scale == "paper" else f"{name}_{scale}"
