"""The GPU path measured in one command: ops parity, throughput, a paper-setting search epoch, evaluation speed.

    python benchmarks/device_check.py [--tiny] [--out results] [--budget 480]

On CUDA (about 5 minutes, at most ``--budget`` seconds for the optional torch.compile rows):
  - ops parity: the 15 ops on the CIFAR-10 and ImageNet fixtures (bench_ops.fixture_images), levels 0, 0.5, 1,
    both mirror signs, fixed Cutout centres, device vs CPU (``PARITY_TOLERANCE``);
  - bench-ops (bench_ops.py's two paths) and bench-search (bench_search.py's three paths, WRN-40-2, batch 128) in
    fp32 and bf16 (ops: bf16 images; search: bf16 autocast), channels_last off and on;
  - one search epoch at the paper's setting (WRN-40-2, reduced Fashion-MNIST of 4000 images, batch 128, RELAX,
    unrolled; CIFAR-10's sizes), run by ``SearchRun._epoch`` twice: the 20-epoch search is extrapolated as the first
    epoch plus 19 of the second, beside the paper's 0.1 GPU-hours; its FLOPs per step (dada.tracking.flops);
  - evaluation throughput of WRN-40-2 and WRN-28-10 (the CIFAR-10 recipes): ``TrainRun.train_step`` at the
    recipe's batch (512) and ``TrainRun.evaluate`` at its eval batch (1024), in fp32 and bf16 (``amp``),
    channels_last off and on, and torch.compile on (bf16, channels_last) while the budget lasts;
  - peak CUDA memory of each measurement (``torch.cuda.max_memory_allocated``).
Every section runs under the apps' defaults (``deterministic=true``, dada.runtime.seed_everything).
Without CUDA ``--tiny`` is chosen: the same code on the CPU at tiny sizes (WRN-10-1, batches of 8 to 16, a few
steps, one torch thread), in under 2 minutes on an idle 2-core machine. Its figures only show that the code runs.
Writes ``<out>/device_check_<device>[-tiny].json`` and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import re
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from bench_ops import SETTINGS, batched_path, fixture_images, pil_path, random_policy, seconds_per_call
from bench_search import CONF_DIR, NetworkOnly, OfficialPipeline, OursPipeline, interleaved_rates, search_config

from dada.config import compose_app_config
from dada.data.search_set import prepare_search_data
from dada.ops import OP_NAMES, apply
from dada.run import NullTracker
from dada.runtime import seed_everything
from dada.search.loop import SearchRun
from dada.tracking import DeviceClock
from dada.tracking.flops import count_flops, forward_flops, training_step_flops
from dada.train import TrainRun
from dada.train.pipeline import Preprocess
from dada.train.recipe import create_optimizer

PARITY_TOLERANCE = (
    "photometric ops: every pixel within 1 grey level; geometric ops (nearest resampling, where a "
    "source point on a pixel boundary may round either way): at least 99.5 % of pixels identical"
)
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
PRECISIONS = (("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True))  # (dtype, channels_last)
COMPILE_SECONDS = 150  # what one torch.compile row may take on a GPU, for the budget check
PAPER_RESULTS = CONF_DIR.parent / "analysis" / "paper_results.yaml"


@dataclass(frozen=True)
class Sizes:
    """What each mode measures: fixtures, models, batches and how many steps."""

    parity: tuple[tuple[str, int, int], ...]  # (fixture prefix, side, images)
    parity_levels: tuple[float, ...]
    ops: tuple[tuple[str, int, int], ...]  # (fixture prefix, side, batch)
    ops_schedule: tuple[int, int]  # warm-up, timed calls
    search_model: str
    search_overrides: tuple[str, ...]
    search_schedule: tuple[int, int, int]  # warm-up steps, timed steps per repetition, repetitions
    eval_models: tuple[str, ...]
    eval_overrides: tuple[str, ...]
    eval_schedule: tuple[int, int]


FULL = Sizes(
    parity=(("cifar10", 32, 20), ("imagenet", 224, 4)),
    parity_levels=(0.0, 0.5, 1.0),
    ops=SETTINGS,
    ops_schedule=(3, 20),
    search_model="wrn40_2",
    search_overrides=(),
    search_schedule=(3, 5, 2),
    eval_models=("wrn40_2", "wrn28_10"),
    eval_overrides=(),
    eval_schedule=(3, 10),
)
TINY = Sizes(
    parity=(("cifar10", 32, 4), ("imagenet", 224, 2)),
    parity_levels=(0.5, 1.0),
    ops=(("cifar10", 32, 16), ("imagenet", 224, 4)),
    ops_schedule=(1, 2),
    search_model="wrn10_1",
    search_overrides=("scale.search_images=64", "scale.batch_size=16"),
    search_schedule=(1, 1, 1),
    eval_models=("wrn40_2", "wrn28_10"),
    eval_overrides=("model.name=wrn10_1", "scale.batch_size=8", "recipe.eval_batch_size=16"),
    eval_schedule=(1, 2),
)


@dataclass
class Row:
    """One measurement: ``value`` in ``unit`` (beside ``baseline`` where there is one), and its peak memory."""

    section: str
    setting: str
    value: float
    unit: str
    baseline: float | None = None
    peak_memory_mib: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


@dataclass
class Report:
    device: torch.device
    tiny: bool
    started: float = field(default_factory=time.perf_counter)
    rows: list[Row] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def skip(self, what: str, why: str) -> None:
        self.skipped.append({"what": what, "why": why})


@contextlib.contextmanager
def peak_memory(device: torch.device):
    """Yields a dict whose ``mib`` is set on exit: the peak CUDA memory allocated inside the block (None on CPU)."""
    found: dict[str, float | None] = {"mib": None}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield found
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        found["mib"] = torch.cuda.max_memory_allocated(device) / 2**20


def _setting(dtype: str, channels_last: bool, compiled: bool = False) -> str:
    return f"{dtype}, channels_last {'on' if channels_last else 'off'}" + (", compiled" if compiled else "")


def _uint8_batch(prefix: str, side: int, count: int) -> torch.Tensor:
    images = fixture_images(prefix, side, count)
    return torch.stack([torch.from_numpy(np.array(image)).permute(2, 0, 1) for image in images])


# -- ops ---------------------------------------------------------------------------------------------------------------


def ops_parity(device: torch.device, sizes: Sizes) -> dict:
    """Each op on ``device`` vs the CPU, on the fixtures: per op the largest difference in grey levels and the
    fraction of pixels (any channel) that differ; ``passed`` per ``PARITY_TOLERANCE``."""
    worst: dict[str, dict[str, float]] = {op: {"max_abs": 0, "differing_fraction": 0.0} for op in OP_NAMES}
    for prefix, side, count in sizes.parity:
        batch = _uint8_batch(prefix, side, count)
        centers = torch.rand(count, 2, generator=torch.Generator().manual_seed(0)) * side
        on_device, centers_on_device = batch.to(device), centers.to(device)
        for op in OP_NAMES:
            for level in sizes.parity_levels:
                for sign in (1, -1):
                    reference = apply(batch, op, level, sign=sign, center=centers)
                    result = apply(on_device, op, level, sign=sign, center=centers_on_device).cpu()
                    difference = (result.int() - reference.int()).abs()
                    worst[op]["max_abs"] = max(worst[op]["max_abs"], int(difference.max()))
                    worst[op]["differing_fraction"] = max(
                        worst[op]["differing_fraction"], (difference.amax(dim=1) > 0).float().mean().item()
                    )
    for op, found in worst.items():
        found["passed"] = found["differing_fraction"] <= 0.005 if op in GEOMETRIC else found["max_abs"] <= 1
    return {
        "reference": "cpu",
        "tolerance": PARITY_TOLERANCE,
        "passed": all(f["passed"] for f in worst.values()),
        "fixtures": [f"{prefix} {side}x{side} x{count}" for prefix, side, count in sizes.parity],
        "ops": worst,
    }


def bench_ops(report: Report, sizes: Sizes) -> None:
    """bench_ops.py's batched path on the device in each precision and layout, beside the PIL path on one CPU core."""
    device, (warmup, repeats) = report.device, sizes.ops_schedule
    policy = random_policy()
    for prefix, side, batch_size in sizes.ops:
        images = fixture_images(prefix, side, batch_size)
        pil_rate = batch_size / seconds_per_call(pil_path(images, policy), torch.device("cpu"), warmup, repeats)
        batch = _uint8_batch(prefix, side, batch_size).to(device)
        for dtype, channels_last in PRECISIONS:
            layout = batch.contiguous(memory_format=torch.channels_last) if channels_last else batch
            run = batched_path(layout, policy, torch.bfloat16 if dtype == "bf16" else torch.float32)
            with peak_memory(device) as peak:
                seconds = seconds_per_call(run, device, warmup, repeats)
            report.rows.append(
                Row(
                    "bench-ops",
                    f"{side}x{side}, batch {batch_size}, {_setting(dtype, channels_last)}",
                    batch_size / seconds,
                    "img/s",
                    pil_rate,
                    peak["mib"],
                    "baseline: PIL per image, 1 CPU core; target >= 20x on CUDA",
                )
            )
    report.skip(
        "bench-ops with torch.compile",
        "not measured: the batched ops branch in Python on each batch's "
        "per-op counts (data-dependent), which breaks torch.compile's graphs",
    )


