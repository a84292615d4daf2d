"""The reproduction plan and runner: which runs a target needs, in which order, and what happens without data."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import compose_config
from tqdm import tqdm

from reproduce import Run, execute, missing_data, plan, plan_many, runner
from reproduce.cli import local_threads_and_jobs, main, parse_seeds, targets_of
from reproduce.study import column_jobs, load_design
from reproduce.tables import LAYOUTS, get_layout, jobs

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_table1_smoke_plan_lists_searches_before_evaluations():
    runs = plan("table1", "smoke", (0, 1))
    apps = [run.app for run in runs]
    assert apps == sorted(apps, key=lambda app: app != "search") and "train" in apps
    fashion = [run for run in runs if run.dataset == "fashion-mnist"]
    # per seed: searches with RELAX, Gumbel and RELAX (paper variant); 7 baselines and 3 DADA columns
    assert len(fashion) == 2 * (3 + 7 + 3)
    first = fashion[0]
    assert first.command("python") == [
        "python",
        "-m",
        "dada.search",
        "experiment=search_fashion-mnist",
        "scale=smoke",
        "seed=0",
        "runs_root=runs",
        "variant_name=relax",
        "estimator=relax",
        "search.variant=official",
    ]


@pytest.mark.parametrize("target", ["table1", "table5", "table6"])
def test_the_apps_place_every_planned_run_where_the_plan_expects_it(target, tmp_path):
    """One layout: each app composes its run_dir from the plan's overrides to the folder the plan tracks."""
    for run in plan(target, "mini", (0,), tmp_path / "runs"):
        config = compose_config(run.app, run.command()[3:])
        assert Path(config.run_dir) == run.run_dir, run


def test_dada_evaluation_reads_its_seeds_search_policy():
    runs = {(run.experiment, run.variant, run.seed): run for run in plan("table1", "smoke", (0, 1))}
    evaluation = runs[("table1_fashion-mnist_wrn40_2", "dada-gumbel", 1)]
    search = runs[("search_fashion-mnist", "gumbel", 1)]
    assert evaluation.needs == search.run_dir
    assert evaluation.overrides == ("policy=dada", f"policy.source={search.run_dir / 'policy.json'}")
    assert runs[("table1_fashion-mnist_wrn40_2", "none", 0)].overrides == ("policy=none",)
    order = list(runs.values())
    assert order.index(search) < order.index(evaluation)


def test_fast_aa_cells_run_its_released_policy():
    cells = [
        cell
        for name in ("table2", "table3", "table4", "fig1")
        for cell in get_layout(name).cells
        if "Fast AA" in cell.column
    ]
    assert cells and all(cell.job.overrides == ("policy=fastaa",) and cell.job.search is None for cell in cells)
    assert all(cell.job is None for cell in get_layout("table2").cells if cell.column == "PBA")
    runs = {(run.experiment, run.variant): run for run in plan("fig1", "smoke", (0,))}
    fashion = runs[("table1_fashion-mnist_wrn40_2", "fastaa")]
    assert fashion.needs is None and fashion.overrides == ("policy=fastaa",)
    table2 = {run.run_dir for run in plan("table2", "smoke", (0,)) if run.variant == "fastaa"}
    assert table2 & {run.run_dir for run in runs.values()} == {  # Table 2's runs give Fig. 1's rows
        Path(f"runs/smoke/table2_{dataset}_wrn28_10-on-wrn10_1/fastaa/seed0") for dataset in ("cifar10", "cifar100")
    }


def test_full_search_is_capped_only_at_smoke_scale():
    smoke = [run for run in plan("table6", "smoke", (0,)) if run.experiment == "search_fashion-mnist-full"]
    paper = [run for run in plan("table6", "paper", (0,)) if run.experiment == "search_fashion-mnist-full"]
    assert smoke[0].overrides == ("estimator=relax", "search.variant=official", "scale.search_images=4000")
    assert paper[0].overrides == ("estimator=relax", "search.variant=official")
    assert paper[0].run_dir == Path("runs/paper/search_fashion-mnist-full/relax/seed0")


