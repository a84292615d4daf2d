"""Readers for CIFAR-10/100 and SVHN, as uint8 NCHW tensors.

Each reader returns ``(images [N, 3, 32, 32] uint8, labels [N] int64)``. CIFAR's python batches are pickles,
so they are read here with an unpickler that builds only what the format holds (dicts, lists, strings,
numbers and uint8 NumPy arrays) and refuses anything else, such as a payload that would run code. SVHN's
``.mat`` files go through torchvision (download=False). No MD5 sums are checked: hashing costs seconds per
load (SVHN extra is 1.3 GB) and rejects every copy but the canonical one, such as the tests' tiny files.
"""

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision import datasets

from dada.data._errors import CorruptDataError, UnsafeDataError

SVHN_FOLDER = "svhn"
CIFAR_PIXELS = 3 * 32 * 32
# The globals a CIFAR batch may name: NumPy's array reconstruction (numpy.core before NumPy 2) and plain builtins.
_CIFAR_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        *(("builtins", name) for name in ("dict", "list", "tuple", "str", "bytes", "int", "float")),
    }
)


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global outside ``_CIFAR_GLOBALS``."""


class _CifarUnpickler(pickle.Unpickler):
    """Builds only the objects of ``_CIFAR_GLOBALS``; any other global is refused before it is looked up."""

    def find_class(self, module: str, name: str):
        if (module.replace("__builtin__", "builtins"), name) not in _CIFAR_GLOBALS:
            raise _RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)


class _SVHN(datasets.SVHN):
    split_list = {split: [url, filename, None] for split, (url, filename, _) in datasets.SVHN.split_list.items()}


def cifar_files(cifar_class: type[datasets.CIFAR10]) -> tuple[str, ...]:
    """Paths under the data root of a CIFAR folder in torchvision's layout: both splits' batches and the meta file."""
    names = [name for name, _ in cifar_class.train_list + cifar_class.test_list] + [cifar_class.meta["filename"]]
    return tuple(f"{cifar_class.base_folder}/{name}" for name in names)


def svhn_files(*splits: str) -> tuple[str, ...]:
    """Paths under the data root of SVHN's ``.mat`` files for ``splits`` (train, test, extra)."""
    return tuple(f"{SVHN_FOLDER}/{datasets.SVHN.split_list[split][1]}" for split in splits)


CIFAR10_FILES = cifar_files(datasets.CIFAR10)
CIFAR100_FILES = cifar_files(datasets.CIFAR100)


def _load_cifar_batch(path: Path) -> dict:
    """One CIFAR python batch, unpickled with ``_CifarUnpickler`` (latin-1, as Python 2 wrote the files)."""
    try:
        with open(path, "rb") as file:
            batch = _CifarUnpickler(file, encoding="latin1").load()
    except _RefusedGlobal as error:
        raise UnsafeDataError(
            f"{path} was refused as unsafe: it asks to build {error}, which a CIFAR python batch never holds "
            f"(only dicts, lists, strings, numbers and NumPy arrays). Nothing in it was run. Replace it with the "
            f"original file from https://www.cs.toronto.edu/~kriz/cifar.html."
        ) from None
    except Exception as error:  # a damaged pickle fails in many ways: all of them mean "replace the file"
        raise CorruptDataError(
            f"{path} is not a readable CIFAR python batch ({type(error).__name__}: {error}). Replace it with the "
            f"original file from https://www.cs.toronto.edu/~kriz/cifar.html."
        ) from error
    if not isinstance(batch, dict):
        raise CorruptDataError(f"{path} is not a CIFAR python batch: it holds a {type(batch).__name__}, not a dict")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}


def _read_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, list]:
    """``(data [N, 3072] uint8, labels)`` of one batch, each row the R, G and B planes of a 32x32 image."""
    batch = _load_cifar_batch(path)
    pixels, labels = batch.get("data"), batch.get(label_key)
    if (
        not isinstance(pixels, np.ndarray)
        or pixels.dtype != np.uint8
        or pixels.ndim != 2
        or pixels.shape[1] != CIFAR_PIXELS
        or not isinstance(labels, list)
        or len(labels) != len(pixels)
    ):
        raise CorruptDataError(
            f"{path} is not a CIFAR python batch: expected 'data' as uint8 [N, {CIFAR_PIXELS}] and '{label_key}' "
            f"as a list of N labels, found keys {sorted(map(str, batch))}"
        )
    return pixels, labels


def _read_cifar(cifar_class: type[datasets.CIFAR10], label_key: str, root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """The batches of ``cifar_class``'s split under ``root``, concatenated in torchvision's order."""
    folder = root / cifar_class.base_folder
    names = [name for name, _ in (cifar_class.train_list if train else cifar_class.test_list)]
    batches = [_read_cifar_batch(folder / name, label_key) for name in names]
    images = torch.from_numpy(np.concatenate([pixels for pixels, _ in batches])).view(-1, 3, 32, 32)
    return images, torch.tensor([label for _, labels in batches for label in labels], dtype=torch.long)


def read_cifar10(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """CIFAR-10 from ``root/cifar-10-batches-py``: 50,000 train or 10,000 test images."""
    return _read_cifar(datasets.CIFAR10, "labels", root, train)


def read_cifar100(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """CIFAR-100 (fine labels) from ``root/cifar-100-python``: 50,000 train or 10,000 test images."""
    return _read_cifar(datasets.CIFAR100, "fine_labels", root, train)


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
