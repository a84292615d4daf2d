"""A smoke search seen from the outside: MLflow, W&B and the run folder; a broken backend; the UI; submitit."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import SEARCH_SMOKE, compose_config

from dada.search.loop import SearchRun

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def many_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("many")
    cfg = compose_config(
        "search",
        [
            *SEARCH_SMOKE,
            f"run_dir={root}/run",
            "logger=many",
            "estimator=relax",
            f"logger.mlflow_uri=sqlite:///{root}/mlruns.db",
            "table=table1",
        ],
    )
    summary = SearchRun(cfg).run()
    return root, summary


def test_logger_many_lands_in_every_backend(many_run):
    import mlflow

    root, summary = many_run
    lines = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("policy/weight/000" in line for line in lines)
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlruns.db")
    runs = mlflow.search_runs(experiment_names=["dada"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["tags.estimator"] == "relax" and run["tags.table"] == "table1" and run["tags.scale"] == "smoke"
    for metric in (
        "policy_summary/alpha_entropy",
        "policy_summary/mean_abs_magnitude_shift",
        "grad/alpha/variance",
        "grad/probability/variance",
        "search/surrogate_loss",
        "cost.search_device_hours",
        "search_seconds",
    ):
        assert f"metrics.{metric}" in runs.columns, metric
    # one name per value: the numbered policy values stay in metrics.jsonl, no cost/ twin, no schema_version metric
    assert not [name for name in runs.columns if name.startswith(("metrics.policy/", "metrics.cost/"))]
    assert "metrics.schema_version" not in runs.columns
    artifacts = {item.path for item in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"config.yaml", "metrics.jsonl", "policy.json", "summary.json", "tables", "figures"} <= artifacts
    assert list((root / "run" / "wandb").glob("offline-run-*"))


def test_broken_mlflow_does_not_stop_the_search(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database's folder should be")
    cfg = compose_config(
        "search",
        [
            *SEARCH_SMOKE,
            f"run_dir={tmp_path}/run",
            "logger=mlflow",
            "estimator=gumbel",
            f"logger.mlflow_uri=sqlite:///{blocker}/mlruns.db",
        ],
    )
    with pytest.warns(Warning, match="(?i)mlflow"):
        summary = SearchRun(cfg).run()
    assert summary["status"] == "FINISHED"
    epochs = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if "epoch" in json.loads(line)
    ]
    assert [line["epoch"] for line in epochs] == [1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def test_mlflow_ui_serves_the_search_over_rest(many_run):
    """What `make mlflow-ui` starts, queried over its REST API, then stopped."""
    root, _ = many_run
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            f"sqlite:///{root}/mlruns.db",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                experiment = _request(f"{base}/experiments/get-by-name?experiment_name=dada")["experiment"]
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the MLflow UI did not come up"
                time.sleep(1)
        runs = _request(f"{base}/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        tags = {tag["key"]: tag["value"] for tag in runs[0]["data"]["tags"]}
        metrics = {metric["key"] for metric in runs[0]["data"]["metrics"]}
        assert tags["estimator"] == "relax"
        assert {"policy_summary/alpha_entropy", "grad/alpha/variance"} <= metrics
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    """The cluster path (hydra/launcher=slurm_gpu) on this machine: submitit's local executor."""
    command = [
        sys.executable,
        "-m",
        "dada.search",
        "--multirun",
        "hydra/launcher=local",
        *SEARCH_SMOKE,
        "estimator=gumbel",
        "seed=0",
        f"hydra.sweep.dir={tmp_path}/sweep",
        f"run_dir={tmp_path}/run",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "FINISHED"
    assert list((tmp_path / "sweep").rglob("*_submitted.pkl"))


def test_wandb_sync_finds_the_offline_runs_inside_the_run_folders(tmp_path, monkeypatch, capfd):
    """What `make wandb-sync DRY_RUN=1` runs, on a real offline run: `wandb sync --dry-run` lists it."""
    from dada.tracking import create_tracker
    from dada.tracking.sync import main as sync

    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "runs" / "smoke" / "search_x" / "relax" / "seed0"
    with create_tracker(("wandb",), run_dir=run_dir, tags={"app": "search", "experiment": "search_x"}) as tracker:
        tracker.log_metrics({"search/val_loss": 1.0}, step=1)
    capfd.readouterr()
    assert sync(["--dry-run", str(tmp_path / "runs")]) == 0
    output = "".join(capfd.readouterr())
    assert "Would sync 1 run(s)" in output and str(run_dir / "wandb" / "offline-run-") in output
    assert sync(["--dry-run", str(tmp_path / "empty")]) == 0 and "no offline W&B runs" in capfd.readouterr().out
