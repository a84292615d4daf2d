"""``python -m reproduce.study search_matters --scale mini``: run the searches and evaluations of a study.

A study's design lives in ``conf/study/<name>.yaml``, written before its runs: its columns, seeds, tests and power
analysis. This module turns it into runs with `reproduce.plan`'s machinery (`make_run`, the runner), so finished
runs are skipped, a killed run resumes, and ``python -m analysis.study <name>`` reads them back. ``make study-search``
runs both; with ``--archive`` it first restores the finished runs committed there (`reproduce.archive`) and at the
end packs every finished run of the study back into it.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from omegaconf import OmegaConf

from dada.config import CONF_DIR
from reproduce.archive import pack, restore
from reproduce.cli import local_threads_and_jobs, parse_seeds
from reproduce.plan import SCALES, Run, make_run
from reproduce.runner import execute, summarize
from reproduce.tables import EvalJob, SearchJob

STUDY_DIR = CONF_DIR / "study"
SOURCES = ("search", "step0")  # a DADA column's policy: the seed's search, or its search space before any step


@dataclass(frozen=True)
class Column:
    """One evaluation column: its run-folder name, label, the train app's ``policy=`` and the policy's source."""

    key: str
    label: str
    policy: str
    source: str | None = None  # search | step0 | None (the policy's own default)


@dataclass(frozen=True)
class Design:
    """A study as ``conf/study/<name>.yaml`` declares it."""

    name: str
    title: str
    dataset: str
    search: dict
    evaluation: dict
    columns: tuple[Column, ...]
    seeds: dict
    primary: str
    control: str
    comparisons: tuple[str, ...]
    alpha: float
    tost_margin: float
    power: dict
    secondary: dict

    def seeds_at(self, scale: str) -> tuple[int, ...]:
        """Seeds 0..n-1, n as declared for ``scale``."""
        if scale not in self.seeds:
            raise ValueError(f"study {self.name} declares no seeds for scale {scale!r}; it has {', '.join(self.seeds)}")
        return tuple(range(int(self.seeds[scale])))

    def column(self, key: str) -> Column:
        found = {column.key: column for column in self.columns}
        if key not in found:
            raise ValueError(f"study {self.name} has no column {key!r}; valid choices: {', '.join(found)}")
        return found[key]


def load_design(name: str, study_dir: Path = STUDY_DIR) -> Design:
    """The design in ``<study_dir>/<name>.yaml``; ValueError naming the studies there when it is missing."""
    path = study_dir / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(path.stem for path in study_dir.glob("*.yaml")))
        raise ValueError(f"unknown study {name!r}: no {path}; valid choices: {known}")
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    columns = tuple(Column(**column) for column in raw["columns"])
    for column in columns:
        if column.source not in (None, *SOURCES):
            raise ValueError(f"{path}: column {column.key} has source {column.source!r}; valid: {', '.join(SOURCES)}")
    fields = {field.name for field in dataclasses.fields(Design)} - {"columns", "comparisons"}
    design = Design(**{key: raw[key] for key in fields}, columns=columns, comparisons=tuple(raw["comparisons"]))
    for key in (design.primary, design.control, *design.comparisons):
        design.column(key)
    return design


@dataclass(frozen=True)
class SearchAppJob:
    """A run of a search entry point under its own run-folder name: ``python -m dada.search.initial`` (the step-0
    export) or a longer ``dada.search``; `make_run` reads its fields as it reads a `SearchJob`'s."""

    app: str  # "search" or "search.initial"
    experiment: str
    variant: str
    dataset: str
    overrides: tuple[str, ...]

    smoke_overrides: ClassVar[tuple[str, ...]] = ()


def _search_overrides(design: Design) -> tuple[str, ...]:
    return (f"estimator={design.search['estimator']}", f"search.variant={design.search['variant']}")


def search_job(design: Design) -> SearchJob:
    search = design.search
    return SearchJob(search["experiment"], search["estimator"], design.dataset, search_variant=search["variant"])


def step0_job(design: Design) -> SearchAppJob:
    """The search's space exported before any step, in ``<search experiment>/no-search/seed<N>``."""
    return SearchAppJob(
        "search.initial", design.search["experiment"], design.control, design.dataset, _search_overrides(design)
    )


