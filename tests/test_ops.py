"""dada.ops: the op table, tensor-vs-PIL parity on real images, mask and dtype semantics, argument errors."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.util
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from dada.ops import OP_NAMES, OPS, OpSpec, _tensor, apply, apply_indexed, apply_pil
from dada.ops._table import batch_values

FOOLBOX_DATA = Path(importlib.util.find_spec("foolbox").origin).parent / "data"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Cutout")
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Fast AutoAugment (Lim et al., 2019), augmentations.py, augment_list.
FAST_AA_RANGES = {
    "ShearX": (-0.3, 0.3),
    "ShearY": (-0.3, 0.3),
    "TranslateX": (-0.45, 0.45),
    "TranslateY": (-0.45, 0.45),
    "Rotate": (-30, 30),
    "Solarize": (0, 256),
    "Posterize": (4, 8),
    "Contrast": (0.1, 1.9),
    "Color": (0.1, 1.9),
    "Brightness": (0.1, 1.9),
    "Sharpness": (0.1, 1.9),
    "Cutout": (0, 0.2),
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Hundreds of small-tensor calls: one thread avoids OpenMP spin-waits when the two cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- real images ---------------------------------------------------------------------------------------------------


def _foolbox(prefix: str, count: int, size: int | None = None) -> list[Image.Image]:
    """foolbox's real fixture images (its ImageNet ones are 512 px or more: centre-cropped to ``size``)."""
    images = [Image.open(path).convert("RGB") for path in sorted(FOOLBOX_DATA.glob(f"{prefix}_*"))[:count]]
    return images if size is None else [ImageOps.fit(image, (size, size)) for image in images]


def _fashion_mnist(count: int) -> list[Image.Image]:
    """The first Fashion-MNIST test images (IDX: 16-byte header, then 28x28 uint8), padded to 32x32, as RGB."""
    with gzip.open(FASHION_MNIST) as file:
        pixels = np.frombuffer(file.read(16 + 28 * 28 * count), dtype=np.uint8, offset=16)
    padded = np.pad(pixels.reshape(count, 28, 28), ((0, 0), (2, 2), (2, 2)))
    return [Image.fromarray(np.repeat(image[..., None], 3, axis=2)) for image in padded]


@functools.cache
def _images(dataset: str) -> tuple[list[Image.Image], torch.Tensor]:
    """A few real images as PIL and as one uint8 batch [B, 3, H, W]."""
    images = {
        "cifar10": lambda: _foolbox("cifar10", 20),
        "imagenet": lambda: _foolbox("imagenet", 4, size=224),
        "fashion_mnist": lambda: _fashion_mnist(12),
    }[dataset]()
    return images, torch.stack([_to_tensor(image) for image in images])


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def _centers(batch: torch.Tensor, seed: int) -> torch.Tensor:
    """Cutout centres spread over the whole image, corners included (the box then gets clipped)."""
    height, width = batch.shape[-2:]
    return torch.rand(len(batch), 2, generator=torch.Generator().manual_seed(seed)) * torch.tensor([width, height])


# -- the op table --------------------------------------------------------------------------------------------------


def test_table_lists_the_15_ops_in_search_order():
    assert OP_NAMES == (
        "ShearX",
        "ShearY",
        "TranslateX",
        "TranslateY",
        "Rotate",
        "AutoContrast",
        "Invert",
        "Equalize",
        "Solarize",
        "Posterize",
        "Contrast",
        "Color",
        "Brightness",
        "Sharpness",
        "Cutout",
    )
    assert tuple(OPS) == OP_NAMES and all(isinstance(spec, OpSpec) for spec in OPS.values())


def test_table_holds_fast_autoaugment_ranges():
    ranges = {name: (spec.low, spec.high) for name, spec in OPS.items() if spec.has_magnitude}
    assert ranges == FAST_AA_RANGES
    assert {name for name, spec in OPS.items() if spec.signed} == set(GEOMETRIC) - {"Cutout"}
    assert [name for name, spec in OPS.items() if spec.integer] == ["Posterize"]


def test_value_maps_level_linearly_onto_the_range():
    assert OPS["Rotate"].value(0.0) == -30 and OPS["Rotate"].value(0.5) == 0 and OPS["Rotate"].value(1.0) == 30
    assert OPS["Contrast"].value(0.5) == pytest.approx(1.0)
    assert OPS["Posterize"].value(0.3) == 5 and OPS["Posterize"].value(1.0) == 8
    levels = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    assert torch.equal(OPS["Posterize"].value(levels), torch.tensor([4.0, 5.0, 8.0], dtype=torch.float64))


