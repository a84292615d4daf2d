"""Write a study's results: ``<stem>_seeds.csv`` first, then from it ``<stem>_tests.csv``, ``<stem>.md`` and the figure
``<stem>.png`` / ``.pdf``; ``<stem>_movement.csv`` and ``<stem>_cost.csv`` from the run folders."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from analysis.policy_movement import movement_table, overlap_between_seeds, released_movement
from analysis.statistics import paired_t_power, seeds_for_power, summarize
from analysis.study import (
    column_summaries,
    descriptive_comparisons,
    primary_tests,
    study_cost,
    study_runs_frame,
    values_by_seed,
    whole_seed_count,
)
from analysis.style import STYLE, save_figure
from analysis.tables import markdown_table
from reproduce.study import Design

CONTROL_OFFSET = 0.3  # how far left of a column its seeds' control values sit, joined by the paired lines


def _p(value: float) -> str:
    if math.isnan(value):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _number(value: float, spec: str = ".2f") -> str:
    """``value`` formatted, or a dash where one seed leaves it undefined (an sd, an interval, a power)."""
    return "—" if math.isnan(value) else f"{value:{spec}}"


def _with_interval(mean: float, low: float, high: float, spec: str = ".2f") -> str:
    interval = "" if math.isnan(low) else f" [{low:{spec}}, {high:{spec}}]"
    return f"{mean:{spec}}{interval}"


def _errors_markdown(summaries: pd.DataFrame) -> str:
    rows = [
        [
            line.label,
            line.n,
            _with_interval(line.mean, line.ci_low, line.ci_high),
            _number(line.sd),
            f"{line.train_error_mean:.2f}",
        ]
        for line in summaries.itertuples()
    ]
    return markdown_table(["column", "n", "test error, mean [95 % CI]", "sd", "train error, mean"], rows)


def _tests_markdown(tests: pd.DataFrame, design: Design) -> str:
    rows = [
        [
            f"{line.column} − {line.reference}",
            line.n,
            _with_interval(line.mean_difference, line.ci_low, line.ci_high, "+.2f"),
            f"{_p(line.t_p)} / {_p(line.t_p_holm)}",
            f"{_p(line.sign_flip_p)} / {_p(line.sign_flip_p_holm)}",
            f"{_p(line.tost_p)} / {_p(line.tost_p_holm)}",
            _number(line.power_planned),
            _number(line.detectable_difference),
            line.verdict,
        ]
        for line in tests.itertuples()
    ]
    header = [
        "comparison",
        "n",
        "Δ test error [95 % CI]",
        "paired t p (raw / Holm)",
        "sign-flip p (raw / Holm)",
        f"TOST ±{design.tost_margin:g} p (raw / Holm)",
        f"power at {design.power['difference']:g} (planned sd)",
        "Δ detectable at 80 % (observed sd)",
        "verdict",
    ]
    return markdown_table(header, rows)


def _descriptive_markdown(frame: pd.DataFrame) -> str:
    rows = [
        [
            f"{line.column} − {line.reference}",
            line.n,
            _with_interval(line.mean_difference, line.ci_low, line.ci_high, "+.2f"),
            _p(line.t_p),
        ]
        for line in frame.itertuples()
    ]
    return markdown_table(["comparison", "n", "Δ [95 % CI]", "paired t p (unadjusted)"], rows)


def _movement_markdown(movement: pd.DataFrame, released: dict) -> str:
    rows = []
    for search, lines in movement.groupby("search", sort=False):
        overlap, pairs, chance = lines.iloc[0][["top_overlap", "overlap_pairs", "overlap_chance"]]

        def span(column, digits=".3f"):
            return f"{lines[column].mean():{digits}} ({lines[column].min():{digits}}–{lines[column].max():{digits}})"

        rows.append(
            [
                f"{search} ({len(lines)} seeds, {int(lines['epochs'].max())} epochs)",
                f"{span('entropy', '.4f')} of {lines['entropy_uniform'].iloc[0]:.4f}",
                f"{span('weight_min_x_uniform', '.2f')} – {span('weight_max_x_uniform', '.2f')}",
                f"{span('beta_max_abs')} / {span('beta_mean_abs')}",
                f"{span('m_max_abs')} / {span('m_mean_abs')}",
                f"{overlap:.3f} ({int(pairs)} pair{'s' if pairs > 1 else ''}; chance {chance:.3f})" if pairs else "—",
            ]
        )
    rows.append(
        [
            "released CIFAR-10 policy (its 25 exported sub-policies)",
            "—",
            "—",
            f"{released['beta_max_abs']:.3f} / {released['beta_mean_abs']:.3f}",
            f"{released['m_max_abs']:.3f} / {released['m_mean_abs']:.3f}",
            "—",
        ]
    )
    header = [
        "search",
        "entropy of softmax(α), mean (range), of log K",
        "softmax(α) · K, smallest – largest",
        "|β − 0.5| max / mean",
        "|m − 0.5| max / mean",
        "top-25 overlap between seeds",
    ]
    return markdown_table(header, rows)


def _mean_with_ci(axis, x: float, summary) -> None:
    """A column's mean as a black diamond beside its dots, with its 95 % CI where there is more than one seed."""
    yerr = summary.half_width if summary.n > 1 else None
    axis.errorbar(x + 0.12, summary.mean, yerr=yerr, fmt="D", color="black", capsize=4, ms=5, zorder=4)


