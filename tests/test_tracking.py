"""dada.tracking: the run folder is complete, MLflow and W&B receive the run, failing backends are switched off."""

import json
import shutil
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
import yaml
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from dada.tracking import DeviceClock, TrackingWarning, create_tracker, tracker_for

CONFIG = {"optim": {"lr": 0.1, "milestones": [60, 120]}, "dataset": "cifar10"}
TAGS = {"estimator": "gumbel", "dataset": "cifar10", "model": "wrn40_2", "scale": "smoke", "table": "table1"}


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def small_figure() -> Figure:
    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1], [1, 0])
    return figure


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """An initialised MLflow database, made once: creating one runs every schema migration (seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "empty.db"
    MlflowClient(sqlite_uri(path)).search_experiments()
    return path


def copy_mlflow_db(empty_mlflow_db: Path, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_mlflow_db, path)
    return sqlite_uri(path)


def test_jsonl_holds_one_line_per_call_and_round_trips(tmp_path):
    run_dir = tmp_path / "run"
    logged = [
        {"train/loss": 2.5, "train/top1": 3},
        {"train/loss": torch.tensor(1.25), "search/alpha_entropy": np.float32(0.5)},
        {"valid/loss": np.float64(0.125)},
    ]
    with create_tracker(run_dir=run_dir, config=CONFIG, tags=TAGS) as tracker:
        for step, metrics in enumerate(logged):
            tracker.log_metrics(metrics, step=step * 10)
        tracker.log_dict("policy", {"sub_policies": [[["Rotate", 0.5, 0.3]]]})
        png = tracker.log_figure(small_figure(), "alpha_heatmap")
        tracker.set_summary({"test/top1_error": torch.tensor(2.75), "policy": "dada-cifar10"})

    records = read_metrics(run_dir)
    assert [record["step"] for record in records] == [0, 10, 20]
    for record, metrics in zip(records, logged):
        assert {key: record[key] for key in metrics} == {key: float(value) for key, value in metrics.items()}
        assert record["time"] > 0
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == CONFIG
    assert json.loads((run_dir / "policy.json").read_text()) == {"sub_policies": [[["Rotate", 0.5, 0.3]]]}
    assert png == run_dir / "figures" / "alpha_heatmap.png" and png.stat().st_size > 0
    assert (run_dir / "figures" / "alpha_heatmap.pdf").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary == {"status": "FINISHED", "test/top1_error": 2.75, "policy": "dada-cifar10"}
    run_info = json.loads((run_dir / "run_info.json").read_text())
    assert run_info["git_commit"] and run_info["device_name"] and run_info["torch_version"] == torch.__version__
    assert run_info["backends"] == {}


def test_failed_block_closes_the_run_as_failed(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with create_tracker(run_dir=tmp_path) as tracker:
            tracker.log_metrics({"train/loss": 1.0}, step=0)
            1 / 0
    assert tracker.closed
    assert json.loads((tmp_path / "summary.json").read_text()) == {"status": "FAILED"}
    with pytest.raises(RuntimeError, match="closed"):
        tracker.log_metrics({"train/loss": 1.0}, step=1)


def test_bad_input_raises_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        create_tracker(("jsonl", "tensorboard"), run_dir=tmp_path)
    with pytest.raises(ValueError, match="offline"):
        create_tracker(("wandb",), run_dir=tmp_path, wandb_mode="cloud")
    tracker = create_tracker(run_dir=tmp_path)
    with pytest.raises(TypeError, match="real number"):
        tracker.log_metrics({"train/loss": "0.3"}, step=0)
    with pytest.raises(TypeError, match="real number"):
        tracker.log_metrics({"train/loss": torch.ones(2)}, step=0)
    with pytest.raises(ValueError, match="reserved"):
        tracker.log_metrics({"step": 1.0}, step=0)
    with pytest.raises(ValueError, match="inside the run folder"):
        tracker.log_text("../outside.txt", "text")
    with pytest.raises(ValueError, match="reserved"):
        tracker.set_summary({"status": "done"})
    with pytest.raises(ValueError, match="FINISHED"):
        tracker.close("DONE")
    tracker.close()
    assert (tmp_path / "metrics.jsonl").read_text() == ""


def test_tracker_for_reads_the_logger_node_and_names_the_run(tmp_path, monkeypatch):
    """The apps' tracker: backends and options from ``cfg.logger``, the run named <name>/seed<N>, cfg resolved."""
    from dada.tracking import _tracker

    logger = {
        "backends": ["jsonl", "mlflow"],
        "mlflow_uri": "sqlite:///x.db",
        "wandb_mode": "online",
        "wandb_project": "project",
        "experiment": "table1",
        "heatmap_every": 5,
    }
    cfg = OmegaConf.create({"name": "search-x", "seed": 3, "lr": 0.1, "lr_copy": "${lr}", "logger": logger})
    calls = []
    monkeypatch.setattr(_tracker, "create_tracker", lambda *args, **kwargs: calls.append((args, kwargs)))
    tracker_for(cfg, tmp_path / "run", TAGS, resume_epoch=2)
    monkeypatch.undo()
    assert calls == [
        (
            (["jsonl", "mlflow"],),
            {
                "run_dir": tmp_path / "run",
                "config": cfg,
                "tags": TAGS,
                "experiment": "table1",
                "run_name": "search-x/seed3",
                "mlflow_uri": "sqlite:///x.db",
                "wandb_mode": "online",
                "wandb_project": "project",
                "resume_epoch": 2,
                "used_policy": None,
            },
        )
    ]
    with tracker_for(OmegaConf.merge(cfg, {"logger": {"backends": ["jsonl"]}}), tmp_path / "run", TAGS) as tracker:
        assert tracker.backends == ["jsonl"]
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["lr_copy"] == 0.1


