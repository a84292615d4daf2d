"""The detection run (paper section 4.3): fine-tune a detector from a ``dada.train`` backbone, score it with COCO AP.

One process, one device. The run checkpoints after every epoch and resumes from ``<run_dir>/checkpoint.pt``; the AP
is the final epoch's detector on the test images (COCO: val2017; the paper's Table 5 is on test-dev, which only
COCO's server scores).
"""

from __future__ import annotations

import logging
import math
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
from dada.runtime import (
    check_identity,
    finished_summary,
    refuse_non_finite,
    resolve_device,
    run_identity,
    run_lock,
    save_hydra_record,
    seed_everything,
)
from dada.schemas import DetectSummary, EvalCost
from dada.tracking import DeviceClock, tracker_for
from dada.train.loop import stream_seed

log = logging.getLogger(__name__)
ORDER_STREAM = 0
IDENTITY_KEYS = ("dataset", "detector", "schedule", "backbone", "scale", "seed", "subset_seed")


class DetectRun:
    """One seeded detection run; ``run()`` holds the run folder's lock, resumes, and is a no-op once finished."""

    def __init__(self, cfg: DictConfig):
        validate(cfg)
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads)
        self.order_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, ORDER_STREAM))
        self.identity = run_identity(cfg, IDENTITY_KEYS)
        self.masks = cfg.detector.name in models.MASK_DETECTORS
        self.num_workers = cfg.num_workers if cfg.scale.num_workers is None else cfg.scale.num_workers
        self.start_epoch, self.history, self.seconds = 0, [], {"train": 0.0, "total": 0.0}

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

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
        self.train_split = datasets.subset(
            train, datasets.with_instances(train), cfg.scale.train_images, cfg.subset_seed
        )
        self.test_split = datasets.subset(test, list(range(len(test))), cfg.scale.test_images, cfg.subset_seed)
        self.test_ids = [test.ids[index] for index in self.test_split.indices]

    def _prepare(self) -> None:
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
        self.schedule = plan_detection_schedule(cfg.schedule, cfg.scale, cfg.detector.lr, len(self.train_split))
        self.optimizer = create_optimizer(self.model, cfg.schedule, self.schedule)
        self.scheduler = create_scheduler(self.optimizer, self.schedule)
        self.train_batches = DataLoader(
            self.train_split,
            batch_size=self.schedule.batch_size,
            shuffle=True,
            generator=self.order_generator,
            num_workers=self.num_workers,
            collate_fn=datasets.collate,
        )
        self.test_batches = DataLoader(
            self.test_split,
            batch_size=self.schedule.batch_size,
            num_workers=self.num_workers,
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

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "kind": "detect",
            "epoch": epoch,
            "identity": self.identity,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order_generator": self.order_generator.get_state(),
            "rng": checkpoint.rng_state(),
            "history": self.history,
            "seconds": self.seconds,
        }

    def _resume(self, state: dict | None) -> None:
        if state is None:
            return
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.order_generator.set_state(state["order_generator"])
            checkpoint.set_rng_state(state["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            raise checkpoint.WrongCheckpointError(
                f"checkpoint {self.checkpoint_path} does not fit this run ({self.cfg.detector.name}): "
                f"{type(error).__name__}: {str(error).splitlines()[0]}. It was not overwritten: resume with the "
                f"settings it was written with, or choose another run_dir"
            ) from None
        self.start_epoch, self.history, self.seconds = state["epoch"] + 1, state["history"], state["seconds"]
        log.info("resumed %s after epoch %d", self.run_dir, state["epoch"] + 1)

    # -- training and evaluation ---------------------------------------------------------------------------------

    def _train_step(self, images, targets, epoch: int, step: int) -> dict[str, float]:
        images = [image.to(self.device) for image in images]
        targets = [
            {key: value.as_subclass(torch.Tensor).to(self.device) for key, value in target.items() if key != "image_id"}
            for target in targets
        ]
        losses = self.model(images, targets)
        loss = sum(losses.values())
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"non-finite detection loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1}; the last good "
                f"checkpoint, {self.checkpoint_path}, is kept. Lower detector.lr or lengthen schedule.warmup_iters"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.schedule.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], self.cfg.schedule.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": loss.item(), **{name: value.item() for name, value in losses.items()}}

    def _train_epoch(self, epoch: int, tracker) -> dict[str, float]:
        models.set_train_mode(self.model, self.cfg.backbone.norm_eval)
        totals: dict[str, float] = {}
        progress = tqdm(self.train_batches, desc=f"epoch {epoch + 1}/{self.schedule.epochs}", leave=False)
        for step, (images, targets) in enumerate(progress):
            global_step = epoch * self.schedule.steps_per_epoch + step
            lr = self.optimizer.param_groups[0]["lr"]
            losses = self._train_step(images, targets, epoch, step)
            totals = {name: totals.get(name, 0.0) + value for name, value in losses.items()}
            progress.set_postfix(loss=f"{losses['loss']:.3f}")
            if global_step % self.cfg.log_every == 0:
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

    def _epoch(self, epoch: int, tracker) -> dict[str, float]:
        with DeviceClock(self.device) as clock:
            metrics = self._train_epoch(epoch, tracker)
        self.seconds = {"train": self.seconds["train"] + clock.seconds, "total": self.seconds["total"] + clock.seconds}
        rate = len(self.train_split) / clock.seconds
        return {**metrics, "epoch": epoch + 1, "images_per_second": rate, "epoch_seconds": clock.seconds}

    # -- the run -------------------------------------------------------------------------------------------------

    def _tracker(self):
        tags = {
            "app": "detect",
            "dataset": self.cfg.dataset.name,
            "model": self.cfg.detector.name,
            "backbone": str(self.cfg.backbone.run),
            "scale": self.cfg.scale.name,
            "table": self.cfg.table,
            "seed": str(self.cfg.seed),
        }
        return tracker_for(self.cfg, self.run_dir, tags, resume_epoch=self.start_epoch)

    def run(self) -> dict:
        with run_lock(self.run_dir):
            return self._run()

    def _run(self) -> dict:
        state = checkpoint.load(self.checkpoint_path, kind="detect")
        check_identity(self.run_dir, state and state.get("identity"), self.identity)
        finished = finished_summary(self.run_dir)
        if finished is not None:
            log.info("%s is finished; nothing to do", self.run_dir)
            return finished
        save_hydra_record(self.run_dir, self.cfg)
        self._prepare()
        self._resume(state)
        with self._tracker() as tracker:
            for epoch in range(self.start_epoch, self.schedule.epochs):
                metrics = self._epoch(epoch, tracker)
                self._check_finite(f"after epoch {epoch + 1}", metrics)
                self.history.append(metrics)
                tracker.log_metrics(metrics, step=(epoch + 1) * self.schedule.steps_per_epoch)
                checkpoint.save_atomic(self._state(epoch), self.checkpoint_path)
                log.info("epoch %d: %s", epoch + 1, {key: round(value, 4) for key, value in metrics.items()})
            with DeviceClock(self.device) as clock:
                ap = self.evaluate()
            self.seconds["total"] += clock.seconds
            log.info("COCO AP (%%): %s", ap)
            scores = {f"test/{name}": value for name, value in ap.items() if value is not None}
            tracker.log_metrics(scores, step=self.schedule.total_steps)
            summary = self._summary(ap)
            tracker.set_summary(summary)
        return {"status": "FINISHED", **summary}

    def _check_finite(self, where: str, metrics: dict[str, float]) -> None:
        """Refuse a diverged detector (non-finite losses or weights) before it reaches a checkpoint or a summary."""
        refuse_non_finite(
            where,
            metrics,
            {"detector": self.model},
            f"Nothing of it was saved; the last good checkpoint, {self.checkpoint_path}, is kept. Lower detector.lr",
        )

    def _summary(self, ap: dict[str, float | None]) -> dict[str, Any]:
        clock = DeviceClock(self.device)
        cost = EvalCost(
            unit=clock.unit,
            device_name=clock.device_name,
            device_count=clock.device_count,
            num_threads=clock.num_threads,
            eval_device_hours=clock.device_count * self.seconds["total"] / 3600,
        )
        return DetectSummary(
            name=self.cfg.name,
            seed=self.cfg.seed,
            dataset=self.cfg.dataset.name,
            model=f"{self.cfg.detector.name}_resnet50_fpn",
            scale=self.cfg.scale.name,
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
