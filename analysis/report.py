"""Write a target's results: ``results/<name>[_<scale>].md`` and ``.csv`` for tables, ``.png`` and ``.pdf`` for figures.

    python -m analysis table1 --scale smoke            # what `make table1` ends with
    python -m analysis figures --scale smoke --source mlflow --mlflow-uri sqlite:///mlruns.db
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from analysis.cost import cost_markdown, cost_report
from analysis.figures import fig1, fig3a, fig3b
from analysis.paper import load_paper_results
from analysis.runs import finished, read_runs, read_runs_mlflow
from analysis.search_curves import gradient_variance, gradient_variance_figure, policy_figure
from analysis.style import save_figure, scale_caption
from analysis.tables import build_table, cell_runs, citations, output_name, to_markdown
from reproduce.tables import get_layout

TABLES = ("table1", "table2", "table3", "table4", "table6")
FIGURES = {"fig1": fig1, "fig3b": fig3b}


@dataclass
class Context:
    """Where runs are read from and results written, and which scale and seeds count."""

    scale: str = "smoke"
    runs_root: Path = Path("runs")
    results_dir: Path = Path("results")
    data_root: Path = Path("data")
    seeds: Optional[Sequence[int]] = None
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


def write_table(name: str, runs: pd.DataFrame, context: Context) -> Path:
    """``results/<name>[_<scale>].csv`` and ``.md``: paper, ours, difference per cell; Table 1 adds the cost report."""
    layout = get_layout(name)
    cells, caption = _cells(name, runs, context)
    stem = context.results_dir / output_name(name, context.scale)
    context.results_dir.mkdir(parents=True, exist_ok=True)
    cells.to_csv(stem.with_suffix(".csv"), index=False)
    parts = [f"# {layout.title} ({caption})", "",
             f"Values: {layout.quantity}. Ours: mean ± sample standard deviation over the seeds that finished "
             "(n); difference = ours - paper, only where both exist in the same unit.", ""]
    if context.scale != "paper":
        parts += [f"{context.scale} scale: tiny networks, few epochs, small subsets (conf/scale/{context.scale}.yaml);"
                  " the paper column is the paper's full-scale result, so a difference measures the scale gap, "
                  "not a reproduction error.", ""]
    parts += [to_markdown(cells), "", "Paper values:", *[f"- {line}" for line in citations(cells, context.paper)]]
    if name == "table1":
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
        seeds = {(cell.row, cell.column): list(cell_runs(runs, cell, context.scale, context.seeds)[cell.metric])
                 for cell in layout.cells}
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
        raise ValueError(f"unknown target {target!r}; valid choices: {', '.join(TABLES)}, fig1, fig3a, fig3b, "
                         "figures, all")
    for name in tables:
        print(f"wrote {write_table(name, runs, context)}")
    for name in figures:
        print(f"wrote {', '.join(map(str, write_figure(name, runs, context)))}")
    if target in ("figures", "all"):
        paths = write_search_figures(runs, context)
        print(f"wrote {len(paths)} search figures under {context.results_dir}")
        write_estimators_toy(context)
        print(f"wrote {context.results_dir / 'estimators_toy.png'}")