def study_figure(design: Design, seeds: pd.DataFrame, caption: str) -> plt.Figure:
    """Left: each column's per-seed test errors (dots) with mean and 95 % CI, each seed joined by a line to its
    control value (hollow, left of the column). Right: the paired differences to the control, with ±margin."""
    labels = {column.key: column.label for column in design.columns} | {
        design.secondary["key"]: design.secondary["label"]
    }
    keys = list(dict.fromkeys(seeds["column"]))
    control = values_by_seed(seeds, design.control)
    others = [key for key in keys if key != design.control]
    with plt.rc_context(STYLE):
        figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3, 2]})
        for x, key in enumerate(keys):
            values = values_by_seed(seeds, key)
            shared = sorted(set(values) & set(control))
            if key != design.control:
                for seed in shared:
                    left.plot([x - CONTROL_OFFSET, x], [control[seed], values[seed]], color="0.75", lw=0.8, zorder=1)
                left.scatter(
                    [x - CONTROL_OFFSET] * len(shared),
                    [control[s] for s in shared],
                    s=14,
                    facecolors="none",
                    edgecolors="0.5",
                    zorder=2,
                )
            left.scatter([x] * len(values), list(values.values()), s=18, color=f"C{x}", zorder=3)
            _mean_with_ci(left, x, summarize(values.values()))
            if key != design.control and shared:
                difference = summarize(values[s] - control[s] for s in shared)
                at = others.index(key)  # the right panel has no control column
                right.scatter([at] * len(shared), [values[s] - control[s] for s in shared], s=18, color=f"C{x}")
                _mean_with_ci(right, at, difference)
        left.set_xticks(range(len(keys)), [labels[key] for key in keys], rotation=25, ha="right")
        right.set_xticks(range(len(others)), [labels[key] for key in others], rotation=25, ha="right")
        left.set_ylabel("test error (%)")
        left.set_title("per seed (dots), mean and 95 % CI (◆); hollow: the seed's control", fontsize=9)
        right.axhline(0, color="black", lw=0.8)
        right.axhspan(
            -design.tost_margin,
            design.tost_margin,
            color="0.9",
            zorder=0,
            label=f"±{design.tost_margin:g} (TOST margin)",
        )
        right.set_ylabel("test error − the seed's control (points)")
        right.set_title("paired differences to the control", fontsize=9)
        right.legend(loc="best", fontsize=8)
        figure.suptitle(f"{design.title} ({caption})", fontsize=10)
        figure.tight_layout()
    return figure


