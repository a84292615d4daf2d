"""The record is the run: every planned run's composed config holds the sizes that run, and its folder names the
network that ran (issue: the scale applied once, in `dada.scale.apply_scale`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_image_folder
from omegaconf import OmegaConf

from dada.config import ScaleConfig, compose_app_config
from dada.detect.schedule import plan_detection_schedule
from dada.search.loop import SearchRun
from dada.train import TrainRun
from dada.train.policies import search_policy_file
from dada.train.recipe import peak_lr, plan_schedule
from reproduce.plan import CONF_DIR, SCALES, TARGETS, plan_many

VARYING = ("policy", "backbone.run", "seed=", "variant_name=")  # what does not change a run's sizes


def _distinct_runs(scale: str):
    """One planned run per distinct (app, experiment, size-setting overrides) of every target at ``scale``."""
    found = {}
    for run in plan_many(TARGETS, scale, (0,)):
        sizes = tuple(override for override in run.overrides if not override.startswith(VARYING))
        found.setdefault((run.app, run.experiment, sizes), run)
    return list(found.values())


def _scale_settings(run) -> dict:
    """The scale's own values for ``run``: its file, then the experiment's ``scale:`` block, then the command line."""
    settings = OmegaConf.merge(
        OmegaConf.structured(ScaleConfig),
        OmegaConf.load(CONF_DIR / "scale" / f"{run.scale}.yaml"),
        OmegaConf.load(CONF_DIR / "experiment" / f"{run.experiment}.yaml").get("scale", {}),
        OmegaConf.from_dotlist([o.removeprefix("scale.") for o in run.overrides if o.startswith("scale.")]),
    )
    return OmegaConf.to_container(settings)


NETWORKS = {path.stem for path in (CONF_DIR / "model").glob("*.yaml")}


def _networks_named(folder: str) -> set[str]:
    """The networks an experiment folder says ran: the one after ``-on-`` if any, else those the name holds."""
    return {folder.rpartition("-on-")[2]} if "-on-" in folder else {name for name in NETWORKS if name in folder}


def _effective(cfg, app: str) -> dict:
    """What the app computes from its config: network, epochs, batch, image counts and lr (the apps' own planners)."""
    if app == "search":
        recipe = cfg.search
        images = cfg.dataset.search_images
        return dict(model=cfg.model.name, epochs=recipe.epochs, batch=recipe.batch_size, images=images, lr=recipe.lr)
    if app == "train":
        schedule = plan_schedule(cfg.recipe, cfg.train_images or 10 * cfg.recipe.batch_size)
        return dict(model=cfg.model.name, epochs=schedule.epochs, batch=schedule.batch_size, lr=peak_lr(cfg.recipe))
    schedule = plan_detection_schedule(cfg.schedule, cfg.detector.lr, cfg.train_images or 100)
    return dict(model=cfg.detector.name, epochs=schedule.epochs, batch=schedule.batch_size, lr=schedule.lr)


@pytest.mark.slow
@pytest.mark.parametrize("scale", SCALES)
def test_every_planned_run_records_what_runs(scale):
    for run in _distinct_runs(scale):
        cfg = compose_app_config(run.app, run.command()[3:])
        record = OmegaConf.create(OmegaConf.to_yaml(cfg, resolve=True))  # what config.yaml and the trackers hold
        effective = _effective(cfg, run.app)
        assert effective == _effective(record, run.app), run
        assert set(OmegaConf.to_container(cfg.scale).values()) == {scale, None}, f"{run}: the scale is left unread"
        assert Path(cfg.run_dir) == run.run_dir, run
        assert _networks_named(run.run_dir.parts[-3]) <= {effective["model"]}, f"{run}: the folder names another"
        wanted = _scale_settings(run)
        epochs = wanted["search_epochs"] if run.app == "search" else wanted["train_epochs"]
        assert epochs in (None, effective["epochs"]), run
        if run.app != "detect":
            assert wanted["model"] in (None, effective["model"]), run
        cap = wanted["batch_size"] if run.app == "search" else wanted["train_batch_size"] or wanted["batch_size"]
        assert cap is None or effective["batch"] <= cap, run
        if run.app == "search":
            assert wanted["search_images"] in (None, effective["images"]), run
        else:
            assert (cfg.train_images, cfg.test_images) == (wanted["train_images"], wanted["test_images"]), run


def test_a_command_line_key_wins_over_the_scale_file_and_a_scale_key_over_both():
    folder = compose_app_config("search", ["dataset.search_images=120", "scale=smoke"])
    assert folder.dataset.search_images == 120 and folder.search.epochs == 3  # the rest of the scale applies
    assert compose_app_config("search", ["scale=smoke"]).dataset.search_images == 1000
    for chosen in ("model=wrn40_2", "model.name=wrn40_2"):
        kept = compose_app_config("train", [chosen, "scale=smoke"])
        assert kept.model.name == "wrn40_2" and kept.run_dir == "runs/smoke/train_fashion-mnist_wrn40_2/dada/seed0"
        assert kept.recipe.epochs == 4  # the scale's other sizes still apply
    swapped = compose_app_config("train", ["model=wrn40_2", "scale=smoke", "scale.model=wrn10_1"])
    assert swapped.model.name == "wrn10_1" and "train_fashion-mnist_wrn40_2-on-wrn10_1" in swapped.run_dir


def test_a_shorter_schedule_keeps_its_shape_and_a_smaller_batch_its_lr_per_image():
    resnet = compose_app_config("train", ["model=resnet50", "dataset=imagenet", "scale=paper", "scale.train_epochs=27"])
    assert resnet.recipe.epochs == 27 and list(resnet.recipe.milestones) == pytest.approx([9, 18, 24])
    assert resnet.recipe.warmup_epochs == pytest.approx(0.3)  # 3 of 270 epochs
    detect = compose_app_config("detect", ["backbone.run=x", "scale=paper", "scale.train_batch_size=4"])
    assert (detect.schedule.batch_size, detect.detector.lr) == (4, pytest.approx(0.01 * 4 / 16))


README_OWN_DATA = (  # README, "Data sets": the own-data commands at smoke scale, on a folder of 120 images
    ("search", "dataset.search_images=120 search.batch_size=32 scale=smoke"),
    ("train", "recipe=wrn40_2-cifar10 policy=dada scale=smoke policy.source={search}"),
)


@pytest.mark.slow
def test_the_readmes_own_data_commands_run_at_smoke_scale_on_120_images(tmp_path):
    write_image_folder(tmp_path / "mine" / "train", [f"c{index}" for index in range(12)], per_class=10, size=20)
    write_image_folder(tmp_path / "mine" / "val", [f"c{index}" for index in range(12)], per_class=2, size=20)
    common = [f"dataset.root={tmp_path / 'mine'}", "dataset=folder", "dataset.num_classes=12", "dataset.image_size=16"]
    tiny = ["threads=1", f"runs_root={tmp_path / 'runs'}", "scale.search_epochs=1", "scale.train_epochs=1"]
    (search_app, search_args), (train_app, train_args) = README_OWN_DATA
    search = SearchRun(compose_app_config(search_app, [*common, *search_args.split(), *tiny])).run()
    folder = Path(search["policy"]).parent
    assert folder == tmp_path / "runs" / "smoke" / "search_folder-on-wrn10_1" / "relax" / "seed0"
    train_cfg = compose_app_config(train_app, [*common, *train_args.format(search=folder).split(), *tiny])
    trained = TrainRun(train_cfg).run()
    assert trained["train_images"] == 120 and trained["policy"]["source"] == str(folder)
    with pytest.raises(ValueError, match=r"dataset.search_images=1000 .* the 120 .*set dataset.search_images=120"):
        SearchRun(compose_app_config("search", [*common, "scale=smoke", *tiny[:2], "variant_name=too-many"])).run()


def test_a_search_handed_to_an_evaluation_must_have_finished(tmp_path):
    (tmp_path / "search").mkdir()
    with pytest.raises(ValueError, match="has not finished"):
        search_policy_file(str(tmp_path / "search"), "fashion-mnist")
    assert search_policy_file("cifar10", "fashion-mnist") == "cifar10"  # a shipped policy passes as it is


def test_cfg_job_prints_the_config_that_runs():
    """``--cfg job`` shows the scale applied: the network and epochs a smoke evaluation runs, not the recipe's."""
    printed = subprocess.run(
        [sys.executable, "-m", "dada.train", "scale=smoke", "policy=none", "--cfg", "job"],
        capture_output=True,
        text=True,
        check=True,
        cwd=CONF_DIR.parent,
    ).stdout
    cfg = OmegaConf.create(printed)
    assert (cfg.model.name, cfg.recipe.epochs, cfg.recipe.batch_size, cfg.train_images) == ("wrn10_1", 4, 64, 4000)
