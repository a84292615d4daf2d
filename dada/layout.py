"""Where a run goes: ``<runs_root>/<scale>/<experiment>/<variant>/seed<N>``, for both apps and ``reproduce``.

``analysis`` finds a run by its ``summary.json`` at that depth, whoever launched it. The apps' configs spell the
same pattern (``run_dir`` in conf/search.yaml and conf/train.yaml, from ``experiment_name`` and ``variant_name``);
a test holds them to ``run_dir`` below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dada.schemas import parse_summary

SEED_PREFIX = "seed"


class RunFolder:
    """One run's folder and the names of what the apps write in it."""

    CHECKPOINT, POLICY, SUMMARY = "checkpoint.pt", "policy.json", "summary.json"
    METRICS, CONFIG = "metrics.jsonl", "config.yaml"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def policy(self) -> Path:
        return self.path / self.POLICY

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    def finished_summary(self) -> dict | None:
        """The run's summary if it ended well (status FINISHED), else None (`dada.runtime.finished_summary`)."""
        from dada.runtime import finished_summary  # torch's import, only where a summary is read

        return finished_summary(self.path)

    def finished_run(self, app: str, label: str, advice: str, error: type[Exception] = ValueError):
        """The typed summary (`dada.schemas`) of the finished ``app`` run here, which another run reads (a policy, a
        backbone); else ``error``, naming ``label`` (what the reader calls it), the problem and ``advice``."""
        summary = self.finished_summary() if self.path.is_dir() else None
        if summary is None:
            raise error(
                f"{label} {self.path} has not finished (no {self.SUMMARY} with status FINISHED there): {advice}"
            )
        typed = parse_summary(summary)
        if typed.app != app:
            raise error(f"{label} {self.path} is a {typed.app} run; it must be a dada.{app} run")
        return typed


def run_dir(runs_root: str | Path, scale: str, experiment: str, variant: str, seed: int) -> Path:
    """The folder of one seeded run."""
    return Path(runs_root) / scale / experiment / variant / f"{SEED_PREFIX}{seed}"


def network_suffix(scale_model: str | None, model: str) -> str:
    """What an experiment's folder name adds when the scale runs another network than the experiment's ``model``:
    ``-on-<network>`` (``table2_cifar10_wrn28_10-on-wrn10_1``), else nothing. The apps' ``run_dir`` spells it with
    the resolver ``${network_suffix:${scale.model},${model.name}}``; `reproduce.plan` computes it from conf/."""
    return "" if scale_model in (None, model) else f"-on-{scale_model}"


def parse_run_dir(path: str | Path) -> dict[str, Any]:
    """scale, experiment, variant and seed from a run folder's last four parts; ValueError if it is not one."""
    parts = Path(path).parts[-4:]
    if len(parts) != 4 or not parts[3].startswith(SEED_PREFIX) or not parts[3][len(SEED_PREFIX) :].isdigit():
        raise ValueError(f"{path} is not a run folder <scale>/<experiment>/<variant>/{SEED_PREFIX}<N>")
    scale, experiment, variant, seed = parts
    return {"scale": scale, "experiment": experiment, "variant": variant, "seed": int(seed[len(SEED_PREFIX) :])}


def find_run_dirs(runs_root: str | Path) -> list[Path]:
    """Every run folder under ``runs_root`` that has a summary (any status), sorted."""
    return sorted(path.parent for path in Path(runs_root).glob(f"*/*/*/{SEED_PREFIX}*/{RunFolder.SUMMARY}"))
