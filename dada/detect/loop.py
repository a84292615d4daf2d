"""The detection run (paper section 4.3): fine-tune a detector from a ``dada.train`` backbone, score it with COCO AP.

One process, one device. The run checkpoints after every epoch and resumes from ``<run_dir>/checkpoint.pt``; the AP
is the final epoch's detector on the test images (COCO: val2017; the paper's Table 5 is on test-dev, which only
COCO's server scores).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from tqdm import tqdm

from dada import checkpoint
from dada.detect import datasets, evaluate, models
from dada.detect._config import validate
from dada.detect.backbone import read_backbone_run
from dada.detect.embedded import build_embedded
from dada.detect.schedule import create_optimizer, create_scheduler, plan_detection_schedule
from dada.run import RunLifecycle
from dada.runtime import resolve_device, seed_everything
from dada.scale import scale_name
from dada.schemas import DetectSummary
from dada.tracking import DeviceClock
from dada.tracking.cost import eval_cost
from dada.train.loop import stream_seed

log = logging.getLogger(__name__)
ORDER_STREAM = 0


class DetectRun(RunLifecycle):
    """One seeded detection run; ``run()`` holds the run folder's lock, resumes, and is a no-op once finished
    (`dada.run.RunLifecycle`)."""

    app, noun, lower = "detect", "detection", "detector.lr or lengthen schedule.warmup_iters"
    identity_keys = (
        *("dataset", "detector", "schedule", "backbone", "scale", "seed"),
        *("subset_seed", "train_images", "test_images"),
    )

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg, validate)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads)
        self.order_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, ORDER_STREAM))
        self.masks = cfg.detector.name in models.MASK_DETECTORS
        self.history, self.seconds = [], {"train": 0.0, "total": 0.0}

    @property
    def epochs(self) -> int:
        return self.schedule.epochs

    # -- data, model, optimiser ----------------------------------------------------------------------------------

    def _data(self) -> None:
        cfg, spec = self.cfg, datasets.get_detection_spec(self.cfg.dataset.name)
        root = Path(cfg.dataset.root)
        if spec.embedded:
            build_embedded(root)
        spec.require(root)
        train = datasets.coco_split(*spec.paths(root, "train"), train=True, masks=self.masks, flip=cfg.dataset.flip)
        test = datasets.coco_split(*spec.paths(root, "val"), train=False)
        self.coco = test.coco
        self.num_classes = datasets.num_classes(train)
        self.train_split = datasets.subset(train, datasets.with_instances(train), cfg.train_images, cfg.subset_seed)
        self.test_split = datasets.subset(test, list(range(len(test))), cfg.test_images, cfg.subset_seed)
        self.test_ids = [test.ids[index] for index in self.test_split.indices]

    def prepare(self) -> None:
        cfg = self.cfg
        self._data()
        self.backbone = read_backbone_run(cfg.backbone.run)
        self.model = models.create_detector(
            cfg.detector.name,
            self.num_classes,
            cfg.dataset.min_size,
            cfg.dataset.max_size,
            self.backbone.mean,
            self.backbone.std,
            **cfg.detector.kwargs,
        )
        models.load_backbone(self.model, self.backbone.model_state, f"backbone run {self.backbone.run_dir}")
        models.freeze_stages(self.model, cfg.backbone.frozen_stages)
        self.model.to(self.device)
        self.schedule = plan_detection_schedule(cfg.schedule, cfg.detector.lr, len(self.train_split))
        self.optimizer = create_optimizer(self.model, cfg.schedule, self.schedule)
        self.scheduler = create_scheduler(self.optimizer, self.schedule)
        self.train_batches = DataLoader(
            self.train_split,
            batch_size=self.schedule.batch_size,
            shuffle=True,
            generator=self.order_generator,
            num_workers=cfg.num_workers,
            collate_fn=datasets.collate,
        )
        self.test_batches = DataLoader(
            self.test_split,
            batch_size=self.schedule.batch_size,
            num_workers=cfg.num_workers,
            collate_fn=datasets.collate,
        )
        log.info(
            "%s from %s (policy %s) on %d train / %d test images of %s, %s",
            cfg.detector.name,
            self.backbone.run_dir,
            self.backbone.policy,
            len(self.train_split),
            len(self.test_split),
            cfg.dataset.name,
            self.schedule,
        )

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order_generator": self.order_generator.get_state(),
            "rng": checkpoint.rng_state(),
            "history": self.history,
            "seconds": self.seconds,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order_generator.set_state(state["order_generator"])
        checkpoint.set_rng_state(state["rng"])
        self.history, self.seconds = state["history"], state["seconds"]

    def describe(self) -> str:
        return self.cfg.detector.name

    # -- training and evaluation ---------------------------------------------------------------------------------

    def train_step(self, images, targets, epoch: int, step: int) -> dict[str, float]:
        images = [image.to(self.device) for image in images]
        targets = [
            {key: value.as_subclass(torch.Tensor).to(self.device) for key, value in target.items() if key != "image_id"}
            for target in targets
        ]
        losses = self.model(images, targets)
        parameters, clip = self.optimizer.param_groups[0]["params"], self.cfg.schedule.grad_clip
        loss = self.optimizer_step(sum(losses.values()), parameters, clip, epoch, step)
        self.scheduler.step()
        return {"loss": loss, **{name: value.item() for name, value in losses.items()}}

    def _train_epoch(self, epoch: int, tracker) -> dict[str, float]:
        models.set_train_mode(self.model, self.cfg.backbone.norm_eval)
        totals: dict[str, float] = {}
        progress = tqdm(self.train_batches, desc=f"epoch {epoch + 1}/{self.schedule.epochs}", leave=False)
        for step, (images, targets) in enumerate(progress):
            global_step = epoch * self.schedule.steps_per_epoch + step
            lr = self.optimizer.param_groups[0]["lr"]
            losses = self.train_step(images, targets, epoch, step)
            totals = {name: totals.get(name, 0.0) + value for name, value in losses.items()}
            progress.set_postfix(loss=f"{losses['loss']:.3f}")
            if global_step % self.cfg.logger.log_every == 0:
                tracker.log_metrics({"step/train_loss": losses["loss"], "step/lr": lr}, step=global_step)
        return {f"train/{name}": total / self.schedule.steps_per_epoch for name, total in totals.items()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float | None]:
        """COCO AP (%) of the detector on the test images."""
        self.model.eval()
        results = []
        for images, targets in self.test_batches:
            outputs = self.model([image.to(self.device) for image in images])
            for target, output in zip(targets, outputs):
                results += evaluate.detections_to_results(target["image_id"], output)
        return evaluate.coco_metrics(self.coco, results, self.test_ids, masks=self.masks)

    def train_epoch(self, epoch: int, tracker) -> dict[str, float]:
        with DeviceClock(self.device) as clock:
            metrics = self._train_epoch(epoch, tracker)
        self.seconds = {"train": self.seconds["train"] + clock.seconds, "total": self.seconds["total"] + clock.seconds}
        rate = len(self.train_split) / clock.seconds
        return {**metrics, "epoch": epoch + 1, "images_per_second": rate, "epoch_seconds": clock.seconds}

    # -- the run -------------------------------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        return {"model": self.cfg.detector.name, "backbone": str(self.cfg.backbone.run)}

    def keep(self, metrics: dict[str, float]) -> None:
        self.history.append(metrics)

    def log_epoch(self, epoch: int, metrics: dict[str, float], tracker) -> None:
        tracker.log_metrics(metrics, step=(epoch + 1) * self.schedule.steps_per_epoch)

    def finite_modules(self) -> dict[str, torch.nn.Module]:
        return {"detector": self.model}

    def finish(self, tracker) -> dict[str, Any]:
        """The final epoch's detector scored on the test images."""
        with DeviceClock(self.device) as clock:
            ap = self.evaluate()
        self.seconds["total"] += clock.seconds
        log.info("COCO AP (%%): %s", ap)
        scores = {f"test/{name}": value for name, value in ap.items() if value is not None}
        tracker.log_metrics(scores, step=self.schedule.total_steps)
        return self._summary(ap)

    def result(self, summary) -> str:
        return f"box AP {summary.get('ap_bbox')} % (checkpoint {self.checkpoint_path})"

    def _summary(self, ap: dict[str, float | None]) -> dict[str, Any]:
        cost = eval_cost(DeviceClock(self.device), self.seconds["total"])
        return DetectSummary(
            name=self.cfg.name,
            seed=self.cfg.seed,
            dataset=self.cfg.dataset.name,
            model=f"{self.cfg.detector.name}_resnet50_fpn",
            scale=scale_name(self.cfg),
            epochs=self.schedule.epochs,
            detector=self.cfg.detector.name,
            backbone_run=str(self.backbone.run_dir),
            backbone_policy=self.backbone.policy,
            train_images=len(self.train_split),
            test_images=len(self.test_split),
            batch_size=self.schedule.batch_size,
            steps=self.schedule.total_steps,
            min_size=self.cfg.dataset.min_size,
            max_size=self.cfg.dataset.max_size,
            train_loss=self.history[-1]["train/loss"],
            seconds=self.seconds["total"],
            train_seconds=self.seconds["train"],
            images_per_second=self.schedule.epochs * len(self.train_split) / self.seconds["train"],
            cost=cost,
            **ap,
        ).to_dict()
