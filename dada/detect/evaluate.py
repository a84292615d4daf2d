"""COCO's AP with pycocotools: detections as COCO results, scored by ``COCOeval`` against the ground-truth file.

    results = detections_to_results(image_id, output)              # per image: the detector's eval output
    metrics = coco_metrics(coco, results, image_ids, masks=True)   # {"ap_bbox": 36.6, ..., "ap_mask": 34.5}

AP is in %, as the paper prints it; COCOeval's -1 (no ground truth of that size among the images) becomes None.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from dada.detect.coco_format import encode_mask

BOX_METRICS = ("ap_bbox", "ap50_bbox", "ap75_bbox", "aps_bbox", "apm_bbox", "apl_bbox")  # COCOeval's stats[0:6]
MASK_METRIC = "ap_mask"
MASK_THRESHOLD = 0.5  # torchvision's Mask R-CNN gives per-pixel probabilities; COCO scores binary masks


def detections_to_results(image_id: int, output: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """One image's detections (XYXY ``boxes``, ``scores``, ``labels``, optional ``masks`` [N, 1, H, W]) as COCO
    results: bbox [x, y, width, height], category_id, score, and a compressed-RLE segmentation with masks."""
    boxes = output["boxes"].detach().cpu().numpy().astype(float)
    scores = output["scores"].detach().cpu().tolist()
    labels = output["labels"].detach().cpu().tolist()
    masks = output.get("masks")
    binary = (masks[:, 0] > MASK_THRESHOLD).cpu().numpy() if masks is not None else None
    results = []
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        result = {
            "image_id": int(image_id),
            "category_id": int(labels[index]),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            "score": float(scores[index]),
        }
        if binary is not None:
            result["segmentation"] = encode_mask(binary[index])
        results.append(result)
    return results


def _detections(coco: COCO, results: list[dict[str, Any]]) -> COCO:
    """The results as a COCO object over ``coco``'s images; an empty one when there are none, which
    ``COCO.loadRes`` refuses (no detection then scores 0 where the images hold objects, -1 where they hold none)."""
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            return coco.loadRes(results)
    empty = COCO()
    empty.dataset = {"images": coco.dataset["images"], "categories": coco.dataset["categories"], "annotations": []}
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    return empty


def _evaluate(coco: COCO, detections: COCO, kind: str, image_ids: Sequence[int]) -> np.ndarray:
    evaluation = COCOeval(coco, detections, kind)
    evaluation.params.imgIds = list(image_ids)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its tables
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


def _percent(value: float) -> float | None:
    return None if value < 0 else float(value) * 100


def coco_metrics(
    coco: COCO, results: list[dict[str, Any]], image_ids: Sequence[int], masks: bool = False
) -> dict[str, float | None]:
    """Box AP, AP50, AP75, APS, APM, APL (and mask AP with ``masks``), in %, over ``image_ids`` only."""
    detections = _detections(coco, results)
    metrics = dict(zip(BOX_METRICS, map(_percent, _evaluate(coco, detections, "bbox", image_ids)[:6])))
    if masks:
        metrics[MASK_METRIC] = _percent(_evaluate(coco, detections, "segm", image_ids)[0])
    return metrics
