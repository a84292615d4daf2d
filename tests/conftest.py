"""Shared fixtures: compose the real Hydra configs and shrink them in one place (tiny net, few steps, CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dada.config import compose_app_config

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

SEARCH_SMOKE = [
    "scale=smoke",
    "scale.model=wrn10_1",
    "scale.search_epochs=1",
    "scale.search_images=192",
    "scale.batch_size=32",
    "device=cpu",
    "logger=jsonl",
]

torch.set_num_threads(2)


def compose_config(config_name: str, overrides: list[str]):
    """The app's real config with ``overrides`` applied, as Hydra composes it on the command line."""
    return compose_app_config(config_name, overrides)


@pytest.fixture
def search_config(tmp_path):
    """``search_config(*overrides)``: a smoke search config writing under tmp_path."""

    def make(*overrides: str):
        return compose_config("search", [*SEARCH_SMOKE, f"run_dir={tmp_path}/run", *overrides])

    return make


def write_image_folder(folder: Path, classes: list[str], per_class: int, size: int = 8) -> None:
    """An ImageFolder tree: ``folder/<class>/<item>.png``, each image flat grey at level 10 * class + item."""
    for index, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for item in range(per_class):
            pixels = np.full((size, size, 3), 10 * index + item, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{item}.png")
