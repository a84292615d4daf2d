"""``python -m analysis.study search_matters --scale mini``: a pre-registered study's results, from its per-seed CSV.

The runs' final test errors go to ``results/<name>_<scale>_seeds.csv`` (column, seed, test error, train error, run
id) first; every table, test and the figure are then computed from that file alone (`report_from_seeds`), so the
committed CSV reproduces the report. Policy movement is a property of the searches and comes from their run folders
(``_movement.csv``). The design, the comparisons and the decision rule are the ones ``conf/study/<name>.yaml``
declared before the runs (`reproduce.study.load_design`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pandas as pd

from analysis.runs import finished, read_runs
from analysis.statistics import (
    detectable_difference,
    holm,
    paired,
    paired_t_power,
    sign_flip_p,
    summarize,
    tost_p,
)
from analysis.style import use_file_backend
from analysis.tables import output_name
from reproduce.plan import experiment_folder
from reproduce.study import Design, load_design

SEED_COLUMNS = ("column", "seed", "test_error", "train_error", "run_id")
TEST_COLUMNS = (
    "column",
    "reference",
    "n",
    "mean_difference",
    "sd_difference",
    "ci_low",
    "ci_high",
    "t_p",
    "t_p_holm",
    "sign_flip_p",
    "sign_flip_p_holm",
    "tost_p",
    "tost_p_holm",
    "power_planned",
    "detectable_difference",
    "verdict",
)


def _column_keys(design: Design) -> list[str]:
    return [column.key for column in design.columns] + [design.secondary["key"]]


def evaluation_runs(design: Design, runs: pd.DataFrame, scale: str, seeds: tuple[int, ...]) -> pd.DataFrame:
    """The finished evaluation runs of the study at ``scale`` on ``seeds``, every column."""
    selected = finished(runs)
    return selected[
        (selected["scale"] == scale)
        & (selected["experiment"] == experiment_folder(design.evaluation["experiment"], scale))
        & selected["variant"].isin(_column_keys(design))
        & selected["seed"].isin(list(seeds))
    ]


def seed_table(design: Design, runs: pd.DataFrame, scale: str, seeds: tuple[int, ...]) -> pd.DataFrame:
    """One line per finished evaluation of the study at ``scale`` on ``seeds``, in the design's column order."""
    keys = _column_keys(design)
    selected = evaluation_runs(design, runs, scale, seeds)
    frame = pd.DataFrame(
        {
            "column": selected["variant"],
            "seed": selected["seed"],
            "test_error": selected["test_error_top1"],
            "train_error": selected["train_error_top1"],
            "run_id": selected["run_dir"],
        }
    )
    order = frame["column"].map(keys.index)
    ordered = frame.assign(order=order).sort_values(["order", "seed"]).drop(columns="order").reset_index(drop=True)
    return whole_seeds(design, ordered)


def whole_seeds(design: Design, seeds: pd.DataFrame) -> pd.DataFrame:
    """The lines of the seeds that every column of the design has finished (the amendment of 2026-12-06): every
    column then has the same n, and each comparison pairs the same seeds. The secondary arm's lines are kept on
    those seeds."""
    columns = {column.key for column in design.columns}
    finished_by_seed = seeds[seeds["column"].isin(columns)].groupby("seed")["column"].nunique()
    whole = finished_by_seed.index[finished_by_seed == len(columns)]
    return seeds[seeds["seed"].isin(whole)].reset_index(drop=True)


def whole_seed_count(design: Design, seeds: pd.DataFrame) -> int:
    return int(whole_seeds(design, seeds)["seed"].nunique())


def values_by_seed(seeds: pd.DataFrame, column: str) -> dict[int, float]:
    lines = seeds[seeds["column"] == column]
    return dict(zip(lines["seed"].astype(int), lines["test_error"].astype(float)))


def column_summaries(design: Design, seeds: pd.DataFrame) -> pd.DataFrame:
    """Per column present: n, mean, sd and 95 % CI of the test error, and the mean train error."""
    labels = {column.key: column.label for column in design.columns} | {
        design.secondary["key"]: design.secondary["label"]
    }
    records = []
    for key, lines in seeds.groupby("column", sort=False):
        test = summarize(lines["test_error"])
        records.append((key, labels[key], test.n, test.mean, test.sd, test.low, test.high, lines["train_error"].mean()))
    columns = ["column", "label", "n", "mean", "sd", "ci_low", "ci_high", "train_error_mean"]
    return pd.DataFrame.from_records(records, columns=columns)


def _verdict(difference: float, t_holm: float, tost_holm: float, alpha: float, margin: float) -> str:
    """The pre-declared decision rule: a difference where the Holm-adjusted t-test rejects; equivalence where the
    Holm-adjusted TOST rejects; otherwise inconclusive."""
    if t_holm <= alpha:
        return "lower error" if difference < 0 else "higher error"
    if tost_holm <= alpha:
        return f"equivalent within ±{margin:g}"
    return "inconclusive"