def _from_runs(stem: Path, suffix: str, runs: pd.DataFrame | None, compute) -> tuple[pd.DataFrame | None, Path]:
    """``compute(runs)`` written to ``<stem>_<suffix>.csv``; read back from that file when only the seed CSV is
    given (None when there is none): the run folders' own tables, next to the per-seed one."""
    path = stem.with_name(f"{stem.name}_{suffix}.csv")
    if runs is None:
        return (pd.read_csv(path) if path.is_file() else None), path
    frame = compute(runs)
    frame.to_csv(path, index=False)
    return frame, path


def _movement_of(design: Design, scale: str, seeds: tuple[int, ...]):
    """The movement table of the study's searches, with each search's top-k overlap between seeds."""

    def compute(runs: pd.DataFrame) -> pd.DataFrame:
        searches = study_runs_frame(design, runs, scale, seeds)
        movement = movement_table(searches)
        overlaps = overlap_between_seeds(searches, seeds)
        for index, name in enumerate(("top_overlap", "overlap_pairs", "overlap_chance")):
            movement[name] = [overlaps[search][index] for search in movement["search"]]
        return movement

    return compute


def _cost_markdown(cost: pd.DataFrame) -> str:
    rows = [
        [line.run, line.n, f"{line.median_s:.0f}", f"{line.min_s:.0f}–{line.max_s:.0f}", f"{line.total_hours:.2f}"]
        for line in cost.itertuples()
    ]
    unit = cost["unit"].iloc[0] if len(cost) else "device-hours"
    return markdown_table(["run", "n", "median s", "range s", f"total ({unit})"], rows)


def _caption(design: Design, scale: str, seeds: pd.DataFrame) -> str:
    """The scale and, short of the declared seeds, the interim state, as every title says them; read from the seed
    CSV alone, so a rebuilt figure is the same."""
    declared, whole = design.seeds.get(scale), whole_seed_count(design, seeds)
    interim = f"; INTERIM: {whole} of {declared} seeds" if whole < declared else ""
    return f"{scale} scale" + ("" if scale == "paper" else ", REDUCED: not the paper's sizes") + interim


def _power_lines(design: Design, tests: pd.DataFrame, scale: str) -> list[str]:
    power, m = design.power, len(design.comparisons)
    planned = ", ".join(f"{key} {sd:g}" for key, sd in power["sd"].items())
    lines = [
        f"Planned (conf/study/{design.name}.yaml): {design.seeds.get(scale)} seeds at {scale} scale; sd of the "
        f"differences from results/table1_mini.* (n = 3): {planned}; two-sided paired t at α/{m} = "
        f"{design.alpha / m:.4f}. Power at a {power['difference']:g}-point difference with the n reached is in the "
        "table; the last column gives the difference detectable with 80 % power at the sd observed here.",
    ]
    if not tests.empty:
        alpha, declared = design.alpha / m, design.seeds[scale]

        def powers(n: int, sd: float) -> str:
            reached = f"{paired_t_power(n, power['difference'], sd, alpha):.2f} with these {n} seeds"
            if n == declared:
                return reached
            at_declared = paired_t_power(declared, power["difference"], sd, alpha)
            return f"{reached}, {at_declared:.2f} with the {declared} declared"

        observed = ", ".join(
            f"{line.reference} {line.sd_difference:.2f} (power at {power['difference']:g}: "
            f"{powers(line.n, line.sd_difference)}; {power['target'] * 100:.0f} % power would need "
            f"{seeds_for_power(power['difference'], line.sd_difference, alpha, power['target'])} seeds)"
            for line in tests.itertuples()
            if line.sd_difference > 0
        )
        lines.append(f"Observed sd of the differences: {observed or 'none yet'}.")
    return lines


