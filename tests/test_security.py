"""Files from a run folder or a data root never run code: checkpoints load with torch's safe loader, CIFAR batches
with a restricted unpickler; and the source has no eval/exec, unsafe YAML, shell or unrestricted pickle."""

import ast
import io
import os
import pickle
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data import random_images, write_cifar_batch, write_pickle

from dada import checkpoint, data
from dada.data._errors import CorruptDataError, UnsafeDataError
from dada.data._readers import _CifarUnpickler
from dada.search.loop import SearchRun

REPOSITORY = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("dada", "reproduce", "analysis", "benchmarks")
CIFAR10_NAMES = [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch", "batches.meta"]


class Payload:
    """Unpickling this object runs ``touch <marker>``: it stands for any code planted in a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def plant_checkpoint(path: Path, marker: Path) -> Path:
    """A checkpoint as torch.save writes it (a zip archive) whose pickle runs code when loaded unsafely."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 0, "model": Payload(marker)}, path)
    return path


def plant_cifar_root(root: Path, marker: Path) -> Path:
    """A CIFAR-10 data root whose data_batch_1 runs code when unpickled; the other files are valid and tiny."""
    for seed, name in enumerate(CIFAR10_NAMES):
        write_cifar_batch(root / "cifar-10-batches-py" / name, random_images(2, seed), torch.tensor([0, 1]), "labels")
    write_pickle(root / "cifar-10-batches-py" / "data_batch_1", {"data": Payload(marker), "labels": [0, 1]})
    return root / "cifar-10-batches-py" / "data_batch_1"


# -- checkpoints (issue 12, case 18) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda path, marker: plant_checkpoint(path, marker), id="torch-save-zip"),
        pytest.param(
            lambda path, marker: path.write_bytes(pickle.dumps(Payload(marker), protocol=2)), id="plain-pickle"
        ),
    ],
)
def test_malicious_checkpoint_is_refused_without_running_and_kept(tmp_path, write):
    path, marker = tmp_path / "run" / "checkpoint.pt", tmp_path / "marker"
    path.parent.mkdir()
    write(path, marker)
    content = path.read_bytes()
    with pytest.raises(checkpoint.UnsafeCheckpointError, match="refused as unsafe") as error:
        checkpoint.load(path)
    assert str(path) in str(error.value) and "weights_only=False" not in str(error.value)
    assert not marker.exists(), "the payload ran"
    assert path.read_bytes() == content


def test_rng_state_round_trips_through_the_safe_loader(tmp_path):
    checkpoint.set_rng_state(checkpoint.rng_state())  # any state, as long as the same one is saved
    np.random.randn()  # a cached Gaussian in NumPy's state
    state = checkpoint.rng_state()
    checkpoint.save_atomic({"rng": state}, tmp_path / "checkpoint.pt")
    expected = (random.random(), np.random.randn(), np.random.rand(), torch.rand(2))
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "checkpoint.pt")["rng"])
    restored = (random.random(), np.random.randn(), np.random.rand(), torch.rand(2))
    assert expected[:3] == restored[:3] and torch.equal(expected[3], restored[3])


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["gumbel", "relax", "reinforce"])
def test_search_checkpoint_resumes_through_the_safe_loader(search_config, estimator, tmp_path):
    """What the search saves after a real epoch (optimisers, scheduler, generator, RNG) loads and resumes."""
    cfg = search_config(f"estimator={estimator}")
    SearchRun(cfg).run()
    resumed = SearchRun(cfg)
    saved = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    resumed.resume(saved)
    assert resumed.start_epoch == saved["epoch"] + 1 == 1
    assert all(torch.equal(value, saved["model"][key]) for key, value in resumed.model.state_dict().items())
    assert resumed.scheduler.state_dict() == saved["scheduler"]


# -- CIFAR batches (issue 12, case 19) ---------------------------------------------------------------------------


class _Python2Pickler(pickle._Pickler):
    """Writes strings and bytes as Python 2 ``str`` and names ``numpy.core``, as the CIFAR files were written."""

    def save_str(self, text):
        self.save_bytes(text.encode("latin1"))

    def save_bytes(self, raw):
        header = (
            pickle.SHORT_BINSTRING + bytes([len(raw)])
            if len(raw) < 256
            else pickle.BINSTRING + struct.pack("<i", len(raw))
        )
        self.write(header + raw)
        self.memoize(raw)

    def save_global(self, obj, name=None):
        self.write(pickle.GLOBAL + f"{obj.__module__.replace('numpy._core', 'numpy.core')}\n{obj.__name__}\n".encode())
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, str: save_str, bytes: save_bytes}


