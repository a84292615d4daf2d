"""dada.detect: the COCO-format set round trip, AP with pycocotools, the backbone from a dada.train run, a train and
eval step of each detector, and the errors for missing data, backbones and settings."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from test_bad_inputs import RUN_FILES, refuse_links_until_finished

from dada import checkpoint, models
from dada.config import ConfigValueError, compose_app_config
from dada.data import DatasetNotFoundError
from dada.detect import (
    DETECTION_DATASETS,
    BackboneMismatchError,
    BackboneRunError,
    DetectRun,
    build_embedded,
    coco_metrics,
    coco_split,
    create_detector,
    embedded,
    get_detection_spec,
    load_backbone,
    plan_detection_schedule,
    read_backbone_run,
    write_split,
)
from dada.detect.models import backbone_body
from dada.schemas import PolicyInfo, TrainSummary

EMBEDDED = get_detection_spec("fashion-mnist-detection")
TINY = ["dataset.min_size=64", "dataset.max_size=64", "scale.train_images=2", "scale.test_images=2"]
TINY += ["scale.train_batch_size=2", "scale.train_epochs=1", "schedule.warmup_iters=1", "threads=1", "device=cpu"]


def _canvases(count: int, seed: int) -> tuple[list, list]:
    """``count`` canvases of synthetic items (bright squares with a hole), drawn as the embedded set draws them."""
    rng = np.random.default_rng(seed)
    items = np.zeros((10, 28, 28), dtype=np.uint8)
    items[:, 4:24, 4:24] = 200
    items[:, 12:16, 12:16] = 0
    canvases = [embedded.compose_canvas(rng, items, np.arange(10)) for _ in range(count)]
    return [pixels for pixels, _ in canvases], [instances for _, instances in canvases]


def _write_tiny_set(root, train: int = 4, val: int = 2) -> None:
    for split, count in (("train", train), ("val", val)):
        images, instances = _canvases(count, seed=len(split))
        write_split(*EMBEDDED.paths(root, split), images, instances, [f"class{i}" for i in range(10)])


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A data root whose embedded detection set is a tiny one, so that build_embedded leaves it as it is."""
    root = tmp_path_factory.mktemp("detect-data")
    _write_tiny_set(root)
    return root


def _train_run(folder, architecture: str = "resnet50", model_name: str = "resnet50"):
    """A finished dada.train run folder as the app leaves it: checkpoint, summary and config."""
    folder.mkdir(parents=True)
    state = models.create(architecture, num_classes=10).state_dict()
    checkpoint.save_atomic({"kind": "train", "epoch": 0, "model": state, "history": []}, folder / "checkpoint.pt")
    summary = TrainSummary("t", 0, "fashion-mnist", model_name, "smoke", 1, policy=PolicyInfo("dada")).to_dict()
    (folder / "summary.json").write_text(json.dumps({"status": "FINISHED", **summary}))
    config = {"dataset": {"mean": [0.286] * 3, "std": [0.353] * 3}}
    OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    return folder, state


@pytest.fixture(scope="module")
def backbone_run(tmp_path_factory):
    return _train_run(tmp_path_factory.mktemp("backbone") / "run")


# -- data ---------------------------------------------------------------------------------------------------------


def test_coco_writer_and_reader_round_trip(tmp_path):
    images, instances = _canvases(3, seed=0)
    write_split(*EMBEDDED.paths(tmp_path, "train"), images, instances, [f"class{i}" for i in range(10)])
    dataset = coco_split(*EMBEDDED.paths(tmp_path, "train"), train=True, masks=True, flip=0.0)
    for index, (pixels, objects) in enumerate(zip(images, instances)):
        image, target = dataset[index]
        assert torch.equal((image * 255).round().byte(), torch.from_numpy(pixels).permute(2, 0, 1))
        boxes = [[x, y, x + width, y + height] for x, y, width, height in (item.box for item in objects)]
        assert target["boxes"].tolist() == boxes
        assert target["labels"].tolist() == [item.category_id for item in objects]
        assert np.array_equal(target["masks"].numpy().astype(bool), np.stack([item.mask for item in objects]))
    test = coco_split(*EMBEDDED.paths(tmp_path, "train"), train=False)
    assert test[1][1] == {"image_id": 2} and test.coco.getCatIds() == list(range(1, 11))


