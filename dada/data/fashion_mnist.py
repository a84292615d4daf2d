"""Fashion-MNIST, the embedded default data set: real images from Debian's package dataset-fashion-mnist.

torchvision's FashionMNIST reads uncompressed IDX files from ``<root>/FashionMNIST/raw/``; the package
ships them gzipped, so the first load decompresses them there once. Images are zero-padded from 28x28
to 32x32 and repeated to 3 channels, so CIFAR models and the augmentation ops take them unchanged.
A damaged file, gzipped or cached, raises `CorruptDataError` naming it and how to restore it.
"""

import gzip
import math
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor
from torchvision import datasets

from dada.data._errors import POINT_ELSEWHERE, CorruptDataError, DatasetNotFoundError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "Install it with `sudo apt-get install dataset-fashion-mnist` (or `make data`)."
REINSTALL = "`sudo apt-get install --reinstall dataset-fashion-mnist`"
IDX_UINT8 = 0x08  # the IDX type code of unsigned bytes, the only one Fashion-MNIST uses
PADDING = 2  # 28 + 2 * 2 = 32, the CIFAR image side
RAW_FILES = tuple(filename.removesuffix(".gz") for filename, _ in datasets.FashionMNIST.resources)


def raw_folder(root: str | os.PathLike) -> Path:
    """Where torchvision's FashionMNIST looks for the uncompressed IDX files."""
    return Path(root) / datasets.FashionMNIST.__name__ / "raw"


def missing_fashion_mnist(root: Path) -> Path | None:
    """The Debian package's folder when neither it nor a cache under ``root`` holds the files, else None."""
    found = any(FASHION_MNIST_DIR.glob("*.gz")) or raw_folder(root).is_dir()
    return None if found else FASHION_MNIST_DIR


def read_fashion_mnist(
    root: str | os.PathLike, train: bool, source_dir: str | os.PathLike = FASHION_MNIST_DIR
) -> tuple[Tensor, Tensor]:
    """Fashion-MNIST as ``(images [N, 3, 32, 32] uint8, labels [N] int64)``: 60,000 train or 10,000 test.

    The raw files are cached under ``root`` from the gzipped copies in ``source_dir`` on first use.
    """
    _ensure_raw_files(raw_folder(root), Path(source_dir))
    dataset = datasets.FashionMNIST(root, train=train, download=False)
    return _to_three_channels_32(dataset.data), dataset.targets.long()


def _ensure_raw_files(raw: Path, source_dir: Path) -> None:
    for name in RAW_FILES:
        cached, source = raw / name, source_dir / f"{name}.gz"
        if cached.is_file():
            problem = _idx_problem(cached)
            if problem:
                raise CorruptDataError(
                    f"{cached.absolute()} is corrupt ({problem}). It is a cache decompressed from {source.absolute()}: "
                    f"delete it and the next load makes it again. If that copy is damaged too, restore it with "
                    f"{REINSTALL}."
                )
            continue
        if not source.is_file():
            raise DatasetNotFoundError(
                f"data set 'fashion-mnist' not found: missing {source.absolute()} "
                f"(from the Debian package dataset-fashion-mnist) and no cached copy at {cached.absolute()}.\n"
                f"{INSTALL_HINT}\n{POINT_ELSEWHERE}"
            )
        raw.mkdir(parents=True, exist_ok=True)
        _decompress(source, cached)


def _decompress(source: Path, target: Path) -> None:
    """Gunzip ``source`` to ``target`` atomically and only if it holds a whole IDX file: write beside it, rename."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as temporary:
        try:
            try:
                with gzip.open(source, "rb") as compressed:
                    shutil.copyfileobj(compressed, temporary)
            except (gzip.BadGzipFile, EOFError, zlib.error) as error:
                raise CorruptDataError(
                    f"{source.absolute()} is corrupt ({type(error).__name__}: {error}). Restore it with {REINSTALL}."
                ) from error
            temporary.flush()
            problem = _idx_problem(Path(temporary.name))
            if problem:
                raise CorruptDataError(
                    f"{source.absolute()} is corrupt: it unzips to {problem}. Restore it with {REINSTALL}."
                )
        except BaseException:
            os.unlink(temporary.name)
            raise
    os.replace(temporary.name, target)


def _idx_problem(path: Path) -> str | None:
    """What is wrong with the uint8 IDX file at ``path`` (its header against its size), or None if nothing."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        magic = file.read(4)
        if len(magic) < 4 or magic[:3] != bytes([0, 0, IDX_UINT8]) or magic[3] not in (1, 3):
            return f"not a uint8 IDX file: its header starts with {magic.hex() or 'nothing'}"
        header = file.read(4 * magic[3])
    if len(header) < 4 * magic[3]:
        return f"a truncated IDX file of {size} bytes"
    shape = [int.from_bytes(header[start : start + 4], "big") for start in range(0, len(header), 4)]
    expected = 4 + len(header) + math.prod(shape)
    return None if size == expected else f"an IDX file of {size} bytes, where its header {shape} needs {expected}"


def _to_three_channels_32(gray: Tensor) -> Tensor:
    """[N, 28, 28] -> [N, 3, 32, 32]: zero border of ``PADDING`` pixels, the gray channel repeated."""
    padded = F.pad(gray, (PADDING, PADDING, PADDING, PADDING))
    return padded.unsqueeze(1).repeat(1, 3, 1, 1)