# -- search ------------------------------------------------------------------------------------------------------------


def _autocast(step, device: torch.device, dtype: str):
    def run():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            return step()

    return run


def bench_search(report: Report, sizes: Sizes, run_dir: str) -> None:
    """bench_search.py's paths (ours, the official pipeline emulated, network only) in each precision and layout."""
    device = report.device
    cfg = search_config(sizes.search_model, device.type, run_dir, sizes.search_overrides)
    run = SearchRun(cfg)
    split = prepare_search_data(cfg.dataset, run.device)
    official = OfficialPipeline(run, split)
    steps = {"ours": OursPipeline(run, split).step, "official": official.step, "network": NetworkOnly(official).step}
    warmup, count, repeats = sizes.search_schedule
    for dtype, channels_last in PRECISIONS:
        run.model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        paths = {name: _autocast(step, device, dtype) for name, step in steps.items()}
        with peak_memory(device) as peak:
            rates = interleaved_rates(paths, device, warmup, count, repeats)
        ours, baseline, network = (statistics.median(rates[name]) for name in ("ours", "official", "network"))
        report.rows.append(
            Row(
                "bench-search",
                f"{sizes.search_model}, batch {run.batch_size}, {_setting(dtype, channels_last)}",
                ours,
                "steps/s",
                baseline,
                peak["mib"],
                f"baseline: official pipeline emulated; network only {network:.3g} "
                f"steps/s (bound {network / baseline:.2f}x); target >= 10x on CUDA",
            )
        )
    run.model.to(memory_format=torch.contiguous_format)
    report.skip(
        "bench-search with torch.compile",
        "not measured: the bi-level step calls the network through functional_call with four weight sets per step",
    )


