"""Bad inputs and faults from issue 12's probe, one row per case: each fails loudly with a clear message.

A row's id starts with the case number in the issue. ``run`` feeds the bad input; the row asserts the exception
(or warning) type, a phrase of its message and, where a file is at fault, that the message names it.
"""
import gzip
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch
import yaml
from conftest import write_image_folder
from test_security import plant_checkpoint, plant_cifar_root

from analysis.paper import load_paper_results
from dada import checkpoint, data, ops
from dada.data._errors import CorruptDataError, UnsafeDataError
from dada.data.fashion_mnist import RAW_FILES, raw_folder, read_fashion_mnist
from dada.policy import load_named
from dada.tracking import TrackingWarning, create_tracker

IDX_HEADER = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big")  # a uint8 IDX vector of 3 entries
RANGE = r"must lie in \[0, 1\]"


@dataclass(frozen=True)
class Case:
    id: str
    run: Callable[[Path], object]  # feeds the bad input under a temporary folder
    raises: type[BaseException] | type[Warning]
    phrase: str  # a regular expression the message must match
    names_file: bool = False  # the message names a file under the temporary folder


# -- 7: a corrupt image in a folder data set ---------------------------------------------------------------------

def _folder_with_a_corrupt_image(tmp_path: Path):
    write_image_folder(tmp_path / "train", ["cat", "dog"], per_class=2)
    (tmp_path / "train" / "dog" / "1.png").write_bytes(b"not a png")
    return data.load_image_folder("folder", tmp_path, train=True)


def _decode_corrupt_image(tmp_path: Path):
    data.decode_images(_folder_with_a_corrupt_image(tmp_path), torch.arange(4), image_size=4)


def _read_corrupt_image(tmp_path: Path):
    _folder_with_a_corrupt_image(tmp_path)[3]  # the evaluation's DataLoader path


# -- 8: a corrupt Fashion-MNIST file -----------------------------------------------------------------------------

def _fashion_from_sources(tmp_path: Path, compressed: bytes):
    source = tmp_path / "fashion-mnist"
    source.mkdir()
    for name in RAW_FILES:
        (source / f"{name}.gz").write_bytes(compressed)
    read_fashion_mnist(tmp_path / "cache", train=False, source_dir=source)


def _truncated_fashion_gz(tmp_path: Path):
    _fashion_from_sources(tmp_path, gzip.compress(IDX_HEADER + b"abc")[:-6])


def _fashion_gz_of_a_truncated_file(tmp_path: Path):
    _fashion_from_sources(tmp_path, gzip.compress(IDX_HEADER + b"ab"))


def _corrupt_fashion_cache(tmp_path: Path):
    raw = raw_folder(tmp_path / "cache")
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        (raw / name).write_bytes(b"garbage")
    read_fashion_mnist(tmp_path / "cache", train=False, source_dir=tmp_path / "absent")


# -- 12: an unreachable MLflow server ----------------------------------------------------------------------------

def _unreachable_mlflow_server(tmp_path: Path):
    import mlflow  # noqa: F401  (imported first, so the clock measures only the connect)

    started = time.monotonic()
    try:
        with create_tracker(("jsonl", "mlflow"), run_dir=tmp_path / "run", mlflow_uri="http://127.0.0.1:9") as tracker:
            assert time.monotonic() - started < 10 and tracker.backends == ["jsonl"]
            tracker.log_metrics({"loss": 1.0}, step=1)
    finally:
        assert (tmp_path / "run" / "metrics.jsonl").read_text().count('"loss"') == 1


# -- 17: images outside [0, 1] -----------------------------------------------------------------------------------

def _images(fill: float) -> torch.Tensor:
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    images[1, 0, 0, 0] = fill
    return images


def _apply_batch(images: torch.Tensor):
    load_named("cifar10").apply_batch(images, torch.Generator().manual_seed(0))


# -- 18 and 19: files that would run code ------------------------------------------------------------------------

def _refused_unrun(load: Callable[[Path, Path], object]) -> Callable[[Path], None]:
    """``load(tmp_path, marker)``, then check that the payload did not create ``marker``."""
    def run(tmp_path: Path):
        try:
            load(tmp_path, tmp_path / "marker")
        finally:
            assert not (tmp_path / "marker").exists(), "the payload ran"
    return run


