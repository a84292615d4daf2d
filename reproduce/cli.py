"""``python -m reproduce <target> --scale smoke --seeds 0,1 --data-root ./data``: run what a target needs.

Finished runs are skipped. ``python -m analysis <target>`` then writes its tables and figures (``make <target>``
runs both): dependencies point one way, dada <- reproduce <- analysis. ``--launcher slurm`` submits the runs to
Slurm instead (``reproduce.slurm``), and ``python -m reproduce status <target>`` says where each run stands."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from dada.config import SEED_MAX
from reproduce.plan import FIGURES, SCALES, TARGETS, plan_many, reproduce_settings
from reproduce.runner import execute, summarize

META_TARGETS = {"figures": FIGURES, "all": TARGETS}


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``; ValueError on anything else."""
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers like 0,1,2, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. --seeds 0")
    outside = [seed for seed in seeds if not 0 <= seed <= SEED_MAX]
    if outside:
        raise argparse.ArgumentTypeError(f"seeds {outside} are out of range: each must lie in [0, {SEED_MAX}]")
    return seeds


def targets_of(target: str) -> tuple[str, ...]:
    """The layouts a target runs: itself, or the members of ``figures`` / ``all``."""
    if target in META_TARGETS:
        return META_TARGETS[target]
    if target not in TARGETS:
        choices = ", ".join((*TARGETS, *META_TARGETS))
        raise ValueError(f"unknown target {target!r}; valid choices: {choices}")
    return (target,)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be a positive integer, got {text!r}")
    return int(text)


def local_threads_and_jobs(
    scale: str, jobs: int | None, overrides: list[str], cpus: int | None = None
) -> tuple[list[str], int]:
    """The thread override every local run gets and the runs at once: conf/reproduce/<scale>.yaml's ``threads``
    (one per run at smoke and mini, deterministic) and ``jobs`` (null: as many as the cores hold); ``--jobs`` and an
    override ``threads=N`` win. With neither pinned, ``threads=<CPUs // jobs>`` when runs share the machine."""
    settings, cpus = reproduce_settings(scale), cpus or os.cpu_count() or 1
    pinned = [override.removeprefix("threads=") for override in overrides if override.startswith("threads=")]
    threads = int(pinned[-1]) if pinned and pinned[-1].isdigit() else None if pinned else settings["threads"]
    jobs = jobs or settings["jobs"] or max(1, cpus // (threads or cpus))
    if pinned:
        return [], jobs
    if threads is None:
        return ([] if jobs == 1 else [f"threads={max(1, cpus // jobs)}"]), jobs
    return [f"threads={threads}"], jobs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("target", help=f"one of {', '.join((*TARGETS, *META_TARGETS))}; or `status`")
    parser.add_argument("status_of", nargs="?", metavar="TARGET", help="after `status`: the target to report on")
    parser.add_argument("--scale", choices=SCALES, default="smoke")
    parser.add_argument(
        "--seeds", type=parse_seeds, default=None, help="comma-separated, e.g. 0,1,2 (default: the target's own)"
    )
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs root")
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Hydra override added to every run, e.g. logger=mlflow (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their commands, run nothing")
    parser.add_argument(
        "--launcher",
        choices=("local", "slurm"),
        default="local",
        help="local: one run after another here; slurm: one job per run (conf/launcher/slurm.yaml)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=None,
        help="local: runs at once (default: conf/reproduce/<scale>.yaml, one thread per run and core at smoke, mini)",
    )
    parser.add_argument("--wait", action="store_true", help="with --launcher slurm: wait for the jobs to end")
    parser.add_argument("--partition", help="with --launcher slurm: the partition (default: the config's)")
    parser.add_argument("--account", help="with --launcher slurm: the account to charge (default: the config's)")
    return parser


def _slurm(args: argparse.Namespace, runs: list) -> int:
    """Submit the runs (with ``--wait``, report when their jobs have ended), or with ``status``, report on them."""
    from reproduce import slurm  # submitit is imported only for Slurm

    if args.target == "status":
        print(slurm.report(slurm.status(runs, args.data_root)))
        return 0
    outcomes = slurm.submit(runs, args.data_root, partition=args.partition, account=args.account)
    print(summarize(outcomes), file=sys.stderr)
    submitted = all(outcome.ok for outcome in outcomes)
    if not args.wait:
        return 0 if submitted else 1
    statuses = slurm.wait(runs, args.data_root)
    print(slurm.report(statuses))
    return 0 if submitted and all(entry.state in ("finished", "not run") for entry in statuses) else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.target == "status") != (args.status_of is not None):
        parser.error("`status` takes one target (python -m reproduce status table1); other targets take none")
    target = args.status_of or args.target
    threads, args.jobs = local_threads_and_jobs(args.scale, args.jobs, args.override)
    overrides = [*args.override, *threads]
    runs = [
        dataclasses.replace(run, overrides=(*run.overrides, *overrides))
        for run in plan_many(targets_of(target), args.scale, args.seeds, args.runs)
    ]
    if args.dry_run:
        for run in runs:
            print(" ".join(run.command("python")))
        return 0
    if args.launcher == "slurm" or args.target == "status":
        return _slurm(args, runs)
    print(
        f"{args.target} at {args.scale} scale, seeds {','.join(sorted({str(run.seed) for run in runs}))}: "
        f"{len(runs)} runs, "
        f"{args.jobs} at a time",
        file=sys.stderr,
    )
    outcomes = execute(runs, args.data_root, jobs=args.jobs)
    print(summarize(outcomes), file=sys.stderr)
    return 0 if all(outcome.ok for outcome in outcomes) else 1