def search_epoch(report: Report, sizes: Sizes, run_dir: str) -> dict:
    """Two search epochs at the paper's setting, timed as the search loop times them; 20 epochs extrapolated."""
    device = report.device
    cfg = search_config(sizes.search_model, device.type, run_dir, sizes.search_overrides)
    run = SearchRun(cfg)
    split = prepare_search_data(cfg.dataset, run.device)
    seconds = []
    for epoch in range(2):
        with peak_memory(device) as peak, DeviceClock(device) as clock:
            run.search_epoch(epoch, split, NullTracker())
            run.scheduler.step()
        seconds.append(clock.seconds)
    index = torch.arange(run.batch_size, device=run.device)  # FLOPs as SearchRun._finish counts them
    train, val = run.train_batch(split, index), run.val_batch(split, index[: len(split.val_labels)])
    step_flops = count_flops(run.optimizer.hypergradient, train, val, run.generator)
    network_flops = training_step_flops(run.model, train[0].shape)
    steps = run.steps_per_epoch(split)
    epoch_flops = step_flops * steps + forward_flops(run.model, (len(split.val_labels), *val[0].shape[1:]))
    hours = (seconds[0] + (run.epochs - 1) * seconds[1]) / 3600
    paper = yaml.safe_load(PAPER_RESULTS.read_text())
    titan_xp = paper["device_throughput"]["rows"]["Titan XP"]["fp32 peak"] * 1e12  # FLOP/s, NVIDIA's fp32 peak
    result = {
        "model": sizes.search_model,
        "batch": run.batch_size,
        "estimator": cfg.estimator.name,
        "mode": cfg.search.mode,
        "variant": cfg.search.variant,
        "train_images": len(split.train_labels),
        "val_images": len(split.val_labels),
        "steps_per_epoch": steps,
        "epoch_seconds": seconds,
        "epochs": run.epochs,
        "extrapolated_device_hours": hours,
        "unit": clock.unit,
        "device_name": clock.device_name,
        "paper_gpu_hours": paper["table1a"]["rows"]["CIFAR-10"]["DADA"],
        "paper_device": "Titan XP",
        "flops_per_step": step_flops,
        "network_flops_per_step": network_flops,
        "policy_share_of_step_flops": (step_flops - network_flops) / step_flops,
        "flops_extrapolated": epoch_flops * run.epochs,
        "titan_xp_equivalent_hours": epoch_flops * run.epochs / titan_xp / 3600,  # at peak, as analysis/cost.py
        "achieved_tflops_per_second": epoch_flops / seconds[1] / 1e12,
        "peak_memory_mib": peak["mib"],
    }
    report.rows.append(
        Row(
            "search epoch",
            f"{sizes.search_model}, batch {run.batch_size}, {steps} steps, 20 epochs extrapolated",
            hours,
            clock.unit,
            None,
            peak["mib"],
            f"paper: {result['paper_gpu_hours']:g} GPU-hours on a Titan XP; epochs "
            f"{seconds[0]:.2f} s, {seconds[1]:.2f} s",
        )
    )
    return result


