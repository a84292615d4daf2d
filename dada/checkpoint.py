"""Atomic checkpoints: written to a temporary file and renamed, so a killed job never leaves half a file."""
from __future__ import annotations

import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read; it is left in place for inspection."""


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)
    return path


def load(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None if there is none. A corrupt file raises, naming the file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise CorruptCheckpointError(
            f"checkpoint {path} is corrupt ({type(error).__name__}: {error}). It was not overwritten: "
            f"move or delete it to start the run afresh.") from error


def rng_state() -> dict[str, Any]:
    """Every global random source, for an exact resume."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
