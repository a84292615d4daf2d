"""Our own measured search cost: the committed CPU epoch (``analysis/search_cost_measured.yaml``) and, when a GPU
was lent, ``make device-check``'s paper-setting search epoch (``results/device_check_<device>.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from analysis.audit.counting import DadaStep

MEASURED = Path(__file__).resolve().parent.parent / "search_cost_measured.yaml"
NO_GPU = "no GPU measurement"


def load_measured(path: str | Path = MEASURED) -> dict:
    return yaml.safe_load(Path(path).read_text())["cpu_epoch"]


def cpu_epoch_summary(measured: dict, step: DadaStep) -> dict:
    """The CPU epoch extrapolated to the protocol's epochs, its FLOPs per step against ours, its FLOP/s."""
    steps = measured["steps"]
    recorded_per_step = (measured["summary_network_flops"] + measured["summary_policy_flops"]) / steps
    epochs = step.epochs
    return {
        "steps": steps,
        "search_wall_seconds": measured["search_seconds"],
        "process_cpu_seconds": measured["process_cpu_seconds"],
        "wall_hours_extrapolated": measured["search_seconds"] * epochs / measured["epochs"] / 3600,
        "cpu_hours_extrapolated": measured["process_cpu_seconds"] * epochs / measured["epochs"] / 3600,
        "epochs": epochs,
        "recorded_flops_per_step": recorded_per_step,
        "audit_flops_per_step": step.step_flops,
        "per_step_ratio": step.step_flops / recorded_per_step,
        "epoch_flops": measured["summary_flops"],
        "flops_per_cpu_second": measured["summary_flops"] / measured["process_cpu_seconds"],
        "flops_per_wall_second": measured["summary_flops"] / measured["search_seconds"],
    }


def device_check_prediction(results_dir: Path) -> str:
    """``make device-check``'s extrapolated 20-epoch search hours on its GPU, or NO_GPU when no file exists."""
    files = sorted(path for path in results_dir.glob("device_check_*.json") if not path.stem.endswith("-tiny"))
    lines = []
    for path in files:
        result = json.loads(path.read_text())
        epoch = result.get("search_epoch")
        if not epoch or result.get("mode") != "full":
            continue
        lines.append(
            f"{epoch['extrapolated_device_hours']:.3g} {epoch['unit']} on {epoch['device_name']} "
            f"({epoch['epochs']} epochs extrapolated from 2 measured, {path.name})"
        )
    return "; ".join(lines) or NO_GPU