def test_embedded_canvases_place_items_apart_with_boxes_and_masks_from_their_pixels():
    images, instances = _canvases(20, seed=3)
    again, _ = _canvases(20, seed=3)
    assert all(np.array_equal(first, second) for first, second in zip(images, again))
    for pixels, objects in zip(images, instances):
        assert pixels.shape == (embedded.CANVAS, embedded.CANVAS, 3) and 1 <= len(objects) <= embedded.MAX_ITEMS
        for item in objects:
            rows, columns = np.nonzero(item.mask)
            x, y = columns.min(), rows.min()
            assert item.box == (x, y, columns.max() - x + 1, rows.max() - y + 1)
            assert pixels[..., 0][item.mask].max() == 200  # the item's own pixels, pasted where it was placed
        background = ~np.any([item.mask for item in objects], axis=0)
        assert pixels[..., 0][background].max() < embedded.BACKGROUND_MAX
        assert not any(embedded._overlaps(a.box, b.box) for a in objects for b in objects if a is not b)


def test_embedded_set_builds_once_and_identically_from_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(embedded, "IMAGES", {"train": 3, "val": 2})
    first, second = build_embedded(tmp_path / "a"), build_embedded(tmp_path / "b")
    for split in ("train", "val"):
        names = [EMBEDDED.paths(root.parent, split)[1] for root in (first, second)]
        assert names[0].read_text() == names[1].read_text()
    annotations = json.loads(EMBEDDED.paths(tmp_path / "a", "val")[1].read_text())
    assert len(annotations["images"]) == 2 and annotations["categories"][0]["name"] == "T-shirt/top"
    stamp = os.stat(EMBEDDED.paths(tmp_path / "a", "train")[1]).st_mtime_ns
    build_embedded(tmp_path / "a")
    assert os.stat(EMBEDDED.paths(tmp_path / "a", "train")[1]).st_mtime_ns == stamp
    assert EMBEDDED.missing(tmp_path / "a") is None


def test_missing_coco_root_names_the_paths_and_the_layout(tmp_path):
    coco = DETECTION_DATASETS["coco"]
    assert coco.missing(tmp_path) == tmp_path / "coco"
    with pytest.raises(DatasetNotFoundError) as error:
        coco.require(tmp_path)
    message = str(error.value)
    for path in ("coco/train2017", "coco/val2017", "coco/annotations/instances_train2017.json"):
        assert path in message
    assert "DATA_ROOT" in message
    config = compose_app_config("detect", ["backbone.run=unused", f"dataset.root={tmp_path}", *TINY])
    with pytest.raises(DatasetNotFoundError, match="instances_val2017.json"):
        DetectRun(config)._data()


# -- AP ------------------------------------------------------------------------------------------------------------


def _results(coco, shift: float = 0.0) -> list[dict]:
    """The ground truth as detections (score 1), boxes moved right by ``shift`` times their width."""
    from dada.detect.coco_format import encode_mask

    results = []
    for annotation in coco.dataset["annotations"]:
        x, y, width, height = annotation["bbox"]
        mask = coco.annToMask(annotation).astype(bool)
        results.append(
            {
                "image_id": annotation["image_id"],
                "category_id": annotation["category_id"],
                "bbox": [x + shift * width, y, width, height],
                "score": 1.0,
                "segmentation": encode_mask(np.roll(mask, round(shift * width), axis=1)),
            }
        )
    return results


def test_cocoeval_scores_perfect_detections_100_and_shifted_ones_less(tmp_path):
    _write_tiny_set(tmp_path, train=1, val=6)
    coco = coco_split(*EMBEDDED.paths(tmp_path, "val"), train=False).coco
    ids = coco.getImgIds()
    perfect = coco_metrics(coco, _results(coco), ids, masks=True)
    assert perfect["ap_bbox"] == pytest.approx(100) and perfect["ap50_bbox"] == pytest.approx(100)
    assert perfect["ap_mask"] == pytest.approx(100)
    assert perfect["apl_bbox"] is None  # no large object: COCOeval's -1
    shifted = coco_metrics(coco, _results(coco, shift=0.3), ids, masks=True)
    assert shifted["ap_bbox"] < perfect["ap_bbox"] and shifted["ap75_bbox"] < 100 and shifted["ap_mask"] < 100
    nothing = coco_metrics(coco, [], ids)
    assert nothing["ap_bbox"] == 0 and nothing["apl_bbox"] is None and "ap_mask" not in nothing


# -- the backbone --------------------------------------------------------------------------------------------------