def primary_tests(design: Design, seeds: pd.DataFrame) -> pd.DataFrame:
    """The pre-declared comparisons, primary minus each reference on shared seeds: paired t, sign-flip permutation
    and TOST p-values, each raw and Holm-adjusted over the family; the planned power at the n reached, the
    difference detectable with 80 % power at the observed sd, and the verdict."""
    primary, alpha, margin = values_by_seed(seeds, design.primary), design.alpha, design.tost_margin
    results = [paired(primary, values_by_seed(seeds, reference)) for reference in design.comparisons]
    raw = {
        "t": [result.p_value for result in results],
        "flip": [
            sign_flip_p([primary[seed] - values_by_seed(seeds, ref)[seed] for seed in result.seeds])
            for ref, result in zip(design.comparisons, results)
        ],
        "tost": [tost_p(result.difference, margin) for result in results],
    }
    adjusted = {name: _holm_or_nan(values) for name, values in raw.items()}
    power = design.power
    records = []
    for index, (reference, result) in enumerate(zip(design.comparisons, results)):
        change, m = result.difference, len(design.comparisons)
        records.append(
            (
                design.primary,
                reference,
                change.n,
                change.mean,
                change.sd,
                change.low,
                change.high,
                raw["t"][index],
                adjusted["t"][index],
                raw["flip"][index],
                adjusted["flip"][index],
                raw["tost"][index],
                adjusted["tost"][index],
                paired_t_power(change.n, power["difference"], power["sd"][reference], alpha / m),
                detectable_difference(change.n, change.sd, alpha / m, power["target"]),
                _verdict(change.mean, adjusted["t"][index], adjusted["tost"][index], alpha, margin),
            )
        )
    return pd.DataFrame.from_records(records, columns=list(TEST_COLUMNS))


def _holm_or_nan(p_values: list[float]) -> list[float]:
    """Holm over the family; NaN for every member while any p is missing (too few seeds)."""
    if any(math.isnan(p) for p in p_values):
        return [math.nan] * len(p_values)
    return holm(p_values)


def descriptive_comparisons(design: Design, seeds: pd.DataFrame) -> pd.DataFrame:
    """Not tested, shown: every column minus no policy, the released policy minus the control, and the secondary
    arm minus the primary column (unadjusted paired t p)."""
    present = list(dict.fromkeys(seeds["column"]))
    pairs = [(key, "none") for key in present if key != "none"]
    pairs += [("dada-released", design.control), (design.secondary["key"], design.primary)]
    records = []
    for column, reference in pairs:
        if column in present and reference in present:
            result = paired(values_by_seed(seeds, column), values_by_seed(seeds, reference))
            change = result.difference
            records.append((column, reference, change.n, change.mean, change.low, change.high, result.p_value))
    columns = ["column", "reference", "n", "mean_difference", "ci_low", "ci_high", "t_p"]
    return pd.DataFrame.from_records(records, columns=columns)


def study_runs_frame(design: Design, runs: pd.DataFrame, scale: str, seeds: tuple[int, ...]) -> pd.DataFrame:
    """The finished search runs of the study (its search, the step-0 export, the longer search) on ``seeds``."""
    searches = finished(runs)
    return searches[
        (searches["app"] == "search")
        & (searches["scale"] == scale)
        & (searches["experiment"] == experiment_folder(design.search["experiment"], scale))
        & (searches["estimator"] == design.search["estimator"])
        & searches["seed"].isin(list(seeds))
    ]


def study_cost(design: Design, runs: pd.DataFrame, scale: str, seeds: tuple[int, ...]) -> pd.DataFrame:
    """The measured cost of every finished run on ``seeds``, per search and per evaluation column: n, median, min and
    max seconds and the total, from the device-hours each run logged (its search loop, or its training and tests;
    CPU-hours on a CPU)."""
    searches = study_runs_frame(design, runs, scale, seeds)
    evaluations = evaluation_runs(design, runs, scale, seeds)
    parts = [(f"search ({design.search['estimator']})", searches, "search_device_hours")]
    parts += [
        (f"evaluation: {key}", evaluations[evaluations["variant"] == key], "eval_device_hours")
        for key in _column_keys(design)
    ]
    records = []
    for kind, lines, column in parts:
        seconds = lines[column].dropna() * 3600.0
        if len(seconds):
            unit = lines["unit"].iloc[0]
            records.append(
                (kind, len(seconds), seconds.median(), seconds.min(), seconds.max(), seconds.sum() / 3600, unit)
            )
    columns = ["run", "n", "median_s", "min_s", "max_s", "total_hours", "unit"]
    return pd.DataFrame.from_records(records, columns=columns)


def main(argv: list[str] | None = None) -> None:
    from analysis.study_report import write_study

    use_file_backend()
    parser = argparse.ArgumentParser(prog="python -m analysis.study", description=__doc__.splitlines()[0])
    parser.add_argument("study", help="a design in conf/study/, e.g. search_matters")
    parser.add_argument("--scale", default="smoke", choices=("smoke", "mini", "paper"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs root")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--from-seeds", type=Path, help="a committed _seeds.csv: rebuild the report from it alone")
    args = parser.parse_args(argv)
    design = load_design(args.study)
    stem = args.results / output_name(design.name, args.scale)
    if args.from_seeds:
        seeds, runs = pd.read_csv(args.from_seeds), None
    else:
        runs = read_runs(args.runs)
        seeds = seed_table(design, runs, args.scale, design.seeds_at(args.scale))
        if seeds.empty:  # an empty report would overwrite the committed one: refuse, writing nothing
            raise SystemExit(
                f"no whole seed of study {design.name} at {args.scale} scale under {args.runs}: nothing written, "
                f"{args.results} left as it is. Run `make study-search SCALE={args.scale}` (it restores the committed "
                f"runs), or pass --runs, or --from-seeds {stem.name}_seeds.csv"
            )
    for path in write_study(design, seeds, runs, args.scale, stem):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
