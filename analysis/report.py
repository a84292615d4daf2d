"""Write a target's results: ``results/<name>[_<scale>].md`` and ``.csv`` for tables, ``.png`` and ``.pdf`` for figures.

python -m analysis table1 --scale smoke            # what `make table1` ends with (also table1_smoke_paired.csv)
python -m analysis figures --scale smoke --source mlflow --mlflow-uri sqlite:///mlruns.db
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from analysis.cost import cost_markdown, cost_report
from analysis.figures import fig1, fig3a, fig3b
from analysis.paper import load_paper_results
from analysis.runs import finished, read_runs, read_runs_mlflow
from analysis.search_curves import gradient_variance, gradient_variance_figure, policy_figure
from analysis.style import save_figure, scale_caption
from analysis.tables import (
    TABLE1_REFERENCES,
    build_table,
    cell_runs,
    citations,
    error_markdown,
    output_name,
    paired_markdown,
    paired_table,
    search_markdown,
    typical_seed_count,
)
from reproduce.plan import cell_settings
from reproduce.tables import Layout, get_layout, jobs

TABLES = ("table1", "table2", "table3", "table4", "table5", "table6")
FIGURES = {"fig1": fig1, "fig3b": fig3b}


@dataclass
class Context:
    """Where runs are read from and results written, and which scale and seeds count."""

    scale: str = "smoke"
    runs_root: Path = Path("runs")
    results_dir: Path = Path("results")
    data_root: Path = Path("data")
    seeds: Sequence[int] | None = None
    source: str = "folders"  # folders | mlflow
    mlflow_uri: str = "sqlite:///mlruns.db"
    paper: pd.DataFrame = field(default_factory=load_paper_results)

    def read(self) -> pd.DataFrame:
        if self.source == "folders":
            return read_runs(self.runs_root)
        if self.source == "mlflow":
            return read_runs_mlflow(self.mlflow_uri)
        raise ValueError(f"unknown run source {self.source!r}; valid choices: folders, mlflow")


def _cells(name: str, runs: pd.DataFrame, context: Context) -> tuple[pd.DataFrame, str]:
    """The layout's cell table and the caption naming the scale and the devices of the runs it uses."""
    layout = get_layout(name)
    cells = build_table(layout, runs, context.paper, context.scale, context.data_root, context.seeds)
    used = pd.concat([cell_runs(runs, cell, context.scale, context.seeds) for cell in layout.cells if cell.job])
    return cells, scale_caption(context.scale, used)


def _values_note(layout: Layout, typical_n: int) -> str:
    seeds = (
        f"n = {typical_n} seeds per cell unless a cell says otherwise (one seed: the mean alone)"
        if typical_n
        else "no cell has finished runs yet"
    )
    return (
        f"Values: {layout.quantity}. Ours: mean ± half-width of the 95 % t confidence interval "
        f'(t_0.975,n-1 · sd / √n) over the seeds that finished; {seeds}. "paper x" is the paper\'s value for '
        "that cell; a cell without runs says why. The CSV beside this file holds every cell's mean, sample sd, n "
        "and interval."
    )


SEARCH_NOTE = (
    "Cost: device-hours of the search loop as measured (device and unit in the title), mean ± 95 % CI, "
    'and the same in seconds; "paper x GPU-hours" is the paper\'s search cost. Top-25 overlap: the '
    "fraction of the exported top-25 sub-policies (search.top_k) that two seeds' searches share, averaged "
    "over the pairs of finished seeds."
)


SCALE_PURPOSE = {
    "smoke": "This scale is a pipeline check: the network underfits, so no policy is expected to help; whether the "
    "search finds policies that help is the question of the mini scale (results/table1_mini.md).",
    "mini": "This scale asks whether the search finds policies that help, on real data within 2 CPU cores.",
}


def _cell_settings_note(layout: Layout, scale: str) -> str:
    """The cells of ``layout`` that run with settings of their own at ``scale`` (conf/reproduce/<scale>.yaml)."""
    own = {job.experiment: cell_settings(job.experiment, scale) for job in jobs(layout)}
    listed = "; ".join(f"{experiment}: {' '.join(settings)}" for experiment, settings in own.items() if settings)
    if not listed:
        return ""
    return (
        f"Cells with settings of their own at {scale} scale (conf/reproduce/{scale}.yaml, on top of the scale): "
        f"{listed}."
    )


def _paired_note(csv_name: str) -> str:
    return (
        "Δ = method − reference, in percentage points of test error, on the seeds both finished (n); in brackets "
        "the 95 % t confidence interval of the mean Δ; p: two-sided paired t-test of mean Δ = 0. A negative Δ "
        f"means a lower error than the reference. Listed only where two or more seeds pair up; also in {csv_name}."
    )


class EmptyResultsError(ValueError):
    """The analysis found no run for a table whose file holds runs; the file was kept."""


def refuse_emptying(csv: Path, cells: pd.DataFrame) -> None:
    """Never replace a table that counts runs with one that counts none (after a failed or refused target, or with
    the wrong --seeds or --scale): the measured table would be lost."""
    if cells["n"].sum() > 0 or not csv.is_file():
        return
    try:
        counted = int(pd.read_csv(csv)["n"].fillna(0).sum())
    except (OSError, ValueError, KeyError):  # no table of ours: nothing measured to keep
        return
    if counted:
        raise EmptyResultsError(
            f"{csv} counts {counted} runs, and no run of this scale and these seeds has finished: it was left as it "
            f"is, with the tables beside it. Run the target first (python -m reproduce), check --scale and --seeds, "
            f"or move the file away to write an empty table"
        )


