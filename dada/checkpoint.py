"""Atomic checkpoints: written to a temporary file and renamed, so a killed job never leaves half a file.

Loading uses ``torch.load(weights_only=True)``, which accepts tensors and plain data only and never runs code
from the file, so a checkpoint planted in a run folder cannot execute anything. Everything saved here is
therefore plain data: the random states are converted to tensors, lists and numbers (``rng_state``).
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dada.files import atomic_file


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read; it is left in place for inspection."""


class UnsafeCheckpointError(CorruptCheckpointError):
    """A checkpoint holds objects beyond tensors and plain data; the safe loader refused it without running any."""


class WrongCheckpointError(CorruptCheckpointError):
    """A file that is no checkpoint of this kind of run: another app's, no dada checkpoint at all, or one whose
    tensors do not fit this run's model."""


# Each app's checkpoints say their ``kind``; those written before it are told apart by a key only they hold.
KIND_KEYS = {"search": "space", "train": "history"}


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    """Save ``state`` through a unique temporary file renamed into place, never through a link (`dada.files`)."""
    path = Path(path)
    with atomic_file(path) as file:
        torch.save(state, file)
    return path


def load(path: str | Path, kind: str | None = None) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if there is none. A corrupt or unsafe file raises, naming the file,
    and so does one that is not a checkpoint of ``kind`` (``search`` or ``train``) when a kind is given."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"checkpoint {path} was refused as unsafe: the safe loader (torch.load with weights_only=True) reads "
            f"only tensors and plain data, and this file holds something else or is not a dada checkpoint "
            f"({_refusal_reason(error)}). Nothing in it was run and it was not overwritten: delete it unless you "
            f"know where it came from, or move it away to start the run afresh."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as error:
        raise CorruptCheckpointError(
            f"checkpoint {path} is corrupt ({type(error).__name__}: {error}). It was not overwritten: "
            f"move or delete it to start the run afresh."
        ) from error
    if kind is not None:
        _check_kind(path, state, kind)
    return state


def _check_kind(path: Path, state: Any, kind: str) -> None:
    found = None
    if isinstance(state, dict):
        found = state.get("kind") or next((name for name, key in KIND_KEYS.items() if key in state), None)
    if found != kind:
        what = f"a {found} checkpoint" if found else f"no dada checkpoint (it holds a {type(state).__name__})"
        raise WrongCheckpointError(
            f"checkpoint {path} is {what}, not a {kind} one. It was not overwritten: give this "
            f"{kind} run its own run_dir, or move the file away to start it afresh."
        )


def _refusal_reason(error: pickle.UnpicklingError) -> str:
    """The line of torch's refusal that says what was refused (torch wraps it in advice to load unsafely)."""
    lines = [line.strip() for line in str(error).splitlines()]
    return next((line for line in lines if line.startswith(("Trying to load", "Unsupported"))), "refused by torch")


def rng_state() -> dict[str, Any]:
    """Every global random source, for an exact resume, as data the safe loader accepts."""
    python_version, python_internal, python_gauss = random.getstate()
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state = {
        "python": [python_version, list(python_internal), python_gauss],
        "numpy": {
            "name": name,
            "keys": keys.tolist(),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random sources saved by ``rng_state``."""
    python_version, python_internal, python_gauss = state["python"]
    random.setstate((python_version, tuple(python_internal), python_gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            np.array(numpy_state["keys"], dtype=np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
