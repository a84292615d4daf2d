"""One audit row per non-empty cell of Table 1(a): protocol, FLOPs, claimed hours, implied utilisation, verdict.

Utilisation u = F / (H x 3600 x P): F the search's FLOPs (a lower bound: the counted convolutions and matrix
products of the protocol's passes), H the claimed GPU-hours, P the device's fp32 peak (paper_results.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from analysis.audit.counting import DadaStep, phase_flops, phase_step_flops
from analysis.audit.protocols import Claim, Phase
from analysis.cost import peak_flops
from analysis.paper import lookup

NETWORK_NAMES = {"wrn40_2": "WRN-40-2", "wrn28_10": "WRN-28-10", "resnet50": "ResNet-50"}


@dataclass(frozen=True)
class Row:
    dataset: str
    method: str
    claimed_gpu_hours: float
    estimated_by_paper: bool
    device: str
    fp32_peak_tflops: float
    protocol: str
    flops_per_step: float  # the first (main) phase's step
    steps: int
    total_flops: float
    hours_at_peak: float  # F / P: the claimed device's hours if it ran at peak throughout
    utilisation: float
    verdict: str
    assumed: str  # the protocol numbers that are assumptions, per phase
    device_source: str
    note: str


def verdict(utilisation: float, thresholds: dict) -> str:
    """``plausible``, ``implausibly fast`` (above the upper threshold) or ``dominated by non-arithmetic time``."""
    if utilisation > thresholds["implausible_above"]:
        return "implausibly fast" + (" (above peak: impossible)" if utilisation > 1 else "")
    if utilisation < thresholds["non_arithmetic_below"]:
        return "dominated by non-arithmetic time"
    return "plausible"


def describe(phase: Phase) -> str:
    """e.g. ``train 15000 x 120 ep x 4000 img, WRN-40-2 @32px/10 cls, batch 128``."""
    network = NETWORK_NAMES.get(phase.network, phase.network)
    return (
        f"{phase.kind} {phase.runs} x {phase.epochs} ep x {phase.images} img, {network} "
        f"@{phase.input_size}px/{phase.classes} cls, batch {phase.batch}"
    )


def describe_dada(step: DadaStep) -> str:
    network = NETWORK_NAMES.get(step.network, step.network)
    return (
        f"bi-level ({step.estimator}) {step.epochs} ep x {step.train_images} img + val forward {step.val_images} img, "
        f"{network} @{step.input_size}px/{step.classes} cls, batch {step.batch} ({step.experiment}, scale=paper)"
    )


def _row(claim: Claim, paper: pd.DataFrame, thresholds: dict, protocol: str, per_step, steps, flops, assumed) -> Row:
    cell = lookup(paper, "table1a", claim.dataset, claim.method)
    hours, peak = float(cell["value"]), peak_flops(paper, claim.device)
    utilisation = flops / (hours * 3600 * peak)
    return Row(
        claim.dataset,
        claim.method,
        hours,
        bool(cell["estimated"]),
        claim.device,
        peak / 1e12,
        protocol,
        float(per_step),
        int(steps),
        float(flops),
        flops / peak / 3600,
        utilisation,
        verdict(utilisation, thresholds),
        assumed,
        claim.device_source,
        claim.note,
    )


def protocol_row(claim: Claim, paper: pd.DataFrame, thresholds: dict) -> Row:
    """A published method's row: its phases counted on meta tensors."""
    per_step = [phase_step_flops(phase) for phase in claim.phases]
    flops = sum(phase_flops(phase, step) for phase, step in zip(claim.phases, per_step))
    assumed = "; ".join(f"phase {i + 1}: {', '.join(p.assumed)}" for i, p in enumerate(claim.phases) if p.assumed)
    protocol = " + ".join(describe(phase) for phase in claim.phases)
    steps = sum(phase.steps for phase in claim.phases)
    return _row(claim, paper, thresholds, protocol, per_step[0], steps, flops, assumed or "none")


def dada_row(claim: Claim, step: DadaStep, paper: pd.DataFrame, thresholds: dict) -> Row:
    """DADA's row from this repository's search step at the paper setting (the estimator of ``step``)."""
    return _row(
        claim,
        paper,
        thresholds,
        describe_dada(step),
        step.step_flops,
        step.protocol_steps,
        step.total_flops,
        "none (the composed scale=paper config)",
    )


def non_empty_cells(paper: pd.DataFrame) -> set[tuple[str, str]]:
    """(data set, method) of every Table 1(a) cell with a number."""
    table = paper[(paper["table"] == "table1a") & paper["value"].notna()]
    return set(zip(table["row"], table["column"]))


def check_coverage(claims: list[Claim], paper: pd.DataFrame) -> None:
    """Every non-empty Table 1(a) cell has exactly one claim, and every claim a cell."""
    audited = [(claim.dataset, claim.method) for claim in claims]
    cells = non_empty_cells(paper)
    missing, extra = cells - set(audited), set(audited) - cells
    if missing or extra or len(audited) != len(set(audited)):
        raise ValueError(
            f"the protocols do not match Table 1(a)'s non-empty cells: missing {sorted(missing)}, "
            f"not in the table {sorted(extra)}, repeated {len(audited) - len(set(audited))}"
        )


def dada_cpu_row(claim: Claim, step: DadaStep, seconds_per_image: float, hours: float) -> dict:
    """The official pipeline's PIL time over the search, and the loader cores that would hide it in ``hours``."""
    cpu_seconds = seconds_per_image * step.train_images * step.epochs
    return {
        "dataset": claim.dataset,
        "input_px": step.input_size,
        "pil_ms_per_image": seconds_per_image * 1e3,
        "augmented_images": step.train_images * step.epochs,
        "pil_cpu_seconds": cpu_seconds,
        "claimed_seconds": hours * 3600,
        "share_of_claim_if_serial": cpu_seconds / (hours * 3600),
        "loader_cores_to_hide": math.ceil(cpu_seconds / (hours * 3600)),
    }
