"""Run-wide plumbing: one seed for every random source, the device, and the run folder's lock, identity and record."""

import contextlib
import fcntl
import math
import os
import random
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dada.files import UnreadableFileError, UnsafeRunFileError, open_no_follow, read_json, refuse_link, write_atomic

LOCK_FILE = ".lock"
IDENTITY_IGNORED = ("dataset.root",)  # where the data lives is no setting of the run
# Every app's identity holds these too: a CPU run's numbers depend on its thread count (README), so a resume under
# another count would mix two runs under one record.
IDENTITY_ALWAYS = ("threads",)


class RunLockedError(RuntimeError):
    """Another process holds the run folder."""


class RunMismatchError(ValueError):
    """The run folder holds a run with other settings, finished or not."""


def refuse_non_finite(
    where: str, metrics: Mapping[str, float], modules: Mapping[str, torch.nn.Module], consequence: str
) -> None:
    """Raise FloatingPointError naming the non-finite metrics and module tensors (``<part> <name>``, the first six),
    so that a diverged run is never saved or marked finished; ``consequence`` says what was kept and what to lower."""
    bad = [key for key, value in metrics.items() if not math.isfinite(value)]
    for part, module in modules.items():
        bad += [
            f"{part} {name}"
            for name, tensor in module.state_dict().items()
            if tensor.is_floating_point() and not torch.isfinite(tensor).all()
        ]
    if bad:
        raise FloatingPointError(
            f"non-finite values {where}: {', '.join(bad[:6])}{' ...' if len(bad) > 6 else ''}. {consequence}"
        )


def seed_everything(seed: int, deterministic: bool = False, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer; return a torch Generator seeded alike.

    With ``deterministic=True`` torch uses deterministic kernels, so a CPU run repeats bit for bit at a given
    number of CPU threads: ``threads`` fixes it (None keeps torch's), since CPU reductions add in its order.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False  # a debugging aid that costs ~15% of a step
        torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; any other name is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} was asked for, but torch sees no CUDA device; use device=cpu or auto")
    return device


def finished_summary(run_dir: str | os.PathLike) -> dict | None:
    """The run's ``summary.json`` if the run ended well (status FINISHED), else None: a failed run is re-run."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        summary = read_json(path, "run summary")
    except UnreadableFileError as error:
        raise UnreadableFileError(f"{error}. Nothing was run: move it away to re-run {run_dir}") from None
    return summary if summary.get("status") == "FINISHED" else None


@contextlib.contextmanager
def run_lock(run_dir: "str | os.PathLike") -> Iterator[Path]:
    """Hold ``<run_dir>/.lock`` for the block, so a second process on the same folder is refused, naming the PID
    that holds it. The lock is ``flock``'s: the system drops it when the holder dies, so a killed run leaves none."""
    path = Path(run_dir) / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError as error:
        raise UnsafeRunFileError(
            f"the run folder {run_dir} cannot be created ({error.strerror}); choose another run_dir"
        )
    descriptor = open_no_follow(path, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLockedError(
                f"{run_dir} is in use by process {holder}, which holds {path}; wait for it to end "
                f"(or stop it), or choose another run_dir"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(descriptor)  # releases the lock


def run_identity(cfg: DictConfig, keys: Sequence[str]) -> dict[str, Any]:
    """The settings of ``cfg`` under ``keys`` and `IDENTITY_ALWAYS`, resolved: what a resume or a re-run must not
    change."""
    return OmegaConf.to_container(OmegaConf.masked_copy(cfg, [*keys, *IDENTITY_ALWAYS]), resolve=True)


def _flat(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_identity(
    run_dir: "str | os.PathLike",
    saved: "Mapping[str, Any] | None",
    current: Mapping[str, Any],
    rename: str = "tag=...",
) -> None:
    """Refuse to resume or re-run ``run_dir`` with settings other than ``saved``, naming each changed key; ``rename``
    is the app's key that gives a run its own folder (the search has no ``tag``: ``variant_name=...``).

    The keys of `IDENTITY_ALWAYS` count only where ``saved`` holds them (checkpoints older than them do not) and the
    run is unfinished: re-running a finished run only reads its summary."""
    if saved is None:
        return
    old, new = _flat(saved), _flat(current)
    always = () if finished_summary(run_dir) is not None else tuple(key for key in IDENTITY_ALWAYS if key in old)
    changed = [
        f"{key} ({old.get(key, 'unset')} -> {new.get(key, 'unset')})"
        for key in sorted(old.keys() | new.keys())
        if key not in IDENTITY_IGNORED
        and old.get(key) != new.get(key)
        and (key not in IDENTITY_ALWAYS or key in always)
    ]
    if changed:
        raise RunMismatchError(
            f"{run_dir} holds a run with other settings: {'; '.join(changed)}. It was left as it "
            f"is: resume it with its own settings, or choose another run_dir (or {rename}), or move "
            f"the folder away"
        )


def save_hydra_record(run_dir: "str | os.PathLike", cfg: DictConfig) -> None:
    """Hydra's ``.hydra/`` record (config, Hydra's settings, overrides) of a run the app has accepted.

    The apps set ``hydra.output_subdir: null``, so Hydra writes nothing before the app has checked the folder: a
    finished or refused run keeps the record of the settings it ran with. Outside a Hydra app this does nothing.
    """
    if not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    folder = Path(run_dir) / ".hydra"
    refuse_link(folder)
    for name, node in (
        ("config.yaml", cfg),
        ("hydra.yaml", OmegaConf.create({"hydra": hydra})),
        ("overrides.yaml", hydra.overrides.task),
    ):
        write_atomic(folder / name, OmegaConf.to_yaml(node))
