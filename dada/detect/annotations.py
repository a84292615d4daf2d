"""COCO instance files read once, capped, and checked before the first step (`read_instances`).

What the detectors and COCOeval assume is checked here, not discovered mid-run: categories numbered from 1 (0 is the
detectors' background label) up to `MAX_CATEGORY_ID` (the head has one output per id), every annotation of a
declared image and category, and boxes of four finite numbers with a positive width and height that overlap their
image. Invalid boxes are dropped and counted in a warning; a split left with no instance is refused.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO

from dada.files import MiB, UnreadableFileError, read_json

INSTANCES_CAP = 2048 * MiB  # COCO's instances_train2017.json is 448 MiB
MAX_CATEGORY_ID = 10_000  # COCO's ids reach 90, LVIS's 1203: the detector's head has max id + 1 outputs


class AnnotationError(UnreadableFileError):
    """An instance file the detectors cannot train or be evaluated on; the message names it and the fault."""


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _box_fault(box: Any, image: dict) -> str | None:
    """Why ``box`` ([x, y, width, height]) cannot be used on ``image``, or None when it can."""
    if not isinstance(box, list) or len(box) != 4:
        return "not four numbers"
    if not all(isinstance(value, numbers.Real) and not isinstance(value, bool) for value in box):
        return "not four numbers"
    if not all(math.isfinite(value) for value in box):
        return "NaN or infinite"
    x, y, width, height = box
    if width <= 0 or height <= 0:
        return "zero or negative width or height"
    if x >= image["width"] or y >= image["height"] or x + width <= 0 or y + height <= 0:
        return "outside the image"
    return None


def _categories(path: Path, document: dict) -> set[int]:
    ids = {entry.get("id") for entry in document["categories"] if isinstance(entry, dict)}
    bad = sorted(str(id_) for id_ in ids if not _is_count(id_) or not 1 <= id_ <= MAX_CATEGORY_ID)
    if bad or not ids:
        raise AnnotationError(
            f"instance file {path} declares category ids {', '.join(bad) or 'none'}: ids must be integers from 1 "
            f"(0 is the detectors' background label) to {MAX_CATEGORY_ID} (the head has one output per id)"
        )
    return ids


def _images(path: Path, document: dict) -> dict[int, dict]:
    images = {}
    for entry in document["images"]:
        if not (isinstance(entry, dict) and _is_count(entry.get("id"))) or not all(
            isinstance(entry.get(side), numbers.Real) and entry[side] > 0 for side in ("width", "height")
        ):
            raise AnnotationError(
                f"instance file {path} holds an image entry without an integer id and a positive width and height: "
                f"{str(entry)[:200]}"
            )
        images[entry["id"]] = entry
    return images


def read_instances(path: str | Path, split: str) -> COCO:
    """The instance file at ``path`` as a pycocotools ``COCO`` index, its invalid boxes dropped (warned with their
    counts); AnnotationError names the file when the split cannot be used."""
    path = Path(path)
    document = read_json(path, "instance file", cap=INSTANCES_CAP)
    lists = [key for key in ("images", "annotations", "categories") if not isinstance(document.get(key), list)]
    if lists:
        raise AnnotationError(f"instance file {path} has no list of {', '.join(lists)}: it is no COCO instance file")
    categories, images = _categories(path, document), _images(path, document)
    kept, dropped = [], Counter()
    for entry in document["annotations"]:
        if not isinstance(entry, dict) or entry.get("image_id") not in images:
            dropped["of no declared image"] += 1
            continue
        if entry.get("category_id") not in categories:
            raise AnnotationError(
                f"instance file {path}: annotation {entry.get('id')} has category id {entry.get('category_id')!r}, "
                f"which its categories do not declare (declared: {', '.join(map(str, sorted(categories)))})"
            )
        fault = _box_fault(entry.get("bbox"), images[entry["image_id"]])
        if fault is None:
            kept.append(entry)
        else:
            dropped[fault] += 1
    if dropped:
        counts = ", ".join(f"{count} {fault}" for fault, count in dropped.items())
        warnings.warn(f"instance file {path}: {sum(dropped.values())} annotations dropped ({counts})", RuntimeWarning)
    if not any(not entry.get("iscrowd", 0) for entry in kept):
        raise AnnotationError(
            f"instance file {path} holds no usable instance in its {split} split "
            f"({len(document['annotations'])} annotations, {sum(dropped.values())} dropped): the detector would "
            f"{'train on nothing' if split == 'train' else 'be scored against nothing (every AP None)'}"
        )
    coco = COCO()
    coco.dataset = {**document, "annotations": kept}
    coco.createIndex()
    return coco