# -- evaluation --------------------------------------------------------------------------------------------------------


def _train_run(
    model: str, device: torch.device, run_dir: str, sizes: Sizes, amp: bool, channels_last: bool, compiled: bool
) -> TrainRun:
    cfg = compose_app_config(
        "train",
        [
            f"model={model}",
            "dataset=cifar10",
            "scale=paper",
            f"device={device.type}",
            f"amp={amp}",
            f"channels_last={channels_last}",
            f"compile={compiled}",
            f"run_dir={run_dir}",
            *sizes.eval_overrides,
        ],
    )
    run = TrainRun(cfg)
    run.optimizer = create_optimizer(run.model, cfg.recipe)
    run.preprocess = Preprocess(list(cfg.dataset.mean), list(cfg.dataset.std), cfg.dataset.cutout, cfg.recipe.lighting)
    return run


def _eval_rows(
    model: str, device: torch.device, run_dir: str, sizes: Sizes, dtype: str, channels_last: bool, compiled: bool
) -> list[Row]:
    """One TrainRun's training step and test pass, timed; the run is freed on return."""
    warmup, repeats = sizes.eval_schedule
    run = _train_run(model, device, run_dir, sizes, dtype == "bf16", channels_last, compiled)
    batch = run.cfg.recipe.batch_size  # the scale capped it
    side, eval_batch = run.cfg.dataset.image_size, run.cfg.recipe.eval_batch_size
    images = torch.randint(0, 256, (max(batch, eval_batch), 3, side, side), dtype=torch.uint8, device=device)
    labels = torch.randint(0, run.cfg.dataset.num_classes, (len(images),), device=device)
    name, setting = f"{run.cfg.model.name} ({model} recipe)", _setting(dtype, channels_last, compiled)
    with peak_memory(device) as peak:
        seconds = seconds_per_call(
            lambda: run.train_step(images[:batch], labels[:batch], 0, 0), device, warmup, repeats
        )
    rows = [Row("eval: train step", f"{name}, batch {batch}, {setting}", batch / seconds, "img/s", None, peak["mib"])]
    run.test_batches = [(images[:eval_batch], labels[:eval_batch])]
    with peak_memory(device) as peak:
        seconds = seconds_per_call(run.evaluate, device, warmup, repeats)
    rows.append(
        Row(
            "eval: test pass",
            f"{name}, batch {eval_batch}, {setting}",
            eval_batch / seconds,
            "img/s",
            None,
            peak["mib"],
        )
    )
    return rows


