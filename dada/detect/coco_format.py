"""Write images and their instances in COCO's format: one PNG per image and one instances JSON per split.

The JSON holds what ``pycocotools.coco.COCO`` and torchvision's ``CocoDetection`` read: ``images`` (id, file_name,
height, width), ``annotations`` (id, image_id, category_id, bbox as [x, y, width, height], area, segmentation as
compressed RLE, iscrowd 0) and ``categories`` (id from 1, name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils


@dataclass(frozen=True)
class Instance:
    """One object: its category id, its box [x, y, width, height] in pixels and its mask (HxW bool)."""

    category_id: int
    box: tuple[int, int, int, int]
    mask: np.ndarray


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """A binary HxW mask as COCO's compressed RLE, with ``counts`` as text so that it serialises to JSON."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(size) for size in rle["size"]], "counts": rle["counts"].decode("ascii")}


def image_file_name(image_id: int) -> str:
    """COCO's naming: the id zero-padded to 12 digits."""
    return f"{image_id:012d}.png"


def write_split(
    images_dir: Path,
    annotations_file: Path,
    images: Sequence[np.ndarray],
    instances: Sequence[Sequence[Instance]],
    categories: Sequence[str],
    info: dict[str, Any] | None = None,
) -> None:
    """Write ``images`` (HxWx3 uint8) as PNGs into ``images_dir`` and their ``instances`` into ``annotations_file``.

    Image ids run from 1 in the order given; category ids are 1 + the index into ``categories``.
    """
    if len(images) != len(instances):
        raise ValueError(f"{len(images)} images but {len(instances)} instance lists; give one list per image")
    images_dir.mkdir(parents=True, exist_ok=True)
    annotations_file.parent.mkdir(parents=True, exist_ok=True)
    records, annotations = [], []
    for image_id, (pixels, objects) in enumerate(zip(images, instances), start=1):
        Image.fromarray(pixels).save(images_dir / image_file_name(image_id))
        height, width = pixels.shape[:2]
        records.append({"id": image_id, "file_name": image_file_name(image_id), "height": height, "width": width})
        for instance in objects:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": instance.category_id,
                    "bbox": [int(value) for value in instance.box],
                    "area": int(instance.mask.sum()),
                    "segmentation": encode_mask(instance.mask),
                    "iscrowd": 0,
                }
            )
    document = {
        "info": info or {},
        "images": records,
        "annotations": annotations,
        "categories": [{"id": index, "name": name} for index, name in enumerate(categories, start=1)],
    }
    annotations_file.write_text(json.dumps(document))
