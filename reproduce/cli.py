"""``python -m reproduce <target> --scale smoke --seeds 0,1 --data-root ./data``: run what a target needs.

Finished runs are skipped. ``python -m analysis <target>`` then writes its tables and figures (``make <target>``
runs both): dependencies point one way, dada <- reproduce <- analysis."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from reproduce.plan import FIGURES, SCALES, TARGETS, plan_many
from reproduce.runner import execute, summarize

META_TARGETS = {"figures": FIGURES, "all": TARGETS}
TABLE5 = ("Table 5 (COCO detection with a DADA-trained ResNet-50 backbone) is a separate issue: it needs "
          "MMDetection and COCO, which dada does not include. Nothing to run.")


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``; ValueError on anything else."""
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers like 0,1,2, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed, e.g. --seeds 0")
    return seeds


def targets_of(target: str) -> tuple[str, ...]:
    """The layouts a target runs: itself, or the members of ``figures`` / ``all``."""
    if target in META_TARGETS:
        return META_TARGETS[target]
    if target not in TARGETS:
        choices = ", ".join((*TARGETS, *META_TARGETS, "table5"))
        raise ValueError(f"unknown target {target!r}; valid choices: {choices}")
    return (target,)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reproduce", description=__doc__.splitlines()[0])
    parser.add_argument("target", help=f"one of {', '.join((*TARGETS, *META_TARGETS, 'table5'))}")
    parser.add_argument("--scale", choices=SCALES, default="smoke")
    parser.add_argument("--seeds", type=parse_seeds, default=(0, 1, 2), help="comma-separated, e.g. 0,1,2")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs root")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override added to every run, e.g. logger=mlflow (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their commands, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.target == "table5":
        print(TABLE5)
        return 0
    runs = [dataclasses.replace(run, overrides=(*run.overrides, *args.override))
            for run in plan_many(targets_of(args.target), args.scale, args.seeds, args.runs)]
    if args.dry_run:
        for run in runs:
            print(" ".join(run.command("python")))
        return 0
    print(f"{args.target} at {args.scale} scale, seeds {','.join(map(str, args.seeds))}: {len(runs)} runs",
          file=sys.stderr)
    outcomes = execute(runs, args.data_root)
    print(summarize(outcomes), file=sys.stderr)
    return 0 if all(outcome.ok for outcome in outcomes) else 1
