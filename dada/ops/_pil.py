"""PIL reference backend: the ops as Fast AutoAugment's ``augmentations.py`` applies them, one image at a time."""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from ._table import CUTOUT_FILL, check_level, check_sign, op_spec


def _affine(image: Image.Image, coefficients: tuple[float, ...]) -> Image.Image:
    """PIL's AFFINE transform: output (x, y) reads input (a x + b y + c, d x + e y + f); NEAREST, black fill."""
    return image.transform(image.size, Image.Transform.AFFINE, coefficients)


def _enhance(enhancer: type[ImageEnhance._Enhance]) -> Callable[[Image.Image, float], Image.Image]:
    return lambda image, factor: enhancer(image).enhance(factor)


_KERNELS: dict[str, Callable[[Image.Image, float], Image.Image]] = {
    "ShearX": lambda image, v: _affine(image, (1, v, 0, 0, 1, 0)),
    "ShearY": lambda image, v: _affine(image, (1, 0, 0, v, 1, 0)),
    "TranslateX": lambda image, v: _affine(image, (1, 0, v * image.width, 0, 1, 0)),
    "TranslateY": lambda image, v: _affine(image, (1, 0, 0, 0, 1, v * image.height)),
    "Rotate": lambda image, v: image.rotate(v),
    "AutoContrast": lambda image, _: ImageOps.autocontrast(image),
    "Invert": lambda image, _: ImageOps.invert(image),
    "Equalize": lambda image, _: ImageOps.equalize(image),
    "Solarize": lambda image, v: ImageOps.solarize(image, v),
    "Posterize": lambda image, v: ImageOps.posterize(image, int(v)),
    "Contrast": _enhance(ImageEnhance.Contrast),
    "Color": _enhance(ImageEnhance.Color),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
}


def cutout_box(center: tuple[float, float], side: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Fast AA's CutoutAbs box, inclusive pixel bounds (x0, y0, x1, y1) of a ``side``-pixel square.

    The top-left corner is clipped to the image (which shifts the square), the bottom-right is cut at the border.
    """
    x0 = int(max(0.0, center[0] - side / 2))
    y0 = int(max(0.0, center[1] - side / 2))
    return x0, y0, int(min(width, x0 + side)), int(min(height, y0 + side))


def _cutout(image: Image.Image, fraction: float, center: tuple[float, float] | None) -> Image.Image:
    if fraction <= 0:
        return image
    if center is None:  # Fast AA calls np.random.uniform(w), which draws from [1, w); we use the whole image
        center = (random.uniform(0, image.width), random.uniform(0, image.height))
    image = image.copy()
    box = cutout_box(center, fraction * image.width, image.width, image.height)
    ImageDraw.Draw(image).rectangle(box, CUTOUT_FILL)
    return image


def apply_pil(
    image: Image.Image, name: str, level: float, sign: int | None = None, center: tuple[float, float] | None = None
) -> Image.Image:
    """Apply op ``name`` at ``level`` in [0, 1] to an RGB image, with Fast AA's semantics.

    ``sign`` (+1 / -1) fixes the random mirror of Shear/Translate/Rotate; None flips with probability 0.5.
    ``center`` (x, y) in pixels fixes the Cutout square's centre; None draws it uniformly over the image.
    """
    spec = op_spec(name)
    check_level(level)
    check_sign(sign)
    value = spec.value(level)
    if spec.signed:
        value *= sign if sign is not None else random.choice((-1, 1))
    if name == "Cutout":
        return _cutout(image, value, center)
    if center is not None:
        raise ValueError(f"center applies to Cutout only, not {name!r}")
    return _KERNELS[name](image, value)
