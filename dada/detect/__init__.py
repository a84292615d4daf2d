"""Object detection with a DADA-trained backbone (paper section 4.3, Table 5), on torchvision's detectors.

``python -m dada.detect detector=mask_rcnn backbone.run=runs/paper/table4_imagenet_resnet50/dada-relax/seed0
scale=paper`` (Hydra app). The pieces are usable alone: `create_detector` and `load_backbone` (models),
`coco_split` (data in COCO's layout), `build_embedded` (the embedded detection set), `coco_metrics` (AP with
pycocotools), `DetectRun` (one run).
"""

from dada.detect.backbone import BackboneRun, BackboneRunError, read_backbone_run
from dada.detect.coco_format import Instance, write_split
from dada.detect.datasets import DETECTION_DATASETS, coco_split, get_detection_spec
from dada.detect.embedded import build_embedded
from dada.detect.evaluate import coco_metrics, detections_to_results
from dada.detect.loop import DetectRun
from dada.detect.models import DETECTORS, BackboneMismatchError, create_detector, load_backbone
from dada.detect.schedule import DetectionSchedule, plan_detection_schedule

__all__ = [
    "DETECTION_DATASETS",
    "DETECTORS",
    "BackboneMismatchError",
    "BackboneRun",
    "BackboneRunError",
    "DetectRun",
    "DetectionSchedule",
    "Instance",
    "build_embedded",
    "coco_metrics",
    "coco_split",
    "create_detector",
    "detections_to_results",
    "get_detection_spec",
    "load_backbone",
    "plan_detection_schedule",
    "read_backbone_run",
    "write_split",
]
