"""Detection data sets in COCO's layout, read through torchvision's ``CocoDetection``: COCO 2017 and the embedded set.

Both name their image folders and instance files under the data root the same way, so one reader serves both:

    <data root>/coco/{train2017, val2017, annotations/instances_train2017.json, annotations/instances_val2017.json}
    <data root>/fashion-mnist-detection/{train, val, annotations/instances_train.json, annotations/instances_val.json}

COCO is never downloaded: a missing file raises ``DatasetNotFoundError`` naming it and the layout. The embedded set
is built from Fashion-MNIST on first use (``dada.detect.embedded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pycocotools.coco import COCO
from torch.utils.data import Subset
from torchvision import datasets
from torchvision.transforms import v2

from dada.data._errors import missing_paths_error
from dada.data.fashion_mnist import missing_fashion_mnist
from dada.data.folders import open_image
from dada.detect.annotations import read_instances

SPLITS = ("train", "val")


@dataclass(frozen=True)
class DetectionSpec:
    """Where a detection set's two splits live under the data root: image folders and COCO instance files."""

    name: str
    folder: str
    images: tuple[str, str]  # train, val image folders inside ``folder``
    annotations: tuple[str, str]  # train, val instance files inside ``folder``
    embedded: bool = False  # built from Fashion-MNIST on first use instead of read from the data root

    def paths(self, root: Path, split: str) -> tuple[Path, Path]:
        """The image folder and the instance file of ``split`` (train or val) under ``root``."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid choices: {', '.join(SPLITS)}")
        index = SPLITS.index(split)
        base = Path(root) / self.folder
        return base / self.images[index], base / self.annotations[index]

    @property
    def layout(self) -> str:
        return "\n".join(f"{self.folder}/{path}" for path in (*self.images, *self.annotations))

    def missing(self, root: Path) -> Path | None:
        """Where the data set should be when a file it needs is missing under ``root``, else None."""
        if self.embedded:
            return missing_fashion_mnist(Path(root))
        needed = [path for split in SPLITS for path in self.paths(root, split)]
        return Path(root) / self.folder if any(not path.exists() for path in needed) else None

    def require(self, root: Path) -> None:
        """Raise ``DatasetNotFoundError`` naming every missing path and the expected layout."""
        missing = [path for split in SPLITS for path in self.paths(root, split) if not path.exists()]
        if missing:
            raise missing_paths_error(self.name, Path(root), missing, self.layout)


DETECTION_DATASETS = {
    spec.name: spec
    for spec in (
        DetectionSpec(
            "coco",
            "coco",
            ("train2017", "val2017"),
            ("annotations/instances_train2017.json", "annotations/instances_val2017.json"),
        ),
        DetectionSpec(
            "fashion-mnist-detection",
            "fashion-mnist-detection",
            ("train", "val"),
            ("annotations/instances_train.json", "annotations/instances_val.json"),
            embedded=True,
        ),
    )
}


def get_detection_spec(name: str) -> DetectionSpec:
    if name not in DETECTION_DATASETS:
        raise ValueError(f"unknown detection data set {name!r}; valid choices: {', '.join(DETECTION_DATASETS)}")
    return DETECTION_DATASETS[name]


def drop_crowd(image, target: dict) -> tuple:
    """Keep the instances that are not crowd regions (MMDetection and torchvision train without them)."""
    crowd = torch.as_tensor(target.pop("iscrowd", []), dtype=torch.bool)
    if crowd.any():
        keep = ~crowd
        for key in ("boxes", "labels", "masks"):
            if key in target:
                target[key] = target[key][keep]
    return image, target


def train_transform(flip: float) -> v2.Compose:
    """Horizontal flip with probability ``flip`` (image, boxes and masks together), to float [0, 1]; crowd regions
    and degenerate boxes dropped. Resizing happens inside the detector (``min_size``, ``max_size``)."""
    return v2.Compose(
        [
            v2.ToImage(),
            drop_crowd,
            v2.RandomHorizontalFlip(flip),
            v2.ToDtype(torch.float32, scale=True),
            v2.SanitizeBoundingBoxes(),
        ]
    )


def test_transform() -> v2.Compose:
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def coco_split(images: Path, annotations: Path, train: bool, masks: bool = False, flip: float = 0.5):
    """One split as torchvision's ``CocoDetection``, wrapped for the v2 transforms: ``(image, target)`` with XYXY
    ``boxes``, category-id ``labels`` and, with ``masks``, instance masks; the test split's target is its image id."""
    keys = {"image_id", "boxes", "labels", "iscrowd", *(("masks",) if masks else ())} if train else {"image_id"}
    transforms = train_transform(flip) if train else test_transform()
    instances = read_instances(annotations, "train" if train else "val")
    return datasets.wrap_dataset_for_transforms_v2(CheckedCocoDetection(images, instances, transforms), keys)


class CheckedCocoDetection(datasets.CocoDetection):
    """torchvision's ``CocoDetection`` over an instance file already read and checked (`read_instances`)."""

    def __init__(self, root: Path, coco: COCO, transforms=None):
        datasets.VisionDataset.__init__(self, str(root), transforms=transforms)  # CocoDetection's would re-read it
        self.coco = coco
        self.ids = sorted(coco.imgs)

    def _load_image(self, id: int):  # noqa: A002 (torchvision's name)
        """The image as RGB through `open_image`: an undecodable file or a decompression bomb is named."""
        return open_image(str(Path(self.root) / self.coco.loadImgs(id)[0]["file_name"]))


def with_instances(dataset) -> list[int]:
    """Indices of the images with at least one non-crowd instance (MMDetection's ``filter_empty_gt``)."""
    coco = dataset.coco
    return [index for index, image_id in enumerate(dataset.ids) if coco.getAnnIds(imgIds=image_id, iscrowd=False)]


def subset(dataset, indices: list[int], size: int | None, seed: int) -> Subset:
    """``size`` of ``indices`` drawn with ``seed`` (all of them when ``size`` is None or larger), in sorted order."""
    chosen = np.asarray(indices)
    if size is not None and size < len(chosen):
        chosen = np.sort(np.random.default_rng(seed).choice(chosen, size, replace=False))
    return Subset(dataset, chosen.tolist())


def num_classes(dataset) -> int:
    """The detector's class count: the largest category id + 1 (index 0 is the background; COCO's ids have gaps)."""
    return max(dataset.coco.getCatIds()) + 1


def collate(batch: list) -> tuple:
    """A batch as (images, targets): detectors take lists, since images differ in size."""
    return tuple(zip(*batch))