def test_targets_share_runs_instead_of_repeating_them():
    runs = plan_many(("table1", "table2", "table6", "fig1", "fig3a", "fig3b"), "smoke", (0,))
    assert len({run.run_dir for run in runs}) == len(runs)
    assert sum(run.experiment == "search_cifar10" and run.variant == "relax" for run in runs) == 1


def test_missing_data_set_is_detected(tmp_path):
    assert missing_data("cifar10", tmp_path) == tmp_path / "cifar-10-batches-py"
    assert missing_data("svhn-extra", tmp_path) == tmp_path / "svhn"
    assert missing_data("imagenet", tmp_path) == tmp_path / "imagenet"
    assert missing_data("fashion-mnist", tmp_path) is None  # the embedded set, from the Debian package
    from dada.data import get_spec

    for path in get_spec("cifar10").train_paths:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    assert missing_data("cifar10", tmp_path) is None


@pytest.fixture
def fake_python(tmp_path):
    """An executable standing in for python: writes a FINISHED summary.json where the app would place the run, with
    the times it started and ended (a search takes 0.3 s)."""
    script = tmp_path / "fake_python"
    script.write_text(
        f"#!{sys.executable}\n"
        + "\n".join(
            [
                "import json, os, pathlib, sys, time",
                "started = time.time()",
                "time.sleep(0.3 if sys.argv[2] == 'dada.search' else 0)",
                "arg = dict(a.split('=', 1) for a in sys.argv[3:])",
                "run_dir = pathlib.Path(arg['runs_root'], arg['scale'], arg['experiment'], arg['variant_name'],"
                " 'seed' + arg['seed'])",
                "run_dir.mkdir(parents=True, exist_ok=True)",
                "summary = {'status': 'FINISHED', 'root': os.environ['DATA_ROOT'], 'started': started, "
                "'ended': time.time()}",
                "(run_dir / 'summary.json').write_text(json.dumps(summary))",
            ]
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def _run(tmp_path, app, experiment, dataset, needs=None):
    run_dir = tmp_path / "runs" / "smoke" / experiment / "v" / "seed0"
    return Run(app, experiment, "v", 0, "smoke", dataset, (), run_dir, needs)


def test_runner_runs_skips_and_records_missing_data(tmp_path, fake_python, monkeypatch):
    search = _run(tmp_path, "search", "search_fashion-mnist", "fashion-mnist")
    no_data = _run(tmp_path, "search", "search_cifar10", "cifar10")
    orphan = _run(tmp_path, "train", "table2_cifar10_wrn40_2", "fashion-mnist", needs=no_data.run_dir)
    evaluation = _run(tmp_path, "train", "table1_fashion-mnist_wrn40_2", "fashion-mnist", needs=search.run_dir)
    data_root = tmp_path / "data"
    totals = []
    monkeypatch.setattr(runner, "tqdm", lambda total, **kwargs: totals.append(total) or tqdm(total=total, **kwargs))
    outcomes = execute([search, no_data, orphan, evaluation], data_root, python=fake_python)
    assert totals == [2]  # the bar counts the search and its evaluation, not the runs without data
    statuses = [outcome.status for outcome in outcomes]
    assert statuses[0] == "ran" and statuses[3] == "ran"
    assert statuses[1] == f"not run: no data at {data_root / 'cifar-10-batches-py'}"
    assert statuses[2].startswith("not run: its search") and not outcomes[2].ok
    assert json.loads((search.run_dir / "summary.json").read_text())["root"] == str(data_root)
    again = execute([search], data_root, python=fake_python)
    assert again[0].status == "finished earlier"


def test_runner_with_two_jobs_starts_each_evaluation_after_its_search(tmp_path, fake_python):
    searches = [_run(tmp_path, "search", f"search_{name}", "fashion-mnist") for name in ("a", "b")]
    evaluations = [
        _run(tmp_path, "train", f"table1_{index}", "fashion-mnist", needs=search.run_dir)
        for index, search in enumerate(searches)
    ]
    outcomes = execute([*searches, *evaluations], tmp_path / "data", python=fake_python, jobs=2)
    assert [outcome.run for outcome in outcomes] == [*searches, *evaluations]  # plan order, whatever finished first
    assert all(outcome.status == "ran" for outcome in outcomes)
    summaries = {
        run.run_dir: json.loads((run.run_dir / "summary.json").read_text()) for run in [*searches, *evaluations]
    }
    for search, evaluation in zip(searches, evaluations):
        assert summaries[search.run_dir]["ended"] <= summaries[evaluation.run_dir]["started"]
    assert summaries[searches[1].run_dir]["started"] < summaries[searches[0].run_dir]["ended"]  # two at once


def test_smoke_and_mini_pin_one_thread_per_run_and_fill_the_cores_unless_told_otherwise():
    assert local_threads_and_jobs("smoke", None, [], cpus=16) == (["threads=1"], 16)
    assert local_threads_and_jobs("mini", 2, [], cpus=16) == (["threads=1"], 2)
    assert local_threads_and_jobs("smoke", None, ["threads=4"], cpus=16) == ([], 4)
    assert local_threads_and_jobs("paper", None, [], cpus=16) == ([], 1)  # the paper: torch's default threads
    assert local_threads_and_jobs("paper", 2, [], cpus=16) == (["threads=8"], 2)  # runs share the CPUs
    assert local_threads_and_jobs("paper", 2, ["threads=3"], cpus=16) == ([], 2)
    with pytest.raises(SystemExit):
        main(["table1", "--jobs", "0", "--dry-run"])


def test_runner_reports_a_failing_run(tmp_path):
    run = _run(tmp_path, "search", "search_fashion-mnist", "fashion-mnist")
    outcome = execute([run], tmp_path / "data", python="false")[0]
    assert outcome.status.startswith("failed (exit 1)") and not outcome.ok


def _experiments() -> dict[str, str]:
    """Every experiment a table or a study (conf/study/) runs, with its app."""
    used = {job.experiment: job.app for name in LAYOUTS for job in jobs(get_layout(name))}
    study = load_design("search_matters")
    return used | {job.experiment: job.app for job in column_jobs(study)}


def test_every_experiment_file_is_used_and_composes():
    used = _experiments()
    files = {path.stem for path in (CONF / "experiment").glob("*.yaml")}
    assert files == set(used)
    for experiment, app in used.items():
        config = compose_config(app, [f"experiment={experiment}", "scale=smoke"])
        assert config.dataset.name in experiment.replace("-full", "")


def test_experiment_files_open_with_package_command_and_paper_cell():
    apps = _experiments()
    for path in sorted((CONF / "experiment").glob("*.yaml")):
        lines = path.read_text().splitlines()
        assert lines[0] == "# @package _global_", path.name
        header = "\n".join(line for line in lines if line.startswith("#"))
        app = apps[path.stem]
        assert f"python -m dada.{app} experiment={path.stem}" in header
        assert "Paper:" in header and "Expected run time:" in header, path.name


def test_cli_seeds_targets_and_table5(capsys):
    assert parse_seeds("0,1,2") == (0, 1, 2)
    assert targets_of("figures") == ("fig1", "fig3a", "fig3b")
    with pytest.raises(ValueError, match="valid choices"):
        targets_of("table7")
    assert main(["table5", "--dry-run", "--seeds", "0"]) == 0
    assert "python -m dada.detect experiment=table5_coco_retinanet" in capsys.readouterr().out
    assert main(["table1", "--dry-run", "--seeds", "3"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("python -m dada.search experiment=search_fashion-mnist") and "seed=3" in printed[0]


def test_layout_names_are_checked():
    with pytest.raises(ValueError, match="valid choices: table1"):
        get_layout("table7")
    with pytest.raises(ValueError, match="unknown scale"):
        plan("table1", "tiny")
    assert os.path.basename(str(plan("fig3a", "smoke")[0].run_dir.parent.parent)) == "search_fashion-mnist-on-wrn10_1"
