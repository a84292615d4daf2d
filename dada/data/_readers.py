"""Readers for CIFAR-10/100 and SVHN over torchvision (download=False), as uint8 NCHW tensors.

Each reader returns ``(images [N, 3, 32, 32] uint8, labels [N] int64)``. torchvision checks every
file's MD5 sum on each load; the classes here check only that the files exist (``load_images`` has
already named any that are missing). Hashing costs seconds per load (SVHN extra is 1.3 GB) and rejects
every copy but the canonical one, such as the tests' tiny files in the same format.
"""
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets

SVHN_FOLDER = "svhn"


def _without_checksums(cifar_class: type[datasets.CIFAR10]) -> type[datasets.CIFAR10]:
    """``cifar_class`` with its file lists kept and their MD5 sums dropped."""
    attributes = {
        "train_list": [[name, None] for name, _ in cifar_class.train_list],
        "test_list": [[name, None] for name, _ in cifar_class.test_list],
        "meta": {**cifar_class.meta, "md5": None},
    }
    return type(cifar_class.__name__, (cifar_class,), attributes)


_CIFAR10 = _without_checksums(datasets.CIFAR10)
_CIFAR100 = _without_checksums(datasets.CIFAR100)


class _SVHN(datasets.SVHN):
    split_list = {split: [url, filename, None] for split, (url, filename, _) in datasets.SVHN.split_list.items()}


def cifar_files(cifar_class: type[datasets.CIFAR10]) -> tuple[str, ...]:
    """Paths under the data root that torchvision opens for either split (it checks all of them)."""
    names = [name for name, _ in cifar_class.train_list + cifar_class.test_list] + [cifar_class.meta["filename"]]
    return tuple(f"{cifar_class.base_folder}/{name}" for name in names)


def svhn_files(*splits: str) -> tuple[str, ...]:
    """Paths under the data root of SVHN's ``.mat`` files for ``splits`` (train, test, extra)."""
    return tuple(f"{SVHN_FOLDER}/{datasets.SVHN.split_list[split][1]}" for split in splits)


CIFAR10_FILES = cifar_files(datasets.CIFAR10)
CIFAR100_FILES = cifar_files(datasets.CIFAR100)


def _read_cifar(cifar_class: type[datasets.CIFAR10], root: Path, train: bool) -> tuple[Tensor, Tensor]:
    dataset = cifar_class(root, train=train, download=False)
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # torchvision holds NHWC
    return images, torch.tensor(dataset.targets, dtype=torch.long)


def read_cifar10(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """CIFAR-10 from ``root/cifar-10-batches-py``: 50,000 train or 10,000 test images."""
    return _read_cifar(_CIFAR10, root, train)


def read_cifar100(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python``: 50,000 train or 10,000 test images."""
    return _read_cifar(_CIFAR100, root, train)


def _read_svhn_splits(root: Path, splits: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """The named SVHN splits, concatenated in order; torchvision maps label 10 to digit 0."""
    parts = [_SVHN(root / SVHN_FOLDER, split=split, download=False) for split in splits]
    images = torch.cat([torch.from_numpy(part.data) for part in parts])  # torchvision holds NCHW
    labels = torch.cat([torch.from_numpy(part.labels) for part in parts])
    return images, labels


def read_svhn(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """SVHN core set: 73,257 train or 26,032 test images (paper Sec. 4.2)."""
    return _read_svhn_splits(root, ("train",) if train else ("test",))


def read_svhn_extra(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """SVHN for evaluation: train is core train plus the 531,131 extra images; test is the core test set."""
    return _read_svhn_splits(root, ("train", "extra") if train else ("test",))
