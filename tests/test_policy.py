"""Policy: shipped paper policies, JSON and Fast AA archive round trips, batched and v2 application."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from dada.ops import OP_NAMES
from dada.policy import NAMED_POLICIES, Operation, Policy, SubPolicy, draw_indices, load_named


@pytest.mark.parametrize("name", NAMED_POLICIES)
def test_shipped_policies_are_the_papers_top_25(name):
    policy = load_named(name)
    assert len(policy) == 25 and all(len(s.operations) == 2 for s in policy.sub_policies)
    assert "github.com/VDIGPKU/DADA" in policy.source
    assert Policy.load(f"dada-{name}").to_archive() == policy.to_archive()


def test_first_cifar10_sub_policy_rounds_to_the_official_readme():
    first = load_named("cifar10").sub_policies[0]
    rounded = [(op.name, round(op.probability, 2), round(op.level, 2)) for op in first.operations]
    assert rounded == [("TranslateX", 0.52, 0.58), ("Rotate", 0.57, 0.53)]


def test_shipped_policies_load_by_family_and_data_set():
    assert Policy.load("dada:svhn").to_archive() == load_named("svhn").to_archive()
    fastaa = Policy.load("fastaa-imagenet")
    assert fastaa.name == "fastaa-imagenet" and fastaa.to_archive() == load_named("imagenet", "fastaa").to_archive()
    assert len(fastaa) > 25 and all(len(s.operations) == 2 for s in fastaa.sub_policies)
    with pytest.raises(ValueError, match="valid: cifar10, svhn, imagenet"):
        load_named("cifar100", "fastaa")
    with pytest.raises(ValueError, match="valid: dada, fastaa"):
        load_named("cifar10", "autoaugment")
    with pytest.raises(FileNotFoundError, match="fastaa-svhn"):
        Policy.load("fastaa-cifar100")


def test_json_and_archive_round_trips(tmp_path):
    policy = Policy.random(25, 2, seed=3)
    assert Policy.load(policy.save(tmp_path / "p.json")).to_dict() == policy.to_dict()
    assert Policy.from_archive(policy.to_archive()).to_archive() == policy.to_archive()


def test_random_policy_is_seeded():
    assert Policy.random(25, 2, seed=1).to_archive() == Policy.random(25, 2, seed=1).to_archive()
    assert Policy.random(25, 2, seed=1).to_archive() != Policy.random(25, 2, seed=2).to_archive()


def test_apply_batch_draws_per_image_and_keeps_dtype():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    policy = Policy([SubPolicy((Operation("Invert", 1.0, 0.5),)), SubPolicy((Operation("Posterize", 0.0, 0.5),))])
    out = policy.apply_batch(images, generator=torch.Generator().manual_seed(0))
    inverted = (out == 255 - images).flatten(1).all(1)
    unchanged = (out == images).flatten(1).all(1)
    assert out.dtype == torch.uint8 and bool((inverted | unchanged).all())
    assert 10 < int(inverted.sum()) < 54  # about half of 64: a sub-policy per image, not per batch


def test_policy_is_a_v2_transform_on_pil_and_tensors():
    transform = v2.Compose(
        [
            v2.RandomCrop(32, padding=4),
            v2.RandomHorizontalFlip(),
            Policy.load("cifar10"),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
        ]
    )
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    assert transform(image).shape == (3, 32, 32)
    assert Policy.load("svhn")(torch.zeros(3, 32, 32, dtype=torch.uint8)).shape == (3, 32, 32)
    assert "TranslateX(p=0.52, m=0.58)" in repr(Policy.load("cifar10"))


def test_bad_policies_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ShearX"):
        Operation("Shear", 0.5, 0.5)
    with pytest.raises(ValueError, match="outside"):
        Operation("Invert", 1.5, 0.5)
    with pytest.raises(FileNotFoundError, match="cifar10"):
        Policy.load(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="sub_policies"):
        Policy.from_dict({"name": "x"})


def test_apply_batch_takes_grey_batches_as_three_equal_channels():
    grey = torch.randint(0, 256, (32, 1, 16, 16), dtype=torch.uint8)
    policy = Policy([SubPolicy((Operation(name, 1.0, 0.7),)) for name in OP_NAMES if name != "Cutout"])
    out = policy.apply_batch(grey, generator=torch.Generator().manual_seed(0))
    rgb = policy.apply_batch(grey.expand(-1, 3, -1, -1), generator=torch.Generator().manual_seed(0))
    assert out.shape == grey.shape and torch.equal(out[:, 0], rgb[:, 0])
    # every op but Cutout (whose fill is Fast AA's RGB grey, 125 in channel 0) keeps grey images grey
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 0], rgb[:, 2])
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\].*\(2, 2, 8, 8\)"):
        policy.apply_batch(torch.zeros(2, 2, 8, 8, dtype=torch.uint8))


def test_apply_batch_draws_on_the_generators_device_and_returns_on_the_images():
    """The device logic without a GPU: draws come from the generator's device and move to the target device."""
    generator = torch.Generator().manual_seed(0)
    drawn = draw_indices(25, 8, generator, "meta")
    assert drawn.device.type == "meta" and drawn.shape == (8,)
    expected = torch.randint(25, (8,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(draw_indices(25, 8, torch.Generator().manual_seed(0), "cpu"), expected)
    assert draw_indices(25, 8, None, "cpu").device.type == "cpu"
