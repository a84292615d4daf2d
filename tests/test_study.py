"""The pre-registered study (conf/study/search_matters.yaml): its tests against scipy and hand-computed values, its
plan, the no-search control's step-0 export, and its analysis on synthetic per-seed data."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats

from analysis.policy_movement import released_movement, search_movement
from analysis.statistics import (
    detectable_difference,
    holm,
    paired_t_power,
    sd_from_half_width,
    seeds_for_power,
    sign_flip_p,
    summarize,
    tost_p,
)
from analysis.study import main as analyse
from analysis.study import primary_tests, seed_table, study_cost, whole_seed_count, whole_seeds
from analysis.study_report import write_study
from dada.config import CONF_DIR
from dada.search.initial import initial_policy, initial_space
from reproduce.study import load_design, main, study_runs

RECIPE = OmegaConf.load(CONF_DIR / "search" / "_base.yaml")


# -- the tests -----------------------------------------------------------------------------------------------------


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running maximum 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02]


def test_sign_flip_matches_scipy_and_the_smallest_p_of_three_seeds():
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(0.25)  # all positive: 2 of 8 flips as extreme
    differences = np.random.default_rng(0).normal(0.4, 1.0, 9)
    scipy_p = stats.permutation_test(
        (differences,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue
    assert sign_flip_p(differences) == pytest.approx(scipy_p)
    with pytest.raises(ValueError, match="at most"):
        sign_flip_p(np.ones(21))


def test_tost_is_the_larger_of_two_one_sided_t_tests():
    differences = np.random.default_rng(1).normal(0.1, 0.5, 15)
    expected = max(
        stats.ttest_1samp(differences, -0.7, alternative="greater").pvalue,
        stats.ttest_1samp(differences, 0.7, alternative="less").pvalue,
    )
    assert tost_p(summarize(differences), 0.7) == pytest.approx(expected)
    assert tost_p(summarize([3.0, 3.5, 2.5]), 0.7) > 0.5  # far outside the margin: no equivalence
    assert math.isnan(tost_p(summarize([1.0]), 0.7))


def test_power_matches_simulation_and_the_declared_seed_count():
    n, difference, sd, alpha = 15, 0.7, 0.733, 0.05 / 3
    rng = np.random.default_rng(2)
    draws = 20_000
    rejected = stats.ttest_1samp(rng.normal(difference, sd, (draws, n)), 0.0, axis=1).pvalue <= alpha
    power = paired_t_power(n, difference, sd, alpha)
    assert rejected.mean() == pytest.approx(power, abs=4 * math.sqrt(power * (1 - power) / draws))
    assert paired_t_power(n, 0.0, sd, alpha) == pytest.approx(alpha)  # no difference: the level
    assert seeds_for_power(difference, sd, alpha) == 15 == load_design("search_matters").seeds["mini"]
    assert seeds_for_power(difference, 0.715, alpha) == 14 and seeds_for_power(difference, sd) == 11
    assert paired_t_power(3, difference, sd) == pytest.approx(0.17, abs=0.01)  # the mini table's n
    assert detectable_difference(n, sd, alpha) == pytest.approx(0.68, abs=0.01)
    assert paired_t_power(n, detectable_difference(n, sd, alpha), sd, alpha) == pytest.approx(0.8)
    assert paired_t_power(2, detectable_difference(2, sd, alpha), sd, alpha) == pytest.approx(0.8)  # df = 1


def test_sd_from_the_committed_half_width():
    # results/table1_mini_paired.csv: DADA (Gumbel) - random, half-width 1.7750 with n = 3 -> sd 0.7145
    assert sd_from_half_width(1.7749565220789698, 3) == pytest.approx(0.7145161533046938)


# -- the no-search control -----------------------------------------------------------------------------------------


def test_step0_export_is_seeded_uniform_and_at_the_start():
    first, again, other = (initial_policy(RECIPE, seed) for seed in (0, 0, 1))
    names = [tuple(op.name for op in sub.operations) for sub in first.sub_policies]
    assert names == [tuple(op.name for op in sub.operations) for sub in again.sub_policies]
    assert names != [tuple(op.name for op in sub.operations) for sub in other.sub_policies]
    assert len(set(names)) == RECIPE.top_k == 25
    assert {(op.probability, op.level) for sub in first.sub_policies for op in sub.operations} == {(0.5, 0.5)}
    assert [sub.weight for sub in first.sub_policies] == pytest.approx([1 / 105] * 25)
    in_table_order = initial_space(RECIPE).export(25)  # the search's own tie-break: the same for every seed
    assert in_table_order.sub_policies[0].operations[0].name == "ShearX"


# -- the plan ------------------------------------------------------------------------------------------------------


def test_study_plan_runs_every_column_per_seed_in_seed_order(capsys):
    design = load_design("search_matters")
    runs = study_runs(design, "mini", seeds=(0, 1, 2))
    assert len(runs) == 3 * (2 + len(design.columns))  # a search and a step-0 export per seed, then the columns
    assert [run.app for run in runs[:4]] == ["search", "search.initial", "search", "search.initial"]
    # seed order, each seed's evaluations after the next seed's searches: a stopped study leaves whole seeds
    assert [run.seed for run in runs if run.app == "train"] == sorted(run.seed for run in runs if run.app == "train")
    position = {run.run_dir: index for index, run in enumerate(runs)}
    assert all(position[run.needs] < position[run.run_dir] for run in runs if run.needs is not None)
    assert max(position[run.run_dir] for run in runs if run.seed == 0) < position[runs[-1].run_dir]
    assert {run.seed for run in runs[4 : 4 + len(design.columns)]} == {0}
    control = next(run for run in runs if run.variant == "no-search" and run.app == "train")
    assert "policy.source=runs/mini/search_fashion-mnist-on-wrn10_1/no-search/seed0/policy.json" in control.overrides
    released = next(run for run in runs if run.variant == "dada-released")
    assert "policy=dada" in released.overrides and not any("policy.source" in o for o in released.overrides)
    assert all("scale.test_images=10000" in run.overrides for run in runs if run.app == "train")
    longer = study_runs(design, "mini", seeds=tuple(range(15)), secondary=True)
    assert len(longer) == 15 * 8 + 2 * 5
    assert main(["search_matters", "--scale", "smoke", "--dry-run"]) == 0
    assert "python -m dada.search.initial experiment=search_fashion-mnist" in capsys.readouterr().out
    with pytest.raises(ValueError, match="valid choices: search_matters"):
        load_design("search_matter")


# -- the analysis, on synthetic per-seed data ----------------------------------------------------------------------


def _synthetic_seeds(n: int = 12) -> pd.DataFrame:
    """DADA 1.5 points below the control and random, 0.05 above TrivialAugment; seed effects shared by all."""
    rng = np.random.default_rng(3)
    seed_effect = rng.normal(0.0, 0.8, n)
    means = {"none": 21.0, "random": 18.5, "trivialaugment": 17.05, "dada-gumbel": 17.0, "no-search": 18.5}
    means["dada-released"] = 17.5
    lines = [
        (key, seed, mean + seed_effect[seed] + rng.normal(0.0, 0.2), 1.0, f"runs/mini/x/{key}/seed{seed}")
        for key, mean in means.items()
        for seed in range(n)
    ]
    return pd.DataFrame.from_records(lines, columns=["column", "seed", "test_error", "train_error", "run_id"])


def test_study_analysis_on_synthetic_seeds(tmp_path):
    design = load_design("search_matters")
    seeds = _synthetic_seeds()
    tests = primary_tests(design, seeds).set_index("reference")
    assert list(tests.index) == ["no-search", "random", "trivialaugment"]
    assert tests.loc["no-search", "verdict"] == "lower error" and tests.loc["random", "verdict"] == "lower error"
    assert tests.loc["trivialaugment", "verdict"] == "equivalent within ±0.7"
    assert tests.loc["no-search", "mean_difference"] == pytest.approx(-1.5, abs=0.2)
    assert tests.loc["no-search", "sign_flip_p"] == pytest.approx(2 / 2**12)  # every seed lower: the smallest p
    assert (tests["t_p_holm"] >= tests["t_p"]).all() and (tests["power_planned"] > 0.6).all()
    stem = tmp_path / "search_matters_mini"
    written = write_study(design, seeds, None, "mini", stem)
    assert {path.name for path in written} >= {"search_matters_mini_seeds.csv", "search_matters_mini.png"}
    report = stem.with_suffix(".md").read_text()
    assert "dada-gumbel − no-search" in report and "equivalent within ±0.7" in report
    assert "INTERIM: 12 of 15 seeds" in report.splitlines()[0]  # 12 whole seeds of the 15 declared at mini
    assert "with the 15 declared; 80 % power would need" in report  # the declared n judged at the observed sd
    again = primary_tests(design, pd.read_csv(stem.with_name("search_matters_mini_seeds.csv")))
    pd.testing.assert_frame_equal(again.set_index("reference"), tests)  # the committed CSV rebuilds the tests


def test_report_at_the_declared_seed_count_is_final_and_states_each_power_once(tmp_path):
    stem = tmp_path / "search_matters_mini"
    write_study(load_design("search_matters"), _synthetic_seeds(15), None, "mini", stem)
    report = stem.with_suffix(".md").read_text()
    assert "INTERIM" not in report
    assert "with these 15 seeds; 80 % power would need" in report and "declared;" not in report


def test_seed_table_reads_the_run_folders_the_plan_names():
    """The evaluations live under the experiment's folder at the scale (``-on-wrn10_1`` at mini), as planned."""
    design = load_design("search_matters")
    planned = [run for run in study_runs(design, "mini", seeds=(0,)) if run.app == "train"]
    runs = pd.DataFrame(
        {
            "run_dir": [str(run.run_dir) for run in planned],
            "scale": "mini",
            "experiment": [run.run_dir.parts[-3] for run in planned],
            "variant": [run.variant for run in planned],
            "seed": 0,
            "status": "FINISHED",
            "test_error_top1": 20.0,
            "train_error_top1": 5.0,
        }
    )
    assert planned[0].run_dir.parts[-3] == "study_search-matters_fashion-mnist-on-wrn10_1"
    table = seed_table(design, runs, "mini", (0,))
    assert list(table["column"]) == [column.key for column in design.columns]