def evaluation(report: Report, sizes: Sizes, run_dir: str, budget: float) -> None:
    """TrainRun's training step at the recipe's batch and its test pass at the eval batch, images/s."""
    device = report.device
    settings = [(dtype, channels_last, False) for dtype, channels_last in PRECISIONS]
    if device.type == "cuda":
        settings.append(("bf16", True, True))
    else:
        settings = settings[:1]
        report.skip("evaluation in bf16 and channels_last", "TrainRun applies amp and channels_last on CUDA only")
        report.skip("evaluation with torch.compile", "tiny CPU mode: compiling takes longer than the whole check")
    for model in sizes.eval_models:
        for dtype, channels_last, compiled in settings:
            if compiled and report.elapsed() + COMPILE_SECONDS > budget:
                report.skip(
                    f"evaluation of {model}, {_setting(dtype, channels_last, compiled)}",
                    f"the budget of {budget:.0f} s would be passed",
                )
                continue
            report.rows += _eval_rows(model, device, run_dir, sizes, dtype, channels_last, compiled)
            if device.type == "cuda":
                torch.cuda.empty_cache()


# -- the report --------------------------------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "device_name": DeviceClock(device).device_name,
    }
    if device.type == "cuda":
        info.update(
            {
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
                "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            }
        )
    return info


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def table(rows: list[Row]) -> str:
    """The rows as a fixed-width table: value and baseline with their unit, ratio, peak memory."""
    line = "{:<18}{:<60}{:>20}{:>20}{:>9}{:>10}"
    lines = [line.format("section", "setting", "value", "baseline", "ratio", "peak MiB")]
    for row in rows:
        lines.append(
            line.format(
                row.section,
                row.setting,
                f"{_number(row.value)} {row.unit}",
                f"{_number(row.baseline)} {row.unit}" if row.baseline else "-",
                f"{row.ratio:.2f}x" if row.ratio else "-",
                _number(row.peak_memory_mib) if row.peak_memory_mib else "-",
            )
        )
    return "\n".join(lines)


def device_slug(device: torch.device) -> str:
    return "cpu" if device.type == "cpu" else re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower())


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (chosen automatically without CUDA)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where the JSON goes (default results/)")
    parser.add_argument(
        "--budget",
        type=float,
        default=480.0,
        help="seconds in all: torch.compile rows that would pass it are skipped (default 480)",
    )
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = args.tiny or device.type == "cpu"
    if device.type == "cpu":
        torch.set_num_threads(1)
    seed_everything(0, deterministic=True)  # the apps' default, for every section
    report = Report(device, tiny)
    sizes = TINY if tiny else FULL
    print(f"device check on {device} ({'tiny' if tiny else 'full'} sizes), torch {torch.__version__}", flush=True)
    parity = ops_parity(device, sizes)
    print(f"ops parity vs CPU: {'passed' if parity['passed'] else 'FAILED'} ({report.elapsed():.0f} s)", flush=True)
    bench_ops(report, sizes)
    print(f"bench-ops done ({report.elapsed():.0f} s)", flush=True)
    with tempfile.TemporaryDirectory() as run_dir:
        bench_search(report, sizes, f"{run_dir}/bench")
        print(f"bench-search done ({report.elapsed():.0f} s)", flush=True)
        epoch = search_epoch(report, sizes, f"{run_dir}/epoch")
        print(f"search epoch done ({report.elapsed():.0f} s)", flush=True)
        evaluation(report, sizes, f"{run_dir}/eval", args.budget)
    result = {
        "mode": "tiny" if tiny else "full",
        "device": device.type,
        **environment(device),
        "wall_seconds": report.elapsed(),
        "budget_seconds": args.budget,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ops_parity": parity,
        "search_epoch": epoch,
        "rows": [{**asdict(row), "ratio": row.ratio} for row in report.rows],
        "skipped": report.skipped,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"device_check_{device_slug(device)}{'-tiny' if tiny else ''}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(table(report.rows))
    for skipped in report.skipped:
        print(f"skipped: {skipped['what']}: {skipped['why']}")
    print(f"ops parity: {'passed' if parity['passed'] else 'FAILED'} ({PARITY_TOLERANCE})")
    print(f"{report.elapsed():.0f} s in all; wrote {path}")
    return path


if __name__ == "__main__":
    main()
