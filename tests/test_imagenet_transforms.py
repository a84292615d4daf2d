"""The batched ImageNet search pipeline in dada/transforms.py against torchvision's per-image transforms."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from dada import transforms

EIGVAL = [0.2175, 0.0188, 0.0045]
EIGVEC = [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(batch: int = 4, height: int = 12, width: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=_gen(seed + 100))


def test_shapes_and_dtypes():
    images = _images()
    assert transforms.random_resized_crop(images, 8, generator=_gen()).shape == (4, 3, 8, 8)
    from_uint8 = transforms.random_resized_crop((images * 255).byte(), 6, generator=_gen())
    assert from_uint8.shape == (4, 3, 6, 6) and from_uint8.dtype == torch.float32
    for out in (
        transforms.random_flip(images, _gen()),
        transforms.color_jitter(images, 0.4, 0.4, 0.4, _gen()),
        transforms.lighting(images, 0.1, EIGVAL, EIGVEC, _gen()),
    ):
        assert out.shape == images.shape and out.dtype == torch.float32
    assert transforms.resize_shorter(images, 6).shape == (4, 3, 7, 6)
    assert transforms.center_crop(images, 5).shape == (4, 3, 5, 5)


@pytest.mark.parametrize(
    "augment",
    [
        lambda images, g: transforms.random_resized_crop(images, 8, generator=g),
        lambda images, g: transforms.random_flip(images, g),
        lambda images, g: transforms.color_jitter(images, 0.4, 0.4, 0.4, g),
        lambda images, g: transforms.lighting(images, 0.1, EIGVAL, EIGVEC, g),
    ],
    ids=["random_resized_crop", "random_flip", "color_jitter", "lighting"],
)
def test_same_seed_same_output(augment):
    images = _images(batch=16)
    assert torch.equal(augment(images, _gen(3)), augment(images, _gen(3)))
    assert not torch.equal(augment(images, _gen(3)), augment(images, _gen(4)))


@pytest.mark.parametrize("size", [7, 20])
def test_whole_square_crop_is_a_bicubic_resize(size):
    images = _images(height=12, width=12)
    out = transforms.random_resized_crop(images, size, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=_gen())
    expected = TF.resize(images, [size, size], InterpolationMode.BICUBIC, antialias=False).clamp(0, 1)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def _taps_inside(start: int, length: int, full: int, size: int) -> torch.Tensor:
    """Output positions whose 4 bicubic taps lie in [start, start + length), or are replicated at the image edge."""
    first = torch.floor(start + (torch.arange(size) + 0.5) * length / size - 0.5) - 1
    return ((first >= start) | (start == 0)) & ((first + 3 < start + length) | (start + length == full))


def test_resized_crop_resamples_the_box():
    images = _images(batch=3, height=12, width=10)
    boxes = torch.tensor([[2, 1, 6, 8], [0, 3, 12, 5], [0, 0, 12, 10]])
    out = transforms.resized_crop(images, boxes, 9)
    for image, (top, left, height, width), got in zip(images, boxes.tolist(), out):
        crop = image[None, :, top : top + height, left : left + width]
        expected = F.interpolate(crop, size=(9, 9), mode="bicubic", align_corners=False).clamp(0, 1)[0]
        # inside the image, taps near a box edge read the pixels beyond it; torchvision replicates the crop's edge
        inside = _taps_inside(top, height, 12, 9)[:, None] & _taps_inside(left, width, 10, 9)[None, :]
        assert inside.sum() >= 9
        torch.testing.assert_close(got[:, inside], expected[:, inside], atol=1e-5, rtol=0)


def test_crop_boxes_lie_inside_and_follow_the_requested_area_and_ratio():
    draws, height, width, scale, ratio = 4000, 200, 200, (0.1, 0.5), (3 / 4, 4 / 3)  # every box fits
    top, left, box_h, box_w = (
        transforms.random_resized_crop_boxes(draws, height, width, scale, ratio, _gen()).double().unbind(1)
    )
    assert (top >= 0).all() and (left >= 0).all() and (box_h >= 1).all() and (box_w >= 1).all()
    assert (top + box_h <= height).all() and (left + box_w <= width).all()
    area = box_h * box_w / (height * width)
    rounding = 0.5 / box_h + 0.5 / box_w + 0.25 / (box_h * box_w)  # sides are rounded to whole pixels
    assert (area >= scale[0] * (1 - rounding)).all() and (area <= scale[1] * (1 + rounding)).all()
    log_ratio = torch.log(box_w / box_h)
    assert (log_ratio.abs() <= math.log(4 / 3) + 2 * rounding).all()
    # area ~ U(0.1, 0.5), log ratio ~ U(-log 4/3, log 4/3): means and a quantile within 5 standard errors
    assert abs(area.mean().item() - 0.3) < 5 * (0.4 / math.sqrt(12)) / math.sqrt(draws)
    assert abs(log_ratio.mean().item()) < 5 * (2 * math.log(4 / 3) / math.sqrt(12)) / math.sqrt(draws)
    assert abs((area < 0.2).double().mean().item() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / draws)
    # offsets uniform over the free room
    room = height - box_h + 1
    assert abs((top / room).mean().item() - 0.5) < 5 * (1 / math.sqrt(12)) / math.sqrt(draws) + 0.01


@pytest.mark.parametrize("height, width", [(10, 40), (40, 10), (12, 14)])
def test_crop_boxes_fall_back_to_torchvision_centre_crop(height, width):
    scale, ratio = (2.0, 2.0), (3 / 4, 4 / 3)  # no box of twice the image area fits
    boxes = transforms.random_resized_crop_boxes(3, height, width, scale, ratio, _gen())
    expected = RandomResizedCrop.get_params(torch.zeros(3, height, width), list(scale), list(ratio))
    assert boxes.tolist() == [list(expected)] * 3


def test_random_flip_flips_about_half():
    images = _images(batch=400, height=2, width=3)
    out = transforms.random_flip(images, _gen())
    flipped = (out == images.flip(-1)).flatten(1).all(1)
    assert ((out == images).flatten(1).all(1) | flipped).all()
    assert abs(flipped.double().mean().item() - 0.5) < 5 * 0.5 / math.sqrt(400)


def test_random_crop_flip_is_pad_crop_then_flip_with_its_draws():
    images, padding = _images(batch=6, height=5, width=4), 2
    draws = _gen(7)
    shift_y, shift_x, flip = (torch.rand(6, generator=draws) for _ in range(3))
    padded = F.pad(images, (padding,) * 4)
    for i, got in enumerate(transforms.random_crop_flip(images, padding, _gen(7))):
        y, x = int(shift_y[i] * (2 * padding + 1)), int(shift_x[i] * (2 * padding + 1))
        expected = padded[i, :, y : y + 5, x : x + 4]
        assert torch.equal(got, expected.flip(-1) if flip[i] < 0.5 else expected)


def test_color_jitter_of_strength_zero_is_the_identity():
    images = _images()
    assert torch.equal(transforms.color_jitter(images, 0.0, 0.0, 0.0, _gen()), images)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (transforms.adjust_brightness, TF.adjust_brightness),
        (transforms.adjust_contrast, TF.adjust_contrast),
        (transforms.adjust_saturation, TF.adjust_saturation),
    ],
    ids=["brightness", "contrast", "saturation"],
)
def test_adjustments_match_torchvision(ours, theirs):
    images = _images(batch=4)
    factors = [0.0, 0.6, 1.0, 1.4]
    expected = torch.stack([theirs(image, factor) for image, factor in zip(images, factors)])
    torch.testing.assert_close(ours(images, torch.tensor(factors)), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours(images, 1.3), theirs(images, 1.3), atol=1e-5, rtol=0)


def test_brightness_jitter_scales_each_image_by_one_factor_in_range():
    images = _images(batch=64) * 0.5 + 0.1  # no clamping at 1.4 x
    out = transforms.color_jitter(images, 0.4, 0.0, 0.0, _gen())
    factor = out / images
    per_image = factor.flatten(1)
    torch.testing.assert_close(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5, rtol=0)
    assert (per_image >= 0.6 - 1e-5).all() and (per_image <= 1.4 + 1e-5).all()
    assert per_image[:, 0].std() > 0.1


def test_lighting_of_std_zero_is_the_identity():
    images = _images()
    assert torch.equal(transforms.lighting(images, 0.0, EIGVAL, EIGVEC, _gen()), images)


def test_lighting_adds_one_pca_offset_per_image():
    images = _images(batch=5)
    offset = transforms.lighting(images, 0.1, EIGVAL, EIGVEC, _gen(2)) - images
    torch.testing.assert_close(offset, offset[:, :, :1, :1].expand_as(offset), atol=1e-6, rtol=0)
    alpha = torch.randn(5, 3, generator=_gen(2)) * 0.1
    eigval, eigvec = torch.tensor(EIGVAL), torch.tensor(EIGVEC)
    for got, a in zip(offset[:, :, 0, 0], alpha):
        # the official Lighting: eigvec * alpha (per column) * eigval (per column), summed over columns
        expected = (eigvec * a.view(1, 3) * eigval.view(1, 3)).sum(1)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("height, width, size", [(9, 8, 5), (8, 11, 6), (7, 7, 7)])
def test_center_crop_matches_torchvision(height, width, size):
    images = _images(height=height, width=width)
    assert torch.equal(transforms.center_crop(images, size), TF.center_crop(images, [size, size]))


def test_center_crop_refuses_a_window_larger_than_the_image():
    with pytest.raises(ValueError, match="does not fit"):
        transforms.center_crop(_images(height=4, width=6), 5)


@pytest.mark.parametrize("height, width, size", [(12, 17, 8), (17, 12, 8), (6, 9, 10)])
def test_resize_shorter_matches_torchvision(height, width, size):
    images = _images(height=height, width=width)
    expected = TF.resize(images, [size], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
    torch.testing.assert_close(transforms.resize_shorter(images, size), expected, atol=1e-5, rtol=0)
    as_uint8 = (images * 255).round().byte()
    torch.testing.assert_close(
        transforms.resize_shorter(as_uint8, size),
        TF.resize(as_uint8.float() / 255, [size], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1),
        atol=1e-5,
        rtol=0,
    )


def test_imagenet_config_holds_the_official_pipeline_numbers():
    conf = Path(__file__).resolve().parents[1] / "conf" / "dataset" / "imagenet.yaml"
    pipeline = yaml.safe_load(conf.read_text())["search_pipeline"]
    assert pipeline["pca_eigval"] == EIGVAL and pipeline["pca_eigvec"] == EIGVEC
    assert pipeline["random_resized_crop_scale"] == [0.08, 1.0] and pipeline["color_jitter"] == 0.4
    assert pipeline["lighting_std"] == 0.1 and pipeline["val_resize"] == 256
    eigvec = torch.tensor(EIGVEC, dtype=torch.float64)  # orthonormal eigenvectors, to the 4 printed digits
    torch.testing.assert_close(eigvec.T @ eigvec, torch.eye(3, dtype=torch.float64), atol=1e-3, rtol=0)
