"""One run layout: runs started by hand land where `reproduce` puts them and `python -m analysis` finds them."""

from pathlib import Path

import pytest
import torch
from conftest import SEARCH_SMOKE, compose_config

from analysis.__main__ import main as analysis_main
from analysis.runs import read_runs
from dada import layout, schemas
from dada.search.loop import SearchRun
from dada.train.loop import TrainRun

TINY_TRAIN = [
    "scale.train_images=256",
    "scale.test_images=128",
    "scale.train_epochs=1",
    "scale.batch_size=32",
    "device=cpu",
]


def test_run_dir_round_trips():
    path = layout.run_dir("runs", "mini", "search_cifar10", "relax-paper", 3)
    assert path == Path("runs/mini/search_cifar10/relax-paper/seed3")
    assert layout.parse_run_dir(path) == {
        "scale": "mini",
        "experiment": "search_cifar10",
        "variant": "relax-paper",
        "seed": 3,
    }
    with pytest.raises(ValueError, match="is not a run folder"):
        layout.parse_run_dir("runs/search_cifar10/seed3")


@pytest.mark.slow
def test_hand_started_runs_are_found_by_the_analysis(tmp_path, capsys):
    """The README's commands, without run_dir: a search, then an evaluation of its policy, both listed."""
    search = compose_config("search", [*SEARCH_SMOKE, f"runs_root={tmp_path}"])
    SearchRun(search).run()
    expected = layout.run_dir(tmp_path, "smoke", "search_fashion-mnist-on-wrn10_1", "relax", 0)  # the network ran
    assert Path(search.run_dir) == expected and (expected / "policy.json").exists()
    train = compose_config(
        "train",
        [
            *TINY_TRAIN,
            "model=wrn40_2",
            "scale.model=wrn10_1",
            f"runs_root={tmp_path}",
            f"policy.source={expected / 'policy.json'}",
        ],
    )
    TrainRun(train).run()
    runs = read_runs(tmp_path)
    assert set(zip(runs["experiment"], runs["variant"], runs["app"])) == {
        ("search_fashion-mnist-on-wrn10_1", "relax", "search"),
        ("train_fashion-mnist_wrn40_2-on-wrn10_1", "dada", "train"),
    }
    analysis_main(["runs", "--runs", str(tmp_path)])
    listing = capsys.readouterr().out
    assert "search_fashion-mnist-on-wrn10_1" in listing and "train_fashion-mnist_wrn40_2-on-wrn10_1" in listing


@pytest.mark.slow
def test_summaries_round_trip_through_the_schema(search_config, tmp_path):
    """What each app writes reads back through dada.schemas into the same values, and analysis reads it too."""
    SearchRun(search_config()).run()
    search = schemas.read_summary(tmp_path / "run" / "summary.json")
    assert isinstance(search, schemas.SearchSummary) and search.variant == "official"
    assert search.cost.unit == "CPU-hours" and search.cost.search_device_hours > 0
    train = compose_config(
        "train",
        [*TINY_TRAIN, "model=wrn40_2", "scale.model=wrn10_1", "policy=none", f"run_dir={tmp_path}/smoke/e/none/seed0"],
    )
    written = TrainRun(train).run()
    typed = schemas.read_summary(tmp_path / "smoke" / "e" / "none" / "seed0" / "summary.json")
    assert isinstance(typed, schemas.TrainSummary) and typed.policy.name == "none"
    assert typed.to_dict() == {key: value for key, value in written.items() if key != "status"}
    assert schemas.parse_summary(typed.to_dict()) == typed


def test_a_newer_summary_is_refused_by_name():
    data = {"app": "train", "schema_version": schemas.SCHEMA_VERSION + 1}
    with pytest.raises(schemas.SummaryError, match="newer than this dada's"):
        schemas.parse_summary(data)
    with pytest.raises(ValueError, match="unknown gradient metric"):
        schemas.gradient_metric("alpha", "skew")


def test_threads_fixes_torch_cpu_threads_and_refuses_zero(search_config):
    """CPU results depend on the thread count (README, Determinism): ``threads=`` pins it for a run."""
    before = torch.get_num_threads()
    try:
        SearchRun(search_config("threads=1"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads=0 is out of range"):
        SearchRun(search_config("threads=0"))
