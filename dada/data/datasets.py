"""The data sets by name: where each lives under the data root, and loaders over torchvision.

Nothing is ever downloaded. The in-memory sets load as one uint8 NCHW tensor (``load_images``);
ImageNet and ``folder`` (your own data) load as a torchvision ``ImageFolder`` (``folders.load_image_folder``).
"""

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from dada.data import _readers
from dada.data._errors import missing_paths_error
from dada.data.fashion_mnist import FASHION_MNIST_DIR, missing_fashion_mnist, read_fashion_mnist

Reader = Callable[[Path, bool], tuple[Tensor, Tensor]]


def default_root() -> Path:
    """The data root when a caller names none: ``$DATA_ROOT`` if set, else ``./data``."""
    return Path(os.environ.get("DATA_ROOT", "./data"))


@dataclass(frozen=True)
class DatasetSpec:
    """One data set: label count (None: as many as the folder holds), image side, and the paths each split
    needs under the data root."""

    name: str
    num_classes: int | None
    image_size: int
    layout: str
    train_paths: tuple[str, ...] = field(repr=False)
    test_paths: tuple[str, ...] = field(repr=False)
    read: Reader | None = field(default=None, repr=False)
    locate_missing: Callable[[Path], Path | None] | None = field(default=None, repr=False)  # sets without paths

    @property
    def in_memory(self) -> bool:
        """Whether ``load_images`` holds it as one tensor (every set but the image folders)."""
        return self.read is not None

    def require(self, root: Path, train: bool) -> None:
        """Raise ``DatasetNotFoundError`` naming every path the split needs that is not under ``root``."""
        paths = self.train_paths if train else self.test_paths
        missing = [root / path for path in paths if not (root / path).exists()]
        if missing:
            raise missing_paths_error(self.name, root, missing, self.layout)

    def missing(self, root: Path) -> Path | None:
        """Where the data set should be when a file it needs is missing under ``root``, else None."""
        if self.locate_missing is not None:
            return self.locate_missing(Path(root))
        for path in (*self.train_paths, *self.test_paths):
            if not (Path(root) / path).exists():
                return Path(root) / Path(path).parts[0]
        return None


def _lines(paths: Sequence[str]) -> str:
    return "\n".join(paths)


_IMAGENET_SPLITS = ("imagenet/train", "imagenet/val")
_FOLDER_SPLITS = ("train", "val")

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="cifar10",
            num_classes=10,
            image_size=32,
            layout=_lines(_readers.CIFAR10_FILES),
            train_paths=_readers.CIFAR10_FILES,
            test_paths=_readers.CIFAR10_FILES,
            read=_readers.read_cifar10,
        ),
        DatasetSpec(
            name="cifar100",
            num_classes=100,
            image_size=32,
            layout=_lines(_readers.CIFAR100_FILES),
            train_paths=_readers.CIFAR100_FILES,
            test_paths=_readers.CIFAR100_FILES,
            read=_readers.read_cifar100,
        ),
        DatasetSpec(
            name="svhn",
            num_classes=10,
            image_size=32,
            layout=_lines(_readers.svhn_files("train", "test")),
            train_paths=_readers.svhn_files("train"),
            test_paths=_readers.svhn_files("test"),
            read=_readers.read_svhn,
        ),
        DatasetSpec(
            name="svhn-extra",
            num_classes=10,
            image_size=32,
            layout=_lines(_readers.svhn_files("train", "extra", "test")),
            train_paths=_readers.svhn_files("train", "extra"),
            test_paths=_readers.svhn_files("test"),
            read=_readers.read_svhn_extra,
        ),
        DatasetSpec(
            name="imagenet",
            num_classes=1000,
            image_size=224,
            layout=_lines([f"{split}/<wnid>/*.JPEG" for split in _IMAGENET_SPLITS]),
            train_paths=_IMAGENET_SPLITS[:1],
            test_paths=_IMAGENET_SPLITS[1:],
        ),
        DatasetSpec(
            name="folder",
            num_classes=None,
            image_size=32,
            layout=_lines([f"{split}/<class>/*.<jpg|png|...>" for split in _FOLDER_SPLITS]),
            train_paths=_FOLDER_SPLITS[:1],
            test_paths=_FOLDER_SPLITS[1:],
        ),
        DatasetSpec(
            name="fashion-mnist",
            num_classes=10,
            image_size=32,
            layout=f"nothing: read from {FASHION_MNIST_DIR}, cached under FashionMNIST/raw/",
            train_paths=(),
            test_paths=(),
            read=read_fashion_mnist,
            locate_missing=missing_fashion_mnist,
        ),
    )
}


def list_datasets() -> list[str]:
    """Names accepted by ``load_images`` and ``get_spec``, sorted."""
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    """The spec of data set ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid choices: {', '.join(list_datasets())}")
    return DATASETS[name]


@dataclass(frozen=True, repr=False, eq=False)
class LabeledImages:
    """A labeled image set held in memory: ``images`` uint8 [N, 3, H, W], ``labels`` int64 [N]."""

    images: Tensor
    labels: Tensor
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {list(self.images.shape)}")
        if self.labels.dtype != torch.long or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 [{len(self.images)}], got {self.labels.dtype} {list(self.labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Tensor | Sequence[int]) -> "LabeledImages":
        """The examples at ``indices``, in that order (e.g. from ``reduced_indices``)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices])

    def __repr__(self) -> str:
        return (
            f"LabeledImages(name={self.name!r}, size={len(self)}, "
            f"image_shape={tuple(self.images.shape[1:])}, num_classes={self.num_classes})"
        )


def load_images(name: str, root: str | os.PathLike, train: bool) -> LabeledImages:
    """Data set ``name`` (any but the image folders) from ``root``, the train or the test split, in memory."""
    spec = get_spec(name)
    if not spec.in_memory:
        raise ValueError(f"data set {name!r} is an image folder, not held in memory; load it with load_image_folder")
    root = Path(root)
    spec.require(root, train)
    images, labels = spec.read(root, train)
    return LabeledImages(images, labels, spec.num_classes, name)
