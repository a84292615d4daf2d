"""Fashion-MNIST, the embedded default data set: real images from Debian's package dataset-fashion-mnist.

torchvision's FashionMNIST reads uncompressed IDX files from ``<root>/FashionMNIST/raw/``; the package
ships them gzipped, so the first load decompresses them there once. Images are zero-padded from 28x28
to 32x32 and repeated to 3 channels, so CIFAR models and the augmentation ops take them unchanged.
"""
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor
from torchvision import datasets

from dada.data._errors import POINT_ELSEWHERE, DatasetNotFoundError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = "Install it with `sudo apt-get install dataset-fashion-mnist` (or `make data`)."
PADDING = 2  # 28 + 2 * 2 = 32, the CIFAR image side
RAW_FILES = tuple(filename.removesuffix(".gz") for filename, _ in datasets.FashionMNIST.resources)


def raw_folder(root: str | os.PathLike) -> Path:
    """Where torchvision's FashionMNIST looks for the uncompressed IDX files."""
    return Path(root) / datasets.FashionMNIST.__name__ / "raw"


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
        if (raw / name).is_file():
            continue
        source = source_dir / f"{name}.gz"
        if not source.is_file():
            raise DatasetNotFoundError(
                f"data set 'fashion-mnist' not found: missing {source.absolute()} "
                f"(from the Debian package dataset-fashion-mnist) and no cached copy at {(raw / name).absolute()}.\n"
                f"{INSTALL_HINT}\n{POINT_ELSEWHERE}"
            )
        raw.mkdir(parents=True, exist_ok=True)
        _decompress(source, raw / name)


def _decompress(source: Path, target: Path) -> None:
    """Gunzip ``source`` to ``target`` atomically: write a temporary file beside it, then rename."""
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", delete=False) as temporary:
        try:
            with gzip.open(source, "rb") as compressed:
                shutil.copyfileobj(compressed, temporary)
        except BaseException:
            os.unlink(temporary.name)
            raise
    os.replace(temporary.name, target)


def _to_three_channels_32(gray: Tensor) -> Tensor:
    """[N, 28, 28] -> [N, 3, 32, 32]: zero border of ``PADDING`` pixels, the gray channel repeated."""
    padded = F.pad(gray, (PADDING, PADDING, PADDING, PADDING))
    return padded.unsqueeze(1).repeat(1, 3, 1, 1)
