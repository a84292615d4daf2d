"""Table 5 end to end without training: the plan (backbones before detections, smoke sizes), the runner's reasons
for not running, and the paper-shaped table with "not run" COCO rows beside the embedded rows' numbers."""

import json
from pathlib import Path

from analysis.report import Context, write_table
from analysis.runs import read_runs
from dada.schemas import DetectSummary, EvalCost
from reproduce import plan
from reproduce.plan import cell_settings
from reproduce.runner import skip_reason
from reproduce.tables import get_layout

EMBEDDED_RETINANET = "table5_fashion-mnist-detection_retinanet"


def test_table5_plan_runs_searches_then_backbones_then_detections_each_reading_its_backbone():
    runs = plan("table5", "smoke", (0,))
    apps = [run.app for run in runs]
    assert apps == sorted(apps, key=("search", "train", "detect").index) and apps.count("detect") == 12
    by_folder = {run.run_dir: run for run in runs}
    detections = [run for run in runs if run.app == "detect"]
    for run in detections:
        backbone = by_folder[run.needs]
        assert f"backbone.run={backbone.run_dir}" in run.overrides and backbone.app == "train"
        assert run.variant == backbone.variant
    embedded = {run.variant: run for run in detections if run.experiment == EMBEDDED_RETINANET}
    assert set(embedded) == {"none", "dada-relax"}
    assert embedded["none"].overrides[1:] == cell_settings(EMBEDDED_RETINANET, "smoke")  # conf/reproduce/smoke.yaml
    assert "scale.train_epochs=3" in embedded["none"].overrides and plan("table5", "paper")[0].seed == 0
    backbone = by_folder[embedded["dada-relax"].needs]
    own = cell_settings("table5_fashion-mnist_resnet50", "smoke")
    assert backbone.experiment == "table5_fashion-mnist_resnet50" and backbone.overrides[-4:] == own
    assert "recipe.lr=0.0025" in own and plan("table5", "smoke", None) == runs  # Table 5's own seeds: 0
    assert any(override.startswith("policy.source=") for override in backbone.overrides)
    coco = by_folder[next(run.needs for run in detections if run.experiment == "table5_coco_mask_rcnn")]
    assert coco.experiment == "table4_imagenet_resnet50" and coco.run_dir == Path(
        "runs/smoke/table4_imagenet_resnet50-on-wrn10_1/none/seed0"  # Table 4's smoke run: the folder names WRN-10-1
    )
    paper = [run for run in plan("table5", "paper", (0,)) if run.app == "detect"]
    assert all(not any(override.startswith("scale.") for override in run.overrides) for run in paper)


def test_without_coco_or_a_finished_backbone_a_detection_is_not_run(tmp_path):
    runs = [run for run in plan("table5", "smoke", (0,), tmp_path / "runs") if run.app == "detect"]
    coco = next(run for run in runs if run.dataset == "coco")
    assert skip_reason(coco, tmp_path / "data") == f"not run: no data at {tmp_path / 'data' / 'coco'}"
    embedded = next(run for run in runs if run.dataset == "fashion-mnist-detection")
    assert skip_reason(embedded, tmp_path / "data") == f"not run: its backbone {embedded.needs} did not finish"


def _detect_summary(ap: float, masks: bool) -> dict:
    cost = EvalCost(unit="CPU-hours", device_name="Test CPU", device_count=1, eval_device_hours=0.01)
    values = {"ap_bbox": ap, "ap50_bbox": 2 * ap, "ap75_bbox": ap / 2, "aps_bbox": ap, "apm_bbox": ap}
    return DetectSummary(
        "d",
        0,
        "fashion-mnist-detection",
        "mask_rcnn_resnet50_fpn",
        "smoke",
        1,
        **values,
        ap_mask=ap if masks else None,
        cost=cost,
    ).to_dict()


def test_table5_is_paper_shaped_with_not_run_coco_rows_beside_the_embedded_numbers(tmp_path):
    runs_root = tmp_path / "runs"
    for experiment, variant, ap in (("table5_fashion-mnist-detection_mask_rcnn", "dada-relax", 12.5),):
        run_dir = runs_root / "smoke" / experiment / variant / "seed0"
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"status": "FINISHED", **_detect_summary(ap, True)}))
    runs = read_runs(runs_root)
    assert runs.loc[0, "ap_mask"] == 12.5 and runs.loc[0, "app"] == "detect"
    context = Context("smoke", runs_root, tmp_path / "results", tmp_path / "data")
    text = write_table("table5", runs, context).read_text()
    assert (tmp_path / "results" / "table5_smoke.csv").exists()
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    header = lines["Method"].strip("| ").split(" | ")
    assert header == ["Method", "APbb", "APbb50", "APbb75", "APbbS", "APbbM", "APbbL", "APmask"]
    no_coco = f"not run: no data at {tmp_path / 'data' / 'coco'}"
    retinanet = lines["RetinaNet ResNet-50 (baseline)"].strip("| ").split(" | ")
    assert retinanet[1] == f"paper 35.9 ({no_coco})" and retinanet[7] == "—"  # no mask AP for a box-only detector
    assert f"paper 34.5 ({no_coco})" in lines["Mask R-CNN ResNet-50 (DADA)"]
    ours = lines["Mask R-CNN ResNet-50 (DADA), embedded set"].strip("| ").split(" | ")
    assert ours[1] == "12.50 (n=1)" and ours[6] == "—" and ours[7] == "12.50 (n=1)"  # no large objects: no APbbL
    assert "not run yet" in lines["Mask R-CNN ResNet-50 (baseline), embedded set"]
    assert "## Box and mask AP (%)" in text and "val2017" in text and "At smoke scale" in text
    assert len(get_layout("table5").cells) == 2 * (6 * 6 + 2) - 6  # APbbL only where the paper has it