def test_backbone_loads_from_our_checkpoint_with_no_missing_or_unexpected_keys(backbone_run):
    folder, state = backbone_run
    run = read_backbone_run(folder)
    assert run.policy == "dada" and run.mean == (0.286,) * 3
    detector = create_detector("retinanet", 11, 64, 64, run.mean, run.std)
    body = backbone_body(detector)
    assert set(body.state_dict()) == {key for key in state if not key.startswith("fc.")}
    load_backbone(detector, run.model_state, "test")
    for key, value in body.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_backbone_of_another_network_is_refused_naming_the_keys(tmp_path):
    folder, state = _train_run(tmp_path / "wrn", architecture="wrn10_1", model_name="wrn10_1")
    with pytest.raises(BackboneRunError, match="trained wrn10_1, not resnet50.*scale.model=null"):
        read_backbone_run(folder)
    detector = create_detector("faster_rcnn", 11, 64, 64, [0.5] * 3, [0.5] * 3)
    with pytest.raises(BackboneMismatchError, match=r"missing: bn1.bias, .*\(318 in all\); unexpected: blocks.0"):
        load_backbone(detector, state, "wrn10_1 weights")
    with pytest.raises(BackboneRunError, match="has not finished"):
        read_backbone_run(tmp_path / "nowhere")


# -- the schedule and the config -----------------------------------------------------------------------------------


def test_schedule_scales_the_lr_with_the_batch_and_steps_at_the_scaled_milestones():
    config = compose_app_config("detect", ["backbone.run=unused", "scale=paper"])
    plan = plan_detection_schedule(config.schedule, config.detector.lr, train_size=1600)
    assert (plan.epochs, plan.batch_size, plan.steps_per_epoch, plan.lr) == (12, 16, 100, 0.01)  # RetinaNet
    assert plan.milestone_steps == (800, 1100)
    assert plan.factor(0) == pytest.approx(1 / 3, rel=1e-5) and plan.factor(500) == 1
    assert plan.factor(800) == pytest.approx(0.1) and plan.factor(1100) == pytest.approx(0.01)
    small = compose_app_config("detect", ["backbone.run=unused", "scale=paper", "scale.train_batch_size=4"])
    assert (small.schedule.batch_size, small.detector.lr) == (4, pytest.approx(0.0025))  # the lr follows the batch
    assert plan_detection_schedule(small.schedule, small.detector.lr, 1600).lr == pytest.approx(0.0025)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "backbone.run is required"),
        (["backbone.run=x", "detector.name=yolo"], "detector.name='yolo' is unknown; valid choices: retinanet"),
        (["backbone.run=x", "dataset.max_size=10"], "dataset.max_size=10 is out of range"),
    ],
)
def test_bad_settings_are_refused_at_start_up(overrides, message):
    with pytest.raises(ConfigValueError, match=message):
        DetectRun(compose_app_config("detect", overrides))


# -- a run of each detector ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("detector", ["retinanet", "faster_rcnn", "mask_rcnn"])
def test_a_train_and_eval_step_of_each_detector_writes_its_ap(detector, tmp_path, tiny_root, backbone_run):
    overrides = [
        f"detector={detector}",
        "detect_dataset=fashion-mnist-detection",
        f"dataset.root={tiny_root}",
        f"backbone.run={backbone_run[0]}",
        f"run_dir={tmp_path / 'run'}",
        *TINY,
    ]
    summary = DetectRun(compose_app_config("detect", overrides)).run()
    assert summary["status"] == "FINISHED" and summary["steps"] == 1 and summary["backbone_policy"] == "dada"
    assert 0 <= summary["ap_bbox"] <= 100 and summary["apl_bbox"] is None
    assert (summary["ap_mask"] is not None) == (detector == "mask_rcnn")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "FINISHED"
    again = DetectRun(compose_app_config("detect", overrides)).run()
    assert again == json.loads((tmp_path / "run" / "summary.json").read_text())  # finished: a no-op


@pytest.mark.slow
def test_the_app_runs_as_a_process(tmp_path, tiny_root, backbone_run):
    command = [
        sys.executable,
        "-m",
        "dada.detect",
        "detector=mask_rcnn",
        "detect_dataset=fashion-mnist-detection",
        f"backbone.run={backbone_run[0]}",
        f"runs_root={tmp_path}",
        "variant_name=dada-relax",
        *TINY,
    ]
    environment = {**os.environ, "DATA_ROOT": str(tiny_root), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "smoke" / "detect_fashion-mnist-detection_mask_rcnn" / "dada-relax" / "seed0"
    assert {"summary.json", "metrics.jsonl", "config.yaml", "checkpoint.pt"} <= set(os.listdir(run_dir))


@pytest.mark.slow
def test_links_planted_at_every_run_file_leave_their_targets_untouched(tmp_path, tiny_root, backbone_run):
    overrides = ["detect_dataset=fashion-mnist-detection", f"dataset.root={tiny_root}", *TINY]
    overrides += [f"backbone.run={backbone_run[0]}", f"run_dir={tmp_path / 'run'}", "detector=retinanet"]
    names = [*RUN_FILES["common"], *RUN_FILES["detect"], *RUN_FILES["old temporary names"]]
    refuse_links_until_finished(lambda: DetectRun(compose_app_config("detect", overrides)).run(), tmp_path, names)