def test_run_folder_failing_is_an_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        create_tracker(run_dir=blocker / "run")


def test_mlflow_runs_are_searchable_with_tags_metrics_and_artifacts(tmp_path, monkeypatch, empty_mlflow_db):
    import mlflow

    uri = copy_mlflow_db(empty_mlflow_db, tmp_path / "store" / "mlruns.db")
    outside = tmp_path / "notes.txt"
    outside.write_text("kept at the artifact root")
    options = {"backends": ("mlflow",), "experiment": "test", "mlflow_uri": uri}
    first = create_tracker(run_dir=tmp_path / "a", config=CONFIG, tags=TAGS, **options)
    second = create_tracker(run_dir=tmp_path / "b", tags={"estimator": "relax"}, **options)
    for step in range(3):
        first.log_metrics({"train/loss": 1.0 / (step + 1), "alpha[Rotate]": 0.5}, step=step)
        second.log_metrics({"train/loss": 10.0 + step}, step=step)
    first.log_dict("policy.json", {"sub_policies": []})
    first.log_figure(small_figure(), "heatmap", formats=("png",))
    first.log_artifact(outside)
    first.set_summary({"test/top1_error": 3.5, "cost": {"device_hours": 0.25, "unit": "CPU-hours"}})
    first.close()
    second.close("FAILED")

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    runs = mlflow.search_runs(experiment_names=["test"]).set_index("tags.estimator")
    assert sorted(runs.index) == ["gumbel", "relax"]
    gumbel, relax = runs.loc["gumbel"], runs.loc["relax"]
    assert (gumbel["status"], relax["status"]) == ("FINISHED", "FAILED")
    assert gumbel["metrics.train/loss"] == pytest.approx(1.0 / 3) and relax["metrics.train/loss"] == 12.0
    assert gumbel["metrics.alpha_Rotate_"] == 0.5 and gumbel["metrics.test/top1_error"] == 3.5
    assert gumbel["metrics.cost.device_hours"] == 0.25 and gumbel["tags.summary.cost.unit"] == "CPU-hours"
    assert gumbel["params.optim.lr"] == "0.1" and gumbel["params.optim.milestones"] == "[60, 120]"
    assert gumbel["tags.table"] == "table1" and gumbel["tags.git_commit"] == gumbel["tags.mlflow.source.git.commit"]
    assert gumbel["tags.device_name"]
    run_info = json.loads((tmp_path / "a" / "run_info.json").read_text())
    assert run_info["backends"]["mlflow"] == {"tracking_uri": uri, "run_id": gumbel["run_id"]}
    artifacts = Path(urlparse(gumbel["artifact_uri"]).path)
    assert artifacts.is_relative_to(tmp_path / "store" / "mlartifacts")
    for name in ("policy.json", "figures/heatmap.png", "notes.txt", "summary.json"):
        assert (artifacts / name).is_file(), name


def test_mlflow_default_store_is_sqlite_in_the_working_directory(tmp_path, monkeypatch, empty_mlflow_db):
    copy_mlflow_db(empty_mlflow_db, tmp_path / "mlruns.db")
    monkeypatch.chdir(tmp_path)
    with create_tracker(("mlflow",), run_dir="run") as tracker:
        tracker.log_text("notes.txt", "hello")
    run_info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert run_info["backends"]["mlflow"]["tracking_uri"] == sqlite_uri(tmp_path / "mlruns.db")
    assert (tmp_path / "mlruns.db").is_file()
    assert list((tmp_path / "mlartifacts").glob("*/artifacts/notes.txt"))


def test_wandb_offline_run_needs_no_network_or_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # would fail fast if anything tried to connect
    run_dir = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingWarning)
        with create_tracker(("wandb",), run_dir=run_dir, config=CONFIG, tags=TAGS) as tracker:
            tracker.log_metrics({"train/loss": 0.5}, step=0)
            tracker.log_figure(small_figure(), "heatmap", formats=("png",))
            tracker.log_dict("policy", {"sub_policies": []})
            tracker.set_summary({"test/top1_error": 3.5})
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert list(offline_runs[0].glob("run-*.wandb"))
    assert (offline_runs[0] / "files" / "policy.json").is_file()
    assert list((offline_runs[0] / "files" / "media" / "images").rglob("heatmap*.png"))
    assert len(read_metrics(run_dir)) == 1