def _truncated_checkpoint(tmp_path: Path):
    path = tmp_path / "run" / "checkpoint.pt"
    checkpoint.save_atomic({"model": {"weight": torch.ones(64)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    checkpoint.load(path)


def _garbage_cifar_batch(tmp_path: Path):
    plant_cifar_root(tmp_path, tmp_path / "marker")
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x04garbage")
    data.load_images("cifar10", tmp_path, train=True)


def _yaml_with_a_python_tag(tmp_path: Path):
    marker = tmp_path / "marker"
    (tmp_path / "tables.yaml").write_text(f"table1: !!python/object/apply:os.system ['touch {marker}']\n")
    try:
        load_paper_results(tmp_path / "tables.yaml")
    finally:
        assert not marker.exists(), "the payload ran"


CASES = [
    Case("7-corrupt-image-decoded-for-search", _decode_corrupt_image, CorruptDataError,
         "cannot be decoded.*Delete the file or replace it", names_file=True),
    Case("7-corrupt-image-read-for-evaluation", _read_corrupt_image, CorruptDataError,
         "cannot be decoded.*Delete the file or replace it", names_file=True),
    Case("8-truncated-fashion-mnist-gz", _truncated_fashion_gz, CorruptDataError,
         "is corrupt.*apt-get install --reinstall dataset-fashion-mnist", names_file=True),
    Case("8-fashion-mnist-gz-of-a-truncated-file", _fashion_gz_of_a_truncated_file, CorruptDataError,
         "needs 11.*apt-get install --reinstall dataset-fashion-mnist", names_file=True),
    Case("8-corrupt-fashion-mnist-cache", _corrupt_fashion_cache, CorruptDataError,
         "not a uint8 IDX file.*delete it.*apt-get install --reinstall dataset-fashion-mnist", names_file=True),
    Case("12-unreachable-mlflow-server", _unreachable_mlflow_server, TrackingWarning,
         "mlflow tracking could not start.*127.0.0.1:9 is unreachable"),
    Case("17-apply-above-one", lambda _: ops.apply(_images(1.5), "Rotate", 0.5), ValueError,
         rf"{RANGE}.*found values in \[.*, 1.5\]"),
    Case("17-apply-negative", lambda _: ops.apply(_images(-0.5), "Invert", 0.5), ValueError,
         rf"{RANGE}.*found values in \[-0.5, "),
    Case("17-apply-nan", lambda _: ops.apply(_images(float("nan")), "Posterize", 0.5), ValueError,
         f"{RANGE}.*found NaN"),
    Case("17-apply-inf", lambda _: ops.apply(_images(float("inf")), "Solarize", 0.5), ValueError,
         rf"{RANGE}.*found values in \[.*, inf\]"),
    Case("17-apply-batch-above-one", lambda _: _apply_batch(_images(255.0)), ValueError,
         rf"{RANGE}.*found values in \[.*, 255\]"),
    Case("17-apply-batch-nan", lambda _: _apply_batch(_images(float("nan"))), ValueError, f"{RANGE}.*found NaN"),
    Case("18-malicious-checkpoint",
         _refused_unrun(lambda tmp, marker: checkpoint.load(plant_checkpoint(tmp / "run" / "checkpoint.pt", marker))),
         checkpoint.UnsafeCheckpointError, "was refused as unsafe.*Nothing in it was run", names_file=True),
    Case("18-truncated-checkpoint-holds", _truncated_checkpoint, checkpoint.CorruptCheckpointError,
         "is corrupt.*It was not overwritten", names_file=True),
    Case("19-malicious-cifar-batch",
         _refused_unrun(lambda tmp, marker: (plant_cifar_root(tmp, marker), data.load_images("cifar10", tmp, True))),
         UnsafeDataError, "data_batch_1 was refused as unsafe.*Nothing in it was run", names_file=True),
    Case("19-garbage-cifar-batch", _garbage_cifar_batch, CorruptDataError,
         "data_batch_1 is not a readable CIFAR python batch", names_file=True),
    Case("20-yaml-python-tag-is-not-constructed", _yaml_with_a_python_tag, yaml.YAMLError,
         "could not determine a constructor for the tag"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_loudly(case, tmp_path):
    if issubclass(case.raises, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            case.run(tmp_path)
        messages = [str(warning.message) for warning in caught if issubclass(warning.category, case.raises)]
        assert len(messages) == 1, [str(warning.message) for warning in caught]
        message = messages[0]
    else:
        with pytest.raises(case.raises) as error:
            case.run(tmp_path)
        message = str(error.value)
    assert re.search(case.phrase, message, re.DOTALL), message
    if case.names_file:
        assert str(tmp_path) in message, message
