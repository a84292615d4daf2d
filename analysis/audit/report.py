"""``python -m analysis audit``: results/search_cost_audit.{md,csv,png,pdf} (the module docstrings say how)."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analysis.audit.counting import ESTIMATORS, DadaStep, dada_step
from analysis.audit.cpu_side import pil_seconds_per_image
from analysis.audit.figure import audit_figure
from analysis.audit.measured import MEASURED, cpu_epoch_summary, device_check_prediction, load_measured
from analysis.audit.protocols import PROTOCOLS, Claim, load_claims, load_verdicts
from analysis.audit.rows import check_coverage, dada_cpu_row, dada_row, protocol_row
from analysis.paper import PAPER_RESULTS, load_paper_results
from analysis.style import save_figure

NAME = "search_cost_audit"
CLAIM_ESTIMATOR = "relax"  # the paper's search (the official code is search_relax/)


def _markdown_table(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    def cell(column: str, value) -> str:
        return format(value, formats[column]) if column in formats and isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in row.items()) + " |" for _, row in frame.iterrows()]
    return "\n".join(lines)


def _claims_table(rows: pd.DataFrame) -> str:
    shown = rows.assign(
        claimed=rows["claimed_gpu_hours"].map("{:g}".format) + rows["estimated_by_paper"].map({True: "*", False: ""})
    )
    shown = shown.assign(device=shown["device"] + " (" + shown["fp32_peak_tflops"].map("{:g}".format) + " TFLOP/s)")
    columns = {
        "dataset": "data set", "method": "method", "claimed": "claimed GPU-h", "device": "device (fp32 peak)",
        "flops_per_step": "FLOPs / step", "steps": "steps", "total_flops": "total FLOPs F",
        "hours_at_peak": "F / P (h)", "utilisation": "u", "verdict": "verdict",
    }  # fmt: skip
    table = shown[list(columns)].rename(columns=columns)
    return _markdown_table(table, {"FLOPs / step": ".3g", "total FLOPs F": ".3g", "F / P (h)": ".3g", "u": ".2%"})


def _protocols(claims: list[Claim], rows: pd.DataFrame) -> list[str]:
    lines = ["## Protocols and sources", ""]
    for claim, (_, row) in zip(claims, rows.iterrows()):
        lines += [f"**{claim.method}, {claim.dataset}**: {row['protocol']}.", f"- device: {claim.device_source}"]
        for number, phase in enumerate(claim.phases, 1):
            lines += [f"- phase {number} {name}: {text}" for name, text in phase.sources.items()]
        lines.append(f"- numbers that are assumptions: {row['assumed']}")
        if claim.note:
            lines.append(f"- note: {claim.note}")
        lines.append("")
    return lines


def _dada_steps_table(steps: list[DadaStep]) -> str:
    frame = pd.DataFrame(
        {
            "experiment": [s.experiment for s in steps],
            "estimator": [s.estimator for s in steps],
            "network FLOPs / step": [float(s.network_flops) for s in steps],
            "policy FLOPs / step": [float(s.policy_flops) for s in steps],
            "step / training step": [s.step_flops / s.network_flops for s in steps],
            "protocol steps": [s.protocol_steps for s in steps],
            "total FLOPs (20 ep, with val)": [s.total_flops for s in steps],
        }
    )
    formats = {name: ".3g" for name in frame.columns if "FLOPs" in name}
    return _markdown_table(frame, {**formats, "step / training step": ".3f"})


def _measured_lines(cpu: dict, gpu: str) -> list[str]:
    return [
        "## Our own cost, measured (DADA, CIFAR-10 setting)",
        "",
        "One epoch of the `scale=paper` reduced CIFAR-10 search settings on the embedded Fashion-MNIST "
        f"({cpu['steps']} steps, threads=1, on a 2-core machine shared with other work; `{MEASURED.name}`):"
        f" search loop {cpu['search_wall_seconds']:.0f} s wall, whole process {cpu['process_cpu_seconds']:.0f} s CPU. "
        f"Extrapolated to {cpu['epochs']} epochs: {cpu['wall_hours_extrapolated']:.2f} h wall under contention, "
        f"{cpu['cpu_hours_extrapolated']:.2f} CPU-hours (an upper bound: start-up and the end-of-run FLOP count "
        f"included). The epoch's counted {cpu['epoch_flops']:.3g} FLOPs make {cpu['flops_per_cpu_second'] / 1e9:.0f} "
        f"GFLOP/s per CPU-second (at least: the CPU time is the whole process's) and "
        f"{cpu['flops_per_wall_second'] / 1e9:.0f} GFLOP/s per wall-second under contention.",
        "",
        f"Check: the audit's FLOPs per step for the CIFAR-10 row, {cpu['audit_flops_per_step']:.6g}, against the "
        f"{cpu['recorded_flops_per_step']:.6g} that the real one-epoch run records in its summary "
        f"((network + policy FLOPs) / steps): ratio {cpu['per_step_ratio']:.4f}.",
        "",
        f"On a GPU (`make device-check`'s paper-setting search epoch, 20 epochs extrapolated): {gpu}.",
        "",
    ]


def write_audit(
    results_dir: Path,
    protocols: Path = PROTOCOLS,
    paper_path: Path = PAPER_RESULTS,
    measured_path: Path = MEASURED,
    dada_overrides: tuple[str, ...] = (),
    pil_images: int = 32,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> list[Path]:
    """Count, compare and write every file of the audit; returns the paths written. ``dada_overrides`` (Hydra
    overrides), ``pil_images`` and ``estimators`` (RELAX, which the claim rows use, must be among them) shrink it."""
    paper, claims, thresholds = load_paper_results(paper_path), load_claims(protocols), load_verdicts(protocols)
    check_coverage(claims, paper)
    rows, steps, cpu_rows = [], [], []
    pil = {size: pil_seconds_per_image(size, pil_images) for size in (32, 224)}
    for claim in claims:
        if claim.method != "DADA":
            rows.append(protocol_row(claim, paper, thresholds))
            continue
        counted = {est: dada_step(claim.phases[0].experiment, est, dada_overrides) for est in estimators}
        steps += counted.values()
        row = dada_row(claim, counted[CLAIM_ESTIMATOR], paper, thresholds)
        rows.append(row)
        step = counted[CLAIM_ESTIMATOR]
        cpu_rows.append(dada_cpu_row(claim, step, pil[32 if step.input_size <= 32 else 224], row.claimed_gpu_hours))
    frame = pd.DataFrame([asdict(row) for row in rows])
    cifar_step = next(s for s in steps if s.experiment == "search_cifar10" and s.estimator == CLAIM_ESTIMATOR)
    cpu = cpu_epoch_summary(load_measured(measured_path), cifar_step)
    gpu = device_check_prediction(results_dir)
    frame["our_measured_cost"] = [
        f"CPU: {cpu['cpu_hours_extrapolated']:.2f} CPU-h (20 ep extrapolated); GPU: {gpu}"
        if (r.dataset, r.method) == ("CIFAR-10", "DADA")
        else ""
        for r in rows
    ]
    results_dir.mkdir(parents=True, exist_ok=True)
    csv, md = results_dir / f"{NAME}.csv", results_dir / f"{NAME}.md"
    frame.to_csv(csv, index=False)
    md.write_text(_markdown(frame, claims, thresholds, steps, cpu_rows, pil, cpu, gpu))
    return [csv, md, *save_figure(audit_figure(frame, thresholds), results_dir, NAME)]


def _markdown(frame, claims, thresholds, steps, cpu_rows, pil, cpu, gpu) -> str:
    cpu_table = pd.DataFrame(cpu_rows)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work"
    lines = [
        "# Auditing Table 1(a)'s search GPU-hours against a FLOP lower bound",
        "",
        "u = F / (H x 3600 x P): F the FLOPs of the published search protocol (convolutions and matrix products, "
        "forward and backward, counted with torch.utils.flop_counter on the real network at the real input size; "
        "a multiply-add is 2 FLOPs; data loading, augmentation, element-wise ops and controller updates count zero, "
        "so F is a lower bound), H the claimed GPU-hours, P the claimed device's fp32 peak "
        "(analysis/paper_results.yaml, device_throughput). Protocols: analysis/search_protocols.yaml.",
        "",
        f"Verdicts: u > {thresholds['implausible_above']:.0%} implausibly fast; u < "
        f"{thresholds['non_arithmetic_below']:.0%} dominated by non-arithmetic time; otherwise plausible. "
        f"{thresholds['reasoning']}",
        "",
        _claims_table(frame),
        "",
        "\\* OHL AA's cells are the DADA paper's estimates, not OHL's claims. A verdict that rests on an assumed "
        "protocol number (below) is only as good as the assumption.",
        "",
        *[f"- {row['method']}, {row['dataset']}: {row['note']}" for _, row in frame.iterrows() if row["note"]],
        "",
        "## DADA: this repository's search step at the paper settings (scale=paper), by estimator",
        "",
        "Network: one training forward and backward of the network; policy: the rest of the bi-level step "
        "(the unrolled step, the finite-difference passes and the estimator). The claim rows use RELAX.",
        "",
        _dada_steps_table(steps),
        "",
        "## DADA: the official pipeline's CPU side",
        "",
        f"Our PIL path (dada.ops.apply_pil, two ops and a to-tensor an image) takes {pil[32] * 1e3:.2f} ms per 32 px "
        f"image and {pil[224] * 1e3:.2f} ms per 224 px image of process CPU time on this machine ({machine}). The "
        "official search_relax/train_paper.sh runs with --num_workers 0: the PIL work is serial with the GPU and "
        "counts in the claimed time. With loader workers it would need the cores below to hide it. ImageNet's "
        "crop, colour jitter and lighting are not timed (a lower bound).",
        "",
        _markdown_table(
            cpu_table,
            {
                "pil_ms_per_image": ".3f",
                "pil_cpu_seconds": ".3g",
                "claimed_seconds": ".3g",
                "share_of_claim_if_serial": ".1%",
            },
        ),  # fmt: skip
        "",
        *_measured_lines(cpu, gpu),
        *_protocols(claims, frame),
    ]
    return "\n".join(lines)