def write_table(name: str, runs: pd.DataFrame, context: Context) -> Path:
    """``results/<name>[_<scale>].csv`` (one line per cell) and ``.md`` (methods as rows, data sets as columns);
    Table 1 adds paired comparisons (``_paired.csv``) and the cost report."""
    layout = get_layout(name)
    cells, caption = _cells(name, runs, context)
    stem = context.results_dir / output_name(name, context.scale)
    refuse_emptying(stem.with_suffix(".csv"), cells)
    context.results_dir.mkdir(parents=True, exist_ok=True)
    cells.to_csv(stem.with_suffix(".csv"), index=False)
    typical_n = typical_seed_count(cells)
    parts = [f"# {layout.title} ({caption})", "", _values_note(layout, typical_n), ""]
    if context.scale != "paper":
        parts += [
            f"{context.scale} scale: smaller networks, fewer epochs and smaller data subsets than the paper "
            f'(conf/scale/{context.scale}.yaml). Every "paper" value is the paper\'s full-scale result: the '
            "gap between it and ours measures the scale, not a reproduction error. "
            + SCALE_PURPOSE.get(context.scale, ""),
            "",
        ]
    notes = " ".join(filter(None, (layout.note, _cell_settings_note(layout, context.scale))))
    if notes:
        parts += [notes, ""]
    parts += [f"## {layout.heading}", "", error_markdown(cells, typical_n), ""]
    search = search_markdown(cells, typical_n)
    if search:
        parts += ["## Search", "", SEARCH_NOTE, "", search, ""]
    if "paired" in layout.extras:
        pairs = paired_table(layout, runs, context.scale, TABLE1_REFERENCES, context.seeds)
        paired_csv = stem.with_name(f"{stem.name}_paired.csv")
        pairs.to_csv(paired_csv, index=False)
        parts += [
            "## Paired comparisons on the same seeds (paired t-test)",
            "",
            _paired_note(paired_csv.name),
            "",
            paired_markdown(pairs, TABLE1_REFERENCES),
            "",
        ]
    parts += ["Paper values:", *[f"- {line}" for line in citations(cells, context.paper)]]
    if "cost" in layout.extras:
        report = cost_report(cells, runs, context.paper, context.scale, context.seeds)
        report.to_csv(context.results_dir / f"{output_name('cost', context.scale)}.csv", index=False)
        parts += ["", cost_markdown(report, context.paper, context.scale)]
    stem.with_suffix(".md").write_text("\n".join(parts) + "\n")
    return stem.with_suffix(".md")


def write_figure(name: str, runs: pd.DataFrame, context: Context) -> list[Path]:
    """``results/<name>[_<scale>].png`` and ``.pdf`` for fig1, fig3a or fig3b."""
    cells, caption = _cells(name, runs, context)
    if name == "fig3a":
        layout = get_layout(name)
        seeds = {
            (cell.row, cell.column): list(cell_runs(runs, cell, context.scale, context.seeds)[cell.metric])
            for cell in layout.cells
        }
        figure = fig3a(cells, seeds, context.paper, caption)
    else:
        figure = FIGURES[name](cells, context.paper, caption)
    return save_figure(figure, context.results_dir, output_name(name, context.scale))


def write_search_figures(runs: pd.DataFrame, context: Context) -> list[Path]:
    """Policy heatmaps of the first seed of every search, and the estimators' gradient variance per epoch."""
    searches = finished(runs)
    searches = searches[(searches["app"] == "search") & (searches["scale"] == context.scale)]
    if context.seeds is not None:
        searches = searches[searches["seed"].isin(context.seeds)]
    paths = []
    caption = scale_caption(context.scale, searches)
    for search in searches.sort_values("seed").drop_duplicates(["experiment", "variant"]).itertuples():
        title = f"{search.experiment}, {search.variant}, seed {search.seed} ({caption})"
        name = output_name(f"policy_{search.experiment}_{search.variant}_seed{search.seed}", context.scale)
        paths += save_figure(policy_figure(Path(search.run_dir), title), context.results_dir, name)
    figure = gradient_variance_figure(gradient_variance(searches), caption)
    paths += save_figure(figure, context.results_dir, output_name("search_gradient_variance", context.scale))
    return paths


def write_estimators_toy(context: Context) -> None:
    """The estimators' bias and variance on toy problems (``analysis.estimators``, scale-free)."""
    from analysis import estimators

    estimators.write(estimators.measure(), context.results_dir)


def write_results(target: str, context: Context) -> None:
    """Write every result of ``target``: a table, a figure, ``figures`` (all figures) or ``all``."""
    runs = context.read()
    tables = TABLES if target == "all" else tuple(name for name in TABLES if name == target)
    if target in ("figures", "all"):
        figures = ("fig1", "fig3a", "fig3b")
    else:
        figures = (target,) if target.startswith("fig") else ()
    if not tables and not figures:
        raise ValueError(
            f"unknown target {target!r}; valid choices: {', '.join(TABLES)}, fig1, fig3a, fig3b, figures, all"
        )
    for name in tables:
        print(f"wrote {write_table(name, runs, context)}")
    for name in figures:
        print(f"wrote {', '.join(map(str, write_figure(name, runs, context)))}")
    if target in ("figures", "all"):
        paths = write_search_figures(runs, context)
        print(f"wrote {len(paths)} search figures under {context.results_dir}")
        write_estimators_toy(context)
        print(f"wrote {context.results_dir / 'estimators_toy.png'}")