def study_markdown(design: Design, scale: str, parts: dict) -> str:
    seeds, tests = parts["seeds"], parts["tests"]
    declared, whole = design.seeds.get(scale), whole_seed_count(design, seeds)
    interim = whole < declared
    text = [
        f"# {design.title} ({_caption(design, scale, seeds)})",
        "",
        *(
            [
                f"**Interim.** {whole} of the {declared} declared seeds have every column finished; the analysis at "
                f"{declared} seeds is the confirmatory one (amendment in conf/study/{design.name}.yaml). The "
                "tests below hold at the n reached, with the power stated for that n.",
                "",
            ]
            if interim
            else []
        ),
        f"Pre-registered in conf/study/{design.name}.yaml before any run; every number below is computed from "
        f"{parts['seeds_name']} (one line per column and seed). Declared: {declared} seeds per column at {scale} "
        f"scale; finished: {seeds.groupby('column').size().to_dict()}. Evaluation overrides: "
        f"{' '.join(design.evaluation['overrides'])}.",
        "",
        "## Test error per column",
        "",
        _errors_markdown(parts["summaries"]),
        "",
        f"## Pre-declared comparisons: {design.primary} minus each reference, paired by seed",
        "",
        "Holm's correction runs over the family of these comparisons, for each test. Decision rule (declared): a "
        "difference where the Holm-adjusted paired t-test gives p ≤ α; equivalence within the margin where the "
        "Holm-adjusted TOST does; otherwise inconclusive. The sign-flip permutation test (exact, distribution-free) "
        "checks the t-test.",
        "",
        _tests_markdown(tests, design) if not tests.empty else "No comparison has two paired seeds yet.",
        "",
        *_power_lines(design, tests, scale),
        "",
        "## Descriptive comparisons (not tested)",
        "",
        _descriptive_markdown(parts["descriptive"]),
        "",
    ]
    if parts["movement"] is not None and not parts["movement"].empty:
        text += [
            "## Policy movement per search (last logged epoch; the step-0 export is the start)",
            "",
            _movement_markdown(parts["movement"], released_movement("cifar10")),
            "",
        ]
    if parts["cost"] is not None and not parts["cost"].empty:
        text += [
            "## Cost, measured (every finished run of the study, as its run folder logged it)",
            "",
            _cost_markdown(parts["cost"]),
            "",
        ]
    text += [f"Figure: {parts['figure_name']}.png / .pdf."]
    return "\n".join(text) + "\n"


def write_study(design: Design, seeds: pd.DataFrame, runs: pd.DataFrame | None, scale: str, stem: Path) -> list[Path]:
    """Every result file of the study; the report's numbers come from ``seeds`` (written first) only."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    seeds_path = stem.with_name(f"{stem.name}_seeds.csv")
    seeds.to_csv(seeds_path, index=False)
    seeds = pd.read_csv(seeds_path)  # what follows reads the file, as a reader of the committed CSV would
    tests = primary_tests(design, seeds)
    tests_path = stem.with_name(f"{stem.name}_tests.csv")
    tests.to_csv(tests_path, index=False)
    declared = design.seeds_at(scale)
    movement, movement_path = _from_runs(stem, "movement", runs, _movement_of(design, scale, declared))
    cost, cost_path = _from_runs(stem, "cost", runs, lambda frame: study_cost(design, frame, scale, declared))
    parts = {
        "seeds": seeds,
        "seeds_name": seeds_path.name,
        "summaries": column_summaries(design, seeds),
        "tests": tests,
        "descriptive": descriptive_comparisons(design, seeds),
        "movement": movement,
        "cost": cost,
        "figure_name": stem.name,
    }
    stem.with_suffix(".md").write_text(study_markdown(design, scale, parts))
    figures = save_figure(study_figure(design, seeds, _caption(design, scale, seeds)), stem.parent, stem.name)
    written = [seeds_path, tests_path, stem.with_suffix(".md"), *figures]
    return written + ([movement_path, cost_path] if runs is not None else [])