def test_backend_that_cannot_start_is_warned_about_and_left_out(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.warns(TrackingWarning, match="mlflow"):
        tracker = create_tracker(("jsonl", "mlflow"), run_dir=tmp_path / "run", mlflow_uri=sqlite_uri(blocker / "x.db"))
    assert tracker.backends == ["jsonl"]
    for step in range(4):
        tracker.log_metrics({"train/loss": float(step)}, step=step)
    tracker.close()
    assert [record["train/loss"] for record in read_metrics(tmp_path / "run")] == [0.0, 1.0, 2.0, 3.0]


def test_backend_failing_mid_run_is_warned_about_once_and_switched_off(tmp_path, monkeypatch, empty_mlflow_db):
    from mlflow.tracking import MlflowClient

    from dada.tracking._mlflow import MlflowBackend

    uri = copy_mlflow_db(empty_mlflow_db, tmp_path / "mlruns.db")
    tracker = create_tracker(("mlflow",), run_dir=tmp_path / "run", mlflow_uri=uri)
    tracker.log_metrics({"train/loss": 0.0}, step=0)

    def broken_log_metrics(self, metrics, step):
        raise ConnectionError("database went away")

    monkeypatch.setattr(MlflowBackend, "log_metrics", broken_log_metrics)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in range(1, 5):
            tracker.log_metrics({"train/loss": float(step)}, step=step)
        tracker.close()
    messages = [str(warning.message) for warning in caught if warning.category is TrackingWarning]
    assert len(messages) == 1 and "mlflow" in messages[0] and "database went away" in messages[0]
    assert tracker.backends == ["jsonl"]
    assert [record["step"] for record in read_metrics(tmp_path / "run")] == [0, 1, 2, 3, 4]
    run_id = json.loads((tmp_path / "run" / "run_info.json").read_text())["backends"]["mlflow"]["run_id"]
    assert MlflowClient(uri).get_run(run_id).info.status == "FAILED"


def test_device_clock_on_cpu_counts_cpu_hours():
    clock = DeviceClock("cpu", device_count=2)
    with clock:
        torch.randn(256, 256) @ torch.randn(256, 256)
    first_span = clock.seconds
    clock.start()
    total = clock.stop()
    assert clock.unit == "CPU-hours" and clock.device_name and not clock.running
    assert total >= first_span > 0
    assert clock.device_hours == pytest.approx(2 * total / 3600)
    assert clock.as_metrics("cost/search_", num_images=100) == {
        "cost/search_device_hours": clock.device_hours,
        "cost/search_seconds": total,
        "cost/search_images_per_second": 100 / total,
    }
    assert clock.as_tags("cost/search_")["cost/search_unit"] == "CPU-hours"
    with pytest.raises(RuntimeError, match="not running"):
        clock.stop()
    with pytest.raises(ValueError, match="at least 1"):
        DeviceClock("cpu", device_count=0)


def test_lineage_tags_link_an_evaluation_to_its_search(tmp_path):
    from dada.tracking.lineage import lineage_tags, searched_policy

    search = tmp_path / "runs" / "smoke" / "search_fashion-mnist" / "gumbel" / "seed0"
    search.mkdir(parents=True)
    (search / "policy.json").write_text("{}")
    (search / "summary.json").write_text(json.dumps({"estimator": "gumbel", "status": "FINISHED"}))
    (search / "tracking_ids.json").write_text(json.dumps({"mlflow": {"run_id": "abc", "tracking_uri": "x"}}))
    cfg = OmegaConf.create(
        {"experiment_name": "table1_fashion-mnist", "policy": {"source": str(search / "policy.json")}}
    )
    assert lineage_tags(cfg) == {
        "experiment": "table1_fashion-mnist",
        "search.run_dir": str(search.resolve()),
        "estimator": "gumbel",
        "search.mlflow_run_id": "abc",
    }
    assert searched_policy(cfg) == (search / "policy.json").resolve()
    shipped = OmegaConf.create({"experiment_name": "e", "policy": {"source": "cifar10"}})
    assert lineage_tags(shipped) == {"experiment": "e"} and searched_policy(shipped) is None


def test_dashboards_get_an_epochs_step_records_only_once_the_epoch_is_recorded(tmp_path):
    """A run killed mid-epoch sent none of that epoch's step records, so its resume adds no second point."""
    from dada.tracking._backend import Backend

    class Recorder(Backend):
        def __init__(self):
            self.steps = []

        def log_metrics(self, metrics, step):
            self.steps.append(step)

    recorder = Recorder()
    with pytest.raises(KeyboardInterrupt):
        with create_tracker(("jsonl",), run_dir=tmp_path) as killed:
            killed._backends.append(recorder)
            killed.log_metrics({"step/loss": 1.0}, step=1)
            killed.log_metrics({"epoch": 1, "loss": 1.0}, step=2)
            killed.log_metrics({"step/loss": 0.9}, step=3)
            raise KeyboardInterrupt
    assert recorder.steps == [1, 2]  # step 3 (epoch 2, interrupted) stayed back
    assert [record["step"] for record in read_metrics(tmp_path)] == [1, 2, 3]  # the run folder has every record
