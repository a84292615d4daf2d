"""The runs a target needs, in order, and whether their data sets are on disk."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from dada import layout
from dada.data import get_spec
from dada.detect import DETECTION_DATASETS
from dada.layout import RunFolder
from reproduce.tables import DetectJob, EvalJob, Job, get_layout, jobs, stage

SCALES = ("smoke", "mini", "paper")
TARGETS = ("table1", "table2", "table3", "table4", "table5", "table6", "fig1", "fig3a", "fig3b")
FIGURES = ("fig1", "fig3a", "fig3b")


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@functools.lru_cache(maxsize=None)
def experiment_folder(experiment: str, scale: str) -> str:
    """The folder name of ``experiment``'s runs at ``scale``: the name, and ``-on-<network>`` when the scale trains
    another network than the experiment's (`dada.layout.network_suffix`, which the apps' ``run_dir`` spells)."""
    settings = OmegaConf.load(CONF_DIR / "experiment" / f"{experiment}.yaml")
    declared = next(
        (entry["override /model"] for entry in settings.get("defaults", []) if "override /model" in entry), None
    )
    if declared is None:
        return experiment  # a detection: no classifier to swap
    network = OmegaConf.load(CONF_DIR / "scale" / f"{scale}.yaml").get("model")
    if "scale" in settings and "model" in settings.scale:
        network = settings.scale.model
    return experiment + layout.network_suffix(network, declared)


@functools.lru_cache(maxsize=None)
def reproduce_settings(scale: str) -> dict:
    """``conf/reproduce/<scale>.yaml``: the threads and jobs of a local run, and each cell's own settings."""
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "reproduce" / f"{scale}.yaml"))


def cell_settings(experiment: str, scale: str) -> tuple[str, ...]:
    """The overrides an experiment's cells take at ``scale`` besides the scale's (conf/reproduce/<scale>.yaml)."""
    return tuple(reproduce_settings(scale)["cells"].get(experiment, ()))


def run_dir(job: Job, scale: str, seed: int, runs_root: Path = Path("runs")) -> Path:
    """``runs/<scale>/<experiment folder>/<estimator or column>/seed<N>`` (dada.layout): scales never share a
    folder."""
    return layout.run_dir(runs_root, scale, experiment_folder(job.experiment, scale), job.variant, seed)


@dataclass(frozen=True)
class Run:
    """One seeded run of an app: ``python -m dada.<app> experiment=<experiment> <overrides>``."""

    app: str  # "search", "train" or "detect"
    experiment: str  # conf/experiment/<experiment>.yaml
    variant: str  # the estimator of a search, the column of an evaluation
    seed: int
    scale: str
    dataset: str  # the data set it needs, a dada.data or dada.detect name
    overrides: tuple[str, ...]
    run_dir: Path
    needs: Path | None = None  # the run folder it reads: a search's policy.json, or a backbone's weights

    def __repr__(self) -> str:
        return f"Run({self.app} {self.experiment}/{self.variant} seed {self.seed}, {self.scale})"

    @property
    def label(self) -> str:
        return f"{self.app} {self.experiment}/{self.variant}/seed{self.seed}"

    def command(self, python: str = sys.executable) -> list[str]:
        """The subprocess command line; every override is a Hydra override of the app, which places the run in
        ``run_dir`` itself (its config spells dada.layout's pattern from these names)."""
        runs_root = self.run_dir.parents[3]
        return [
            python,
            "-m",
            f"dada.{self.app}",
            f"experiment={self.experiment}",
            f"scale={self.scale}",
            f"seed={self.seed}",
            f"runs_root={runs_root}",
            f"variant_name={self.variant}",
            *self.overrides,
        ]


def _needs(job: Job, scale: str, seed: int, runs_root: Path) -> Path | None:
    """The run folder ``job`` reads: an evaluation's search, a detection's backbone."""
    if isinstance(job, DetectJob):
        return run_dir(job.backbone, scale, seed, runs_root)
    if isinstance(job, EvalJob) and job.search is not None:
        return run_dir(job.search, scale, seed, runs_root)
    return None


def _overrides(job: Job, scale: str, seed: int, runs_root: Path) -> tuple[str, ...]:
    own = cell_settings(job.experiment, scale)
    needs = _needs(job, scale, seed, runs_root)
    if isinstance(job, DetectJob):
        return (*job.overrides, f"backbone.run={needs}", *own)
    if needs is None:
        return (*job.overrides, *own)
    return (*job.overrides, f"policy.source={RunFolder(needs).policy}", *own)


def make_run(job: Job, scale: str, seed: int, runs_root: Path = Path("runs")) -> Run:
    needs = _needs(job, scale, seed, runs_root)
    return Run(
        job.app,
        job.experiment,
        job.variant,
        seed,
        scale,
        job.dataset,
        _overrides(job, scale, seed, runs_root),
        run_dir(job, scale, seed, runs_root),
        needs,
    )


def plan(
    target: str, scale: str = "smoke", seeds: tuple[int, ...] | None = (0,), runs_root: Path = Path("runs")
) -> list[Run]:
    """Every run of ``target`` for each seed (None: the target's own, `Layout.seeds`): all searches first, then the
    evaluations, then the detections."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid choices: {', '.join(SCALES)}")
    layout = get_layout(target)
    runs = [make_run(job, scale, seed, runs_root) for job in jobs(layout) for seed in seeds or layout.seeds]
    return sorted(runs, key=stage)


def plan_many(
    targets: tuple[str, ...], scale: str, seeds: tuple[int, ...] | None, runs_root: Path = Path("runs")
) -> list[Run]:
    """The union of several targets' runs, each once, searches first."""
    runs = {}
    for target in targets:
        runs.update({run.run_dir: run for run in plan(target, scale, seeds, runs_root)})
    return sorted(runs.values(), key=stage)


def missing_data(dataset: str, data_root: Path) -> Path | None:
    """Where data set ``dataset`` (a dada.data or a dada.detect name) should be when its files are missing under
    ``data_root``, else None."""
    spec = DETECTION_DATASETS.get(dataset) or get_spec(dataset)
    return spec.missing(Path(data_root))