def long_search_job(design: Design, scale: str) -> SearchAppJob:
    """The secondary arm's search: the same search with ``secondary.search_epochs`` epochs."""
    epochs = design.secondary["search_epochs"][scale]
    variant = f"{design.search['estimator']}-{epochs}epochs"
    overrides = (*_search_overrides(design), f"scale.search_epochs={epochs}")
    return SearchAppJob("search", design.search["experiment"], variant, design.dataset, overrides)


def eval_job(design: Design, key: str, policy: str, search=None) -> EvalJob:
    overrides = (f"policy={policy}", *design.evaluation["overrides"])
    return EvalJob(design.evaluation["experiment"], key, design.dataset, overrides, search)


def column_jobs(design: Design) -> list[EvalJob]:
    """One evaluation per column, a DADA column reading its seed's search or step-0 export."""
    searches = {"search": search_job(design), "step0": step0_job(design), None: None}
    return [eval_job(design, column.key, column.policy, searches[column.source]) for column in design.columns]


def secondary_job(design: Design, scale: str) -> EvalJob:
    return eval_job(design, design.secondary["key"], "dada", long_search_job(design, scale))


def study_runs(
    design: Design,
    scale: str,
    seeds: tuple[int, ...] | None = None,
    runs_root: Path = Path("runs"),
    secondary: bool = False,
) -> list[Run]:
    """Every run of the study at ``scale`` in seed order, so that a study stopped part-way leaves whole seeds: the
    searches of seed ``s`` are queued before the evaluations of seed ``s - 1``, which thus find their search done
    (a search always precedes the runs that wait for it: the runner cannot deadlock). With ``secondary``, the
    longer searches and their evaluations for the first ``secondary.seeds`` seeds follow, in the same order."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid choices: {', '.join(SCALES)}")
    seeds = design.seeds_at(scale) if seeds is None else seeds
    arms = [(column_jobs(design), seeds)]
    if secondary:
        arms.append(([secondary_job(design, scale)], seeds[: int(design.secondary["seeds"])]))
    planned = {}
    for arm, (jobs, arm_seeds) in enumerate(arms):
        for slot, seed in enumerate(arm_seeds):
            for job in jobs:
                for link in (job.search, job) if job.search is not None else (job,):
                    run = make_run(link, scale, seed, runs_root)
                    # an evaluation's slot is one later than its seed's searches
                    planned.setdefault(run.run_dir, ((arm, slot + (run.app == "train"), run.app == "train"), run))
    return [run for _, run in sorted(planned.values(), key=lambda keyed: keyed[0])]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reproduce.study", description=__doc__.splitlines()[0])
    parser.add_argument("study", help="a design in conf/study/, e.g. search_matters")
    parser.add_argument("--scale", choices=SCALES, default="smoke")
    parser.add_argument("--seeds", type=parse_seeds, default=None, help="default: the seeds the design declares")
    parser.add_argument("--secondary", action="store_true", help="also run the design's secondary arm")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the runs root")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE", help="added to every run")
    parser.add_argument(
        "--jobs", type=int, default=None, help="runs at once (default: conf/reproduce/<scale>.yaml's, one per core)"
    )
    parser.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="a .tar.gz of finished runs: restored before the study runs (existing run folders kept), re-packed after",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs' commands, run nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    design = load_design(args.study)
    threads, jobs = local_threads_and_jobs(args.scale, args.jobs, args.override)
    overrides = (*args.override, *threads)
    runs = [
        dataclasses.replace(run, overrides=(*run.overrides, *overrides))
        for run in study_runs(design, args.scale, args.seeds, args.runs, args.secondary)
    ]
    if args.dry_run:
        print("\n".join(" ".join(run.command("python")) for run in runs))
        return 0
    archived = []
    if args.archive is not None and args.archive.exists():
        restored, kept = restore(args.archive, args.runs)
        archived = restored + kept
        print(f"{args.archive}: {len(restored)} finished runs restored, {len(kept)} run folders kept", file=sys.stderr)
    print(f"study {design.name} at {args.scale} scale: {len(runs)} runs, {jobs} at a time", file=sys.stderr)
    outcomes = execute(runs, args.data_root, jobs=jobs)
    print(summarize(outcomes), file=sys.stderr)
    if args.archive is not None:
        # every run of the study and every run the archive held, whatever --seeds chose now: packing drops none
        every_run = study_runs(design, args.scale, None, args.runs, secondary=True) + runs
        packed = pack([*archived, *(run.run_dir for run in every_run)], args.archive, args.runs)
        print(f"{args.archive}: {len(packed)} finished runs packed", file=sys.stderr)
    return 0 if all(outcome.ok for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
