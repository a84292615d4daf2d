"""The official pipeline's CPU side: PIL augmentation time per image (``dada.ops.apply_pil``), in process CPU time.

The official DADA search applies a sampled sub-policy of two ops to every training image in PIL, one image at a
time, then converts it to a tensor. ``pil_seconds_per_image`` times that on this machine: each of the 15 ops at a
random level on random RGB images, two ops an image (a sub-policy whose ops both fire: the upper end), plus the
conversion to a tensor. Process CPU time, not wall time: the cores may be shared with other work.
"""

from __future__ import annotations

import random
import time

import numpy as np
from PIL import Image
from torchvision.transforms.functional import to_tensor

from dada.ops import OP_NAMES, apply_pil

OPS_PER_IMAGE = 2  # a sub-policy's two operations (Li et al. 2020, Sec. 4.1: k = 2)


def _images(size: int, count: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def pil_seconds_per_image(size: int, images: int = 8, seed: int = 0) -> float:
    """CPU seconds to augment one ``size`` px image with two PIL ops and convert it to a tensor."""
    random.seed(seed)
    pictures = _images(size, images, seed)
    for name in OP_NAMES:  # warm-up, untimed: PIL's first calls load and set up its code paths
        to_tensor(apply_pil(pictures[0], name, 0.5))
    start = time.process_time()
    for image in pictures:
        for name in OP_NAMES:
            apply_pil(image, name, random.random())
    op_seconds = (time.process_time() - start) / (len(pictures) * len(OP_NAMES))
    start = time.process_time()
    for image in pictures:
        to_tensor(image)
    return OPS_PER_IMAGE * op_seconds + (time.process_time() - start) / len(pictures)
