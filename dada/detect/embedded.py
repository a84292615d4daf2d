"""The embedded detection set: Fashion-MNIST items pasted onto larger canvases, written in COCO's format.

Built once under the data root (``fashion-mnist-detection/``), deterministically from one seed. Each CANVAS x CANVAS
canvas has a dim noise background and 1 to MAX_ITEMS items, each scaled by a factor drawn from SCALE_RANGE and placed
where its box overlaps no other item's. An item's mask is its own nonzero pixels after scaling, and its box is the
tight box of that mask where it was placed. Train canvases take Fashion-MNIST's training items, val canvases its test
items, so a backbone trained on Fashion-MNIST's training set never saw a val item. Items of 28 to 56 pixels make
small and medium COCO objects; the set has no large ones (area > 96^2).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision import datasets

from dada.data.fashion_mnist import PADDING, read_fashion_mnist
from dada.detect.coco_format import Instance, write_split
from dada.detect.datasets import SPLITS, get_detection_spec

NAME = "fashion-mnist-detection"
VERSION = 1  # goes up when the set changes; recorded in the instance files' info
CANVAS = 128
IMAGES = {"train": 1000, "val": 200}
MAX_ITEMS = 3
SCALE_RANGE = (1.0, 2.0)
BACKGROUND_MAX = 32  # background pixels are uniform in [0, BACKGROUND_MAX)
PLACEMENT_TRIES = 20
SEED = 0


def _items(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's 28x28 grey items (the 32x32 loader's padding removed) and their labels."""
    images, labels = read_fashion_mnist(root, train=train)
    side = images.shape[-1] - PADDING
    return images[:, 0, PADDING:side, PADDING:side].numpy(), labels.numpy()


def _overlaps(box: tuple[int, int, int, int], other: tuple[int, int, int, int]) -> bool:
    x, y, width, height = box
    other_x, other_y, other_width, other_height = other
    return x < other_x + other_width and other_x < x + width and y < other_y + other_height and other_y < y + height


def _place(rng: np.random.Generator, mask: np.ndarray, taken: list) -> tuple[int, int, tuple] | None:
    """A top-left corner for an item whose tight box overlaps none in ``taken``, and that box; None if none found."""
    rows, columns = np.nonzero(mask)
    top, left = rows.min(), columns.min()
    height, width = rows.max() - top + 1, columns.max() - left + 1
    for _ in range(PLACEMENT_TRIES):
        y, x = (int(value) for value in rng.integers(0, CANVAS - mask.shape[0] + 1, size=2))
        box = (x + int(left), y + int(top), int(width), int(height))
        if not any(_overlaps(box, other) for other in taken):
            return y, x, box
    return None


def compose_canvas(rng: np.random.Generator, items: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, list]:
    """One canvas (HxWx3 uint8) and its instances, drawn with ``rng``."""
    canvas = rng.integers(0, BACKGROUND_MAX, (CANVAS, CANVAS), dtype=np.uint8)
    instances: list[Instance] = []
    for _ in range(int(rng.integers(1, MAX_ITEMS + 1))):
        index = int(rng.integers(len(items)))
        side = round(items.shape[1] * rng.uniform(*SCALE_RANGE))
        item = np.asarray(Image.fromarray(items[index]).resize((side, side), Image.BILINEAR))
        mask = item > 0
        placed = _place(rng, mask, [instance.box for instance in instances]) if mask.any() else None
        if placed is None:
            continue
        y, x, box = placed
        canvas[y : y + side, x : x + side][mask] = item[mask]
        full = np.zeros((CANVAS, CANVAS), dtype=bool)
        full[y : y + side, x : x + side] = mask
        instances.append(Instance(int(labels[index]) + 1, box, full))
    return np.repeat(canvas[..., None], 3, axis=2), instances


def _write(staging: Path, root: Path) -> None:
    """Both splits under ``staging`` (in the layout ``datasets`` reads), from the Fashion-MNIST under ``root``."""
    info = {"description": "Fashion-MNIST items on noise canvases (dada.detect.embedded)", "version": VERSION}
    for split in SPLITS:
        items, labels = _items(root, train=split == "train")
        rng = np.random.default_rng([SEED, SPLITS.index(split)])
        canvases = [compose_canvas(rng, items, labels) for _ in range(IMAGES[split])]
        images_dir, annotations = get_detection_spec(NAME).paths(staging, split)
        pixels, instances = zip(*canvases)
        write_split(images_dir, annotations, pixels, instances, datasets.FashionMNIST.classes, info)


def build_embedded(root: str | os.PathLike) -> Path:
    """The embedded set's folder under ``root``, written there first if it is not complete (atomically: built beside
    it, then renamed, so a killed build leaves nothing half-written)."""
    root = Path(root)
    spec = get_detection_spec(NAME)
    target = root / spec.folder
    if all(path.exists() for split in SPLITS for path in spec.paths(root, split)):
        return target
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", dir=root))
    try:
        _write(building, root)
        os.replace(building / spec.folder, target)
    except OSError:
        if not target.is_dir():  # not another process that finished first
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target