def test_batch_values_agree_with_opspec_value():
    op_index = torch.arange(len(OP_NAMES)).repeat_interleave(3)
    level = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64).repeat(len(OP_NAMES))
    sign = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64).repeat(len(OP_NAMES))
    expected = [
        OPS[OP_NAMES[k]].value(m) * (s if OPS[OP_NAMES[k]].signed else 1)
        for k, m, s in zip(op_index.tolist(), level.tolist(), sign.tolist())
    ]
    torch.testing.assert_close(batch_values(op_index, level, sign), torch.tensor(expected, dtype=torch.float64))


def test_table_is_read_only():
    with pytest.raises(TypeError):
        OPS["Flip"] = OPS["Rotate"]


def test_opspec_is_frozen_and_readable():
    spec = OPS["Rotate"]
    assert repr(spec).startswith("OpSpec(name='Rotate', low=-30.0, high=30.0, signed=True")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.low = 0.0


def test_kernel_order_covers_every_op_once():
    assert sorted(_tensor.KERNEL_ORDER) == sorted(OP_NAMES)


# -- parity with the PIL reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["cifar10", "imagenet", "fashion_mnist"])
@pytest.mark.parametrize("sign", [1, -1], ids=["pos", "neg"])
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("op", OP_NAMES)
def test_tensor_backend_matches_pil(op, level, sign, dataset):
    images, batch = _images(dataset)
    centers = _centers(batch, seed=OP_NAMES.index(op))
    expected = torch.stack(
        [
            _to_tensor(
                apply_pil(image, op, level, sign=sign, center=tuple(center.tolist()) if op == "Cutout" else None)
            )
            for image, center in zip(images, centers)
        ]
    )
    actual = apply(batch, op, level, sign=sign, center=centers)
    assert actual.dtype == torch.uint8 and actual.shape == batch.shape
    difference = (actual.int() - expected.int()).abs()
    if op in GEOMETRIC:
        # Nearest resampling: a source point on a pixel boundary may round either way (ImageNet Rotate: ~0.3%).
        assert (difference.amax(dim=1) <= 1).float().mean() >= 0.97
    else:
        assert difference.float().mean() <= 1.0


# -- batch semantics -----------------------------------------------------------------------------------------------