def _python2_pickle(content) -> bytes:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(_python2_pickle, id="python2-str-keys"),
        pytest.param(
            lambda content: pickle.dumps({key.encode(): value for key, value in content.items()}),
            id="python3-bytes-keys",
        ),
    ],
)
def test_cifar_batch_in_the_true_format_loads_its_pixels(tmp_path, encode):
    images = random_images(3, seed=7)
    rows = images.reshape(3, -1).numpy()  # R plane, G plane, B plane of each image
    assert rows.dtype == np.uint8 and rows.shape == (3, 3072)
    for seed, name in enumerate(CIFAR10_NAMES):
        write_cifar_batch(tmp_path / "cifar-10-batches-py" / name, random_images(1, seed), torch.tensor([9]), "labels")
    batch = {"batch_label": "testing batch 1 of 1", "labels": [3, 1, 4], "data": rows}
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(encode(batch))
    test = data.load_images("cifar10", tmp_path, train=False)
    assert torch.equal(test.images, images) and test.labels.tolist() == [3, 1, 4]
    assert test.images[1, 2, 0, 5] == rows[1, 2 * 1024 + 5]  # blue plane, row 0, column 5


def test_malicious_cifar_batch_is_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    path = plant_cifar_root(tmp_path / "data", marker)
    with pytest.raises(UnsafeDataError, match="refused as unsafe") as error:
        data.load_images("cifar10", tmp_path / "data", train=True)
    assert str(path) in str(error.value) and "posix.system" in str(error.value)
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize(
    "module, name",
    [
        ("builtins", "eval"),
        ("os", "system"),
        ("builtins", "getattr"),
        ("numpy", "load"),
        ("subprocess", "Popen"),
        ("_codecs", "encode"),
    ],
)
def test_cifar_unpickler_refuses_every_other_global(module, name):
    stream = pickle.PROTO + b"\x02" + pickle.GLOBAL + f"{module}\n{name}\n".encode() + pickle.STOP
    with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
        _CifarUnpickler(io.BytesIO(stream), encoding="latin1").load()


def test_cifar_batch_of_the_wrong_shape_names_the_file(tmp_path):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    for seed, name in enumerate(CIFAR10_NAMES):
        write_cifar_batch(tmp_path / "cifar-10-batches-py" / name, random_images(1, seed), torch.tensor([0]), "labels")
    write_pickle(path, {"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]})
    with pytest.raises(CorruptDataError, match="uint8 \\[N, 3072\\]") as error:
        data.load_images("cifar10", tmp_path, train=False)
    assert str(path) in str(error.value)


# -- what the source never does (issue 12, case 20) --------------------------------------------------------------


def _unsafe_calls(tree: ast.AST) -> list[str]:
    """Calls that could run code from a file or a string: eval/exec, unsafe YAML, shells, unrestricted pickle."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = ast.unparse(node.func)
        keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}
        if function in (
            "eval",
            "exec",
            "compile",
            "__import__",
            "os.system",
            "os.popen",
            "instantiate",
            "hydra.utils.instantiate",
            "yaml.load",
            "yaml.unsafe_load",
            "yaml.full_load",
            "pickle.load",
            "pickle.loads",
            "pickle.Unpickler",
        ):
            found.append(function)
        if function in ("np.load", "numpy.load") and keywords.get("allow_pickle") == "True":
            found.append(f"{function}(allow_pickle=True)")
        if keywords.get("shell") == "True":
            found.append(f"{function}(shell=True)")
        if function.endswith("torch.load") and keywords.get("weights_only") != "True":
            found.append(f"{function} without weights_only=True")
    return found


def test_the_source_never_evaluates_unpickles_or_shells_out():
    """The one unpickler is CIFAR's restricted one (tested above); YAML is read with safe_load or OmegaConf."""
    offences = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPOSITORY / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            offences += [f"{path.relative_to(REPOSITORY)}: {call}" for call in _unsafe_calls(tree)]
            subclasses = [
                node.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef)
                and any(ast.unparse(base) == "pickle.Unpickler" for base in node.bases)
            ]
            if subclasses and path != REPOSITORY / "dada" / "data" / "_readers.py":
                offences.append(f"{path.relative_to(REPOSITORY)}: unpickler {subclasses}")
    assert offences == []


def test_the_source_scan_catches_each_pattern():
    code = (
        "eval(text)\nexec(text)\nyaml.load(stream)\nsubprocess.run(command, shell=True)\npickle.load(file)\n"
        "torch.load(path, weights_only=False)\ntorch.load(path)\nnp.load(path, allow_pickle=True)\n"
    )
    assert len(_unsafe_calls(ast.parse(code))) == 8
    safe = "model.eval()\nyaml.safe_load(stream)\nsubprocess.run(['ls'])\ntorch.load(path, weights_only=True)\n"
    assert _unsafe_calls(ast.parse(safe)) == []
