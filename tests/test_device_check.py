"""make device-check on the CPU: the tiny mode runs in under 2 minutes and writes the JSON the GPU run will write."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dada.ops import OP_NAMES

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.py"
SECTIONS = {"bench-ops", "bench-search", "search epoch", "eval: train step", "eval: test pass"}
ROW_KEYS = {"section", "setting", "value", "unit", "baseline", "ratio", "peak_memory_mib", "note"}
EPOCH_KEYS = {
    "model",
    "batch",
    "estimator",
    "mode",
    "steps_per_epoch",
    "epoch_seconds",
    "epochs",
    "extrapolated_device_hours",
    "unit",
    "device_name",
    "paper_gpu_hours",
    "flops_per_step",
    "network_flops_per_step",
    "policy_share_of_step_flops",
    "titan_xp_equivalent_hours",
    "peak_memory_mib",
}


@pytest.mark.slow
def test_tiny_device_check_runs_on_cpu(tmp_path):
    """Its run time (about 20 s) is reported by the script itself; a test asserts no wall-clock bound."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads((tmp_path / "device_check_cpu-tiny.json").read_text())
    assert (result["mode"], result["device"], result["cpu_threads"], result["deterministic"]) == (
        "tiny",
        "cpu",
        1,
        True,
    )
    parity = result["ops_parity"]
    assert parity["passed"] and set(parity["ops"]) == set(OP_NAMES) and parity["tolerance"]
    assert all(op["max_abs"] == 0 for op in parity["ops"].values())  # CPU against itself
    rows = result["rows"]
    assert {row["section"] for row in rows} == SECTIONS and all(set(row) == ROW_KEYS for row in rows)
    assert all(row["value"] > 0 and row["peak_memory_mib"] is None for row in rows)  # peak memory: CUDA only
    settings = {row["setting"].split(", ", 2)[-1] for row in rows if row["section"] == "bench-search"}
    assert settings == {
        "fp32, channels_last off",
        "bf16, channels_last off",
        "fp32, channels_last on",
        "bf16, channels_last on",
    }
    assert all(row["ratio"] == pytest.approx(row["value"] / row["baseline"]) for row in rows if row["baseline"])
    epoch = result["search_epoch"]
    assert EPOCH_KEYS <= set(epoch) and epoch["paper_gpu_hours"] == 0.1 and epoch["unit"] == "CPU-hours"
    assert 0 < epoch["policy_share_of_step_flops"] < 1 and len(epoch["epoch_seconds"]) == 2
    assert {skipped["what"] for skipped in result["skipped"]} >= {"evaluation with torch.compile"}
    assert "ops parity: passed" in finished.stdout and "search epoch" in finished.stdout
