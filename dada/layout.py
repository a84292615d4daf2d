"""Where a run goes: ``<runs_root>/<scale>/<experiment>/<variant>/seed<N>``, for both apps and ``reproduce``.

``analysis`` finds a run by its ``summary.json`` at that depth, whoever launched it. The apps' configs spell the
same pattern (``run_dir`` in conf/search.yaml and conf/train.yaml, from ``experiment_name`` and ``variant_name``);
a test holds them to ``run_dir`` below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SEED_PREFIX = "seed"


def run_dir(runs_root: str | Path, scale: str, experiment: str, variant: str, seed: int) -> Path:
    """The folder of one seeded run."""
    return Path(runs_root) / scale / experiment / variant / f"{SEED_PREFIX}{seed}"


def parse_run_dir(path: str | Path) -> dict[str, Any]:
    """scale, experiment, variant and seed from a run folder's last four parts; ValueError if it is not one."""
    parts = Path(path).parts[-4:]
    if len(parts) != 4 or not parts[3].startswith(SEED_PREFIX) or not parts[3][len(SEED_PREFIX) :].isdigit():
        raise ValueError(f"{path} is not a run folder <scale>/<experiment>/<variant>/{SEED_PREFIX}<N>")
    scale, experiment, variant, seed = parts
    return {"scale": scale, "experiment": experiment, "variant": variant, "seed": int(seed[len(SEED_PREFIX) :])}


def find_run_dirs(runs_root: str | Path) -> list[Path]:
    """Every run folder under ``runs_root`` that has a summary (any status), sorted."""
    return sorted(path.parent for path in Path(runs_root).glob(f"*/*/*/{SEED_PREFIX}*/summary.json"))