def test_only_whole_seeds_are_analysed():
    design = load_design("search_matters")
    seeds = _synthetic_seeds(4)
    unfinished = seeds[~((seeds["seed"] == 2) & (seeds["column"] == "dada-gumbel"))]  # seed 2 lacks its DADA run
    kept = whole_seeds(design, unfinished)
    assert sorted(kept["seed"].unique()) == [0, 1, 3] and kept.groupby("column").size().eq(3).all()
    assert whole_seed_count(design, seeds) == 4


def test_policy_movement_from_a_search_record(tmp_path):
    record = {"epoch": 2, "policy/weight/000": 0.5, "policy/weight/001": 0.25, "policy/weight/002": 0.25}
    record |= {"policy/probability/000_0": 0.6, "policy/probability/000_1": 0.5, "policy/magnitude/000_0": 0.2}
    record |= {"policy/magnitude/000_1": 0.5}
    lines = [{"epoch": 1, "policy/weight/000": 1.0}, record, {"step/train_loss": 1.0}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    moved = search_movement(tmp_path)
    assert moved["epochs"] == 2 and moved["entropy"] == pytest.approx(1.5 * math.log(2))  # of log 3 at the start
    assert (moved["weight_min_x_uniform"], moved["weight_max_x_uniform"]) == pytest.approx((0.75, 1.5))
    assert (moved["beta_max_abs"], moved["beta_mean_abs"]) == pytest.approx((0.1, 0.05))
    assert (moved["m_max_abs"], moved["m_mean_abs"]) == pytest.approx((0.3, 0.15))
    released = released_movement("cifar10")
    assert 0 < released["beta_mean_abs"] <= released["beta_max_abs"] <= 0.5


def test_study_cost_from_the_run_folders_logged_hours():
    design = load_design("search_matters")
    planned = study_runs(design, "mini", seeds=(0, 1))
    searches = [run for run in planned if run.app == "search"]
    evaluations = [run for run in planned if run.app == "train"]
    records = [
        {
            "app": "search",
            "experiment": run.run_dir.parts[-3],
            "variant": "gumbel",
            "estimator": "gumbel",
            "seed": run.seed,
            "search_device_hours": (500 + 100 * run.seed) / 3600,
            "eval_device_hours": math.nan,
        }
        for run in searches
    ] + [
        {
            "app": "train",
            "experiment": run.run_dir.parts[-3],
            "variant": run.variant,
            "estimator": None,
            "seed": run.seed,
            "search_device_hours": math.nan,
            "eval_device_hours": 300 / 3600,
        }
        for run in evaluations
    ]
    runs = pd.DataFrame.from_records(records).assign(scale="mini", status="FINISHED", unit="CPU-hours")
    runs["run_dir"] = [str(run.run_dir) for run in (*searches, *evaluations)]
    cost = study_cost(design, runs, "mini", (0, 1)).set_index("run")
    assert cost.loc["search (gumbel)", ["n", "median_s", "min_s", "max_s"]].tolist() == pytest.approx(
        [2, 550, 500, 600]
    )
    assert cost.loc["evaluation: no-search", "total_hours"] == pytest.approx(600 / 3600)
    assert len(cost) == 1 + len(design.columns) and set(cost["unit"]) == {"CPU-hours"}


def test_analysis_without_runs_refuses_and_writes_nothing(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(SystemExit, match="no whole seed of study search_matters at mini scale"):
        analyse(
            [
                "search_matters",
                "--scale",
                "mini",
                "--runs",
                str(tmp_path / "runs"),
                "--results",
                str(tmp_path / "results"),
            ]
        )
    assert not any((tmp_path / "results").iterdir())
