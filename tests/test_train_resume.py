"""dada.train as a process: killed mid-run and restarted, it ends bit for bit where an uninterrupted run ends;
under torchrun it trains data-parallel with only rank 0 writing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from dada import data

RUN = [sys.executable, "-m", "dada.train"]
TINY = ["scale.train_images=512", "scale.test_images=128", "scale.batch_size=32", "deterministic=true"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fashion-root")
    data.load_images("fashion-mnist", root, train=False)
    return root


def _environment(data_root):
    return {**os.environ, "DATA_ROOT": str(data_root), "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


def _command(run_dir, *overrides):
    return [*RUN, f"run_dir={run_dir}", *TINY, *overrides]


def _finish(command, data_root) -> str:
    result = subprocess.run(command, env=_environment(data_root), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def _kill_after_first_checkpoint(command, data_root, run_dir) -> None:
    process = subprocess.Popen(
        command, env=_environment(data_root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while not (run_dir / "checkpoint.pt").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (run_dir / "summary.json").exists(), "the run finished before it was killed"


@pytest.mark.slow
@pytest.mark.parametrize(
    "policy",
    [["policy=random"], ["policy=random", "policy.on_device=false", "num_workers=0"]],
    ids=["on-device", "per-image"],
)
def test_killed_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit(policy, tmp_path, data_root):
    overrides = [*policy, "scale.train_epochs=4"]
    _finish(_command(tmp_path / "straight", *overrides), data_root)
    _kill_after_first_checkpoint(_command(tmp_path / "killed", *overrides), data_root, tmp_path / "killed")
    output = _finish(_command(tmp_path / "killed", *overrides), data_root)
    assert "resumed" in output
    straight, resumed = (
        torch.load(tmp_path / name / "checkpoint.pt", weights_only=False) for name in ("straight", "killed")
    )
    assert resumed["epoch"] == straight["epoch"] == 3
    assert all(torch.equal(straight["model"][key], resumed["model"][key]) for key in straight["model"])
    errors = [[epoch["test/error_top1"] for epoch in state["history"]] for state in (straight, resumed)]
    assert errors[0] == errors[1]
    records = [
        [(record["step"], record.get("epoch")) for record in map(json.loads, lines)]
        for lines in ((tmp_path / name / "metrics.jsonl").read_text().splitlines() for name in ("straight", "killed"))
    ]
    assert records[0] == records[1]  # each record once, as in the uninterrupted run (issue 12, case 15)
    assert "nothing to do" in _finish(_command(tmp_path / "killed", *overrides), data_root)


@pytest.mark.slow
def test_torchrun_trains_on_two_processes_and_rank_zero_writes(tmp_path, data_root):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "dada.train",
        f"run_dir={tmp_path / 'run'}",
        *TINY,
        "policy=none",
        "scale.train_epochs=1",
    ]
    _finish(command, data_root)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "FINISHED" and summary["world_size"] == 2 and summary["test_images"] == 128
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert sum("test/error_top1" in record for record in epochs) == 1
    assert 0 <= summary["test_error_top1"] <= 100