def _batch(seed: int = 0, size: int = 8, side: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (size, 3, side, side), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("op", OP_NAMES)
def test_mask_leaves_unmasked_samples_unchanged(op):
    x = _batch().float() / 255
    mask = torch.tensor([True, False, True, True, False, False, True, False])
    centers = _centers(x, seed=1)
    out = apply(x, op, 0.8, mask=mask, sign=-1, center=centers)
    assert torch.equal(out[~mask], x[~mask])
    assert torch.equal(out[mask], apply(x[mask], op, 0.8, sign=-1, center=centers[mask]))


def test_apply_indexed_applies_each_sample_its_own_op_and_level():
    generator = torch.Generator().manual_seed(0)
    x = _batch(size=30).float() / 255
    op_index = torch.randint(len(OP_NAMES), (30,), generator=generator)
    level = torch.rand(30, generator=generator)
    sign = torch.where(torch.rand(30, generator=generator) < 0.5, -1, 1)
    centers = _centers(x, seed=2)
    out = apply_indexed(x, op_index, level, sign=sign, center=centers)
    for i in range(30):
        expected = apply(x[i : i + 1], OP_NAMES[op_index[i]], level[i], sign=int(sign[i]), center=centers[i])
        assert torch.equal(out[i : i + 1], expected), OP_NAMES[op_index[i]]


@pytest.mark.parametrize("op", OP_NAMES)
def test_uint8_and_float_inputs_agree(op):
    x = _batch(seed=3)
    level = torch.linspace(0, 1, len(x))
    centers = _centers(x, seed=3)
    from_uint8 = apply(x, op, level, sign=1, center=centers)
    from_float = apply(x.float() / 255, op, level, sign=1, center=centers)
    assert from_float.dtype == torch.float32 and from_uint8.dtype == torch.uint8
    assert torch.equal(from_uint8, from_float.mul(255).round().to(torch.uint8))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_float_dtype_is_kept(dtype):
    x = _batch().to(dtype) / 255
    assert apply(x, "Rotate", 1.0).dtype == dtype


def test_random_mirror_flips_about_half_of_the_samples():
    count = 400
    x = _batch(size=1).expand(count, -1, -1, -1)
    out = apply(x, "TranslateX", 1.0, generator=torch.Generator().manual_seed(0))
    positive = (out == apply(x, "TranslateX", 1.0, sign=1)).flatten(1).all(dim=1)
    negative = (out == apply(x, "TranslateX", 1.0, sign=-1)).flatten(1).all(dim=1)
    assert bool((positive ^ negative).all())
    assert abs(positive.float().mean().item() - 0.5) <= 4 * math.sqrt(0.25 / count)


def test_pil_random_mirror_flips_about_half_of_the_calls():
    count = 400
    image = _images("cifar10")[0][0]
    positive = np.array(apply_pil(image, "ShearX", 1.0, sign=1))
    random.seed(0)
    flips = [not np.array_equal(np.array(apply_pil(image, "ShearX", 1.0)), positive) for _ in range(count)]
    assert abs(np.mean(flips) - 0.5) <= 4 * math.sqrt(0.25 / count)


def test_generator_makes_random_draws_reproducible():
    x = _batch(size=16)
    op_index = torch.tensor([OP_NAMES.index("Rotate"), OP_NAMES.index("Cutout")]).repeat(8)

    def run(seed):
        return apply_indexed(x, op_index, 1.0, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


def test_random_cutout_fills_one_square_inside_the_image():
    x = torch.zeros(64, 3, 20, 20, dtype=torch.uint8)
    out = apply(x, "Cutout", 1.0, generator=torch.Generator().manual_seed(0))  # side 0.2 * 20 = 4 pixels
    filled = (out != 0).any(dim=1)
    rows, columns = filled.any(dim=2).sum(dim=1), filled.any(dim=1).sum(dim=1)
    assert torch.equal(filled.sum(dim=(1, 2)), rows * columns)  # a filled rectangle
    assert bool(((rows >= 1) & (rows <= 5) & (columns >= 1) & (columns <= 5)).all())
    assert bool((out.permute(0, 2, 3, 1)[filled] == torch.tensor([125, 123, 114], dtype=torch.uint8)).all())


def test_pil_random_cutout_fills_one_square():
    random.seed(0)
    image = Image.new("RGB", (20, 20))
    filled = np.array(apply_pil(image, "Cutout", 1.0)).any(axis=2)
    rows, columns = filled.any(axis=1).sum(), filled.any(axis=0).sum()
    assert filled.sum() == rows * columns and 1 <= rows <= 5 and 1 <= columns <= 5


# -- argument errors -----------------------------------------------------------------------------------------------


def test_unknown_op_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid ops: ShearX, ShearY"):
        apply(_batch(), "Flip", 0.5)
    with pytest.raises(ValueError, match="valid ops: ShearX, ShearY"):
        apply_pil(_images("cifar10")[0][0], "SamplePairing", 0.5)


@pytest.mark.parametrize("level", [-0.1, 1.5, float("nan"), torch.tensor([0.5] * 7 + [1.01])])
def test_level_outside_unit_interval_is_rejected(level):
    with pytest.raises(ValueError, match=r"level must lie in \[0, 1\]"):
        apply(_batch(), "Rotate", level)
    if not isinstance(level, torch.Tensor):
        with pytest.raises(ValueError, match=r"level must lie in \[0, 1\]"):
            apply_pil(_images("cifar10")[0][0], "Rotate", level)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sign": 0}, "sign must be"),
        ({"sign": torch.tensor([1, -1, 2, 1, 1, 1, 1, 1])}, "sign must be"),
        ({"level": torch.full((3,), 0.5)}, r"level must be a scalar or of shape \(8,\)"),
        ({"mask": torch.ones(8)}, "mask must be a bool tensor"),
        ({"mask": torch.ones(5, dtype=torch.bool)}, "mask must be a scalar or of shape"),
        ({"center": torch.zeros(8, 3)}, "center must be"),
    ],
)
def test_bad_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        apply(_batch(), "Cutout", **{"level": 0.5, **arguments})


def test_bad_op_index_is_rejected():
    x = _batch()
    with pytest.raises(ValueError, match=r"op_index must lie in \[0, 14\], indexing OP_NAMES: ShearX"):
        apply_indexed(x, torch.full((8,), 15), 0.5)
    with pytest.raises(ValueError, match="integer tensor"):
        apply_indexed(x, torch.zeros(8), 0.5)


@pytest.mark.parametrize(
    "x", [torch.zeros(2, 1, 8, 8), torch.zeros(3, 8, 8), torch.zeros(2, 3, 8, 8, dtype=torch.int32)]
)
def test_bad_images_are_rejected(x):
    with pytest.raises(ValueError, match="image batch|uint8 or float"):
        apply(x, "Invert", 0.5)


def test_center_is_for_cutout_only_in_pil():
    with pytest.raises(ValueError, match="center applies to Cutout only"):
        apply_pil(_images("cifar10")[0][0], "Rotate", 0.5, center=(1.0, 2.0))
