"""The evaluation run: train a network with a policy on a recipe, test every epoch, checkpoint, summarise.

Honest reporting: ``test_error_top1``/``test_error_top5`` are the final epoch's; the best epoch picked on
the test set (what Fast AA's train.py reports) appears only under a name that says so.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from dada import checkpoint, data, models
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
from dada.schemas import EvalCost, PolicyInfo, TrainSummary
from dada.tracking import DeviceClock, flops, tracker_for
from dada.train import pipeline
from dada.train._config import validate
from dada.train.distributed import Distributed
from dada.train.metrics import ClassificationMeters
from dada.train.policies import create_augmentation
from dada.train.recipe import create_optimizer, create_scheduler, plan_schedule

log = logging.getLogger(__name__)
ORDER_STREAM, AUGMENT_STREAM = 0, 1  # independent random streams derived from the run seed
IDENTITY_KEYS = ("dataset", "model", "recipe", "policy", "scale", "seed", "subset_seed")


def stream_seed(seed: int, *key: int) -> int:
    """A seed for one random stream of the run (NumPy's SeedSequence: independent of the other streams)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1, dtype=np.uint64)[0] >> 1)


class _NoTracker:
    """What ranks other than 0 log to: nothing."""

    def log_metrics(self, metrics, step: int) -> None:
        pass

    def set_summary(self, summary) -> None:
        pass


class TrainRun:
    """One seeded evaluation; ``run()`` resumes from ``<run_dir>/checkpoint.pt`` and is a no-op once finished.

    The config is checked first (a recipe, unknown keys, out-of-range values); ``run()`` holds the run folder's
    lock (rank 0) and refuses a folder whose run had other settings.
    """

    def __init__(self, cfg: DictConfig):
        validate(cfg)
        self.cfg = cfg
        self.run_dir = Path(cfg.run_dir)
        self.dist = Distributed.setup(resolve_device(cfg.device))
        self.device = self.dist.device
        if not self.dist.is_main:
            log.setLevel(logging.WARNING)  # rank 0 speaks for the job
        seed_everything(cfg.seed + self.dist.rank, deterministic=cfg.deterministic, threads=cfg.threads)
        self.order_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, ORDER_STREAM))
        self.augment_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, AUGMENT_STREAM, self.dist.rank))
        self.identity = run_identity(cfg, IDENTITY_KEYS)
        self.architecture = cfg.scale.model or cfg.model.name
        self.num_workers = cfg.num_workers if cfg.scale.num_workers is None else cfg.scale.num_workers
        self.model = models.create(self.architecture, cfg.dataset.num_classes, **cfg.model.kwargs).to(self.device)
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.network = self.dist.wrap(self.model)
        if cfg.compile:
            self.network = torch.compile(self.network)
        self.criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.CrossEntropyLoss()
        self.start_epoch, self.history, self.seconds = 0, [], {"train": 0.0, "total": 0.0}

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp and self.device.type == "cuda"
        )

    # -- data, optimiser, schedule ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        cfg, dataset = self.cfg, self.cfg.dataset
        in_memory = data.get_spec(dataset.eval_train_split).in_memory
        self.augmentation = create_augmentation(cfg.policy, dataset.name, cfg.seed, in_memory)
        train_split = pipeline.load_train_split(
            dataset, self.augmentation, cfg.recipe, cfg.scale.train_images, cfg.subset_seed
        )
        test_split = pipeline.load_test_split(dataset, cfg.scale.test_images, cfg.subset_seed)
        self.train_images, self.test_images = len(train_split), len(test_split)
        self.schedule = plan_schedule(cfg.recipe, cfg.scale, self.train_images)
        sampler = pipeline.ShardedBatchSampler(
            self.train_images, self.schedule.batch_size, self.order_generator, self.dist.rank, self.dist.world_size
        )
        self.train_batches = pipeline.train_batches(
            train_split,
            self.augmentation,
            cfg.recipe,
            dataset.image_size,
            sampler,
            self.augment_generator,
            self.device,
            self.num_workers,
        )
        eval_batch = max(cfg.recipe.eval_batch_size // self.dist.world_size, 1)
        self.test_batches = pipeline.test_batches(test_split, eval_batch, self.dist, self.device, self.num_workers)
        cutout = dataset.cutout if self.augmentation.cutout else 0
        self.preprocess = pipeline.Preprocess(list(dataset.mean), list(dataset.std), cutout, cfg.recipe.lighting)
        self.optimizer = create_optimizer(self.model, cfg.recipe)
        self.scheduler = create_scheduler(self.optimizer, cfg.recipe, self.schedule)
        log.info(
            "%s\n%s on %d train / %d test images, %s",
            self.augmentation,
            self.architecture,
            self.train_images,
            self.test_images,
            self.schedule,
        )

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def _state(self, epoch: int) -> dict[str, Any]:
        """Everything an exact resume needs; per-rank random states gathered from every rank."""
        return {
            "kind": "train",
            "epoch": epoch,
            "identity": self.identity,
            "world_size": self.dist.world_size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "order_generator": self.order_generator.get_state(),
            "augment_generator": self.dist.gather(self.augment_generator.get_state()),
            "rng": self.dist.gather(checkpoint.rng_state()),
            "history": self.history,
            "seconds": self.seconds,
        }

    def _resume(self, state: dict | None) -> None:
        if state is None:
            return
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"{self.checkpoint_path} was written by {state['world_size']} ranks; resume it with "
                f"the same number (this job has {self.dist.world_size})"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.order_generator.set_state(state["order_generator"])
            self.augment_generator.set_state(state["augment_generator"][self.dist.rank])
            checkpoint.set_rng_state(state["rng"][self.dist.rank])
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
            raise checkpoint.WrongCheckpointError(
                f"checkpoint {self.checkpoint_path} does not fit this run (model {self.architecture}): "
                f"{type(error).__name__}: {str(error).splitlines()[0]}. It was not overwritten: resume with the "
                f"settings it was written with, or choose another run_dir"
            ) from None
        self.start_epoch, self.history, self.seconds = state["epoch"] + 1, state["history"], state["seconds"]
        log.info("resumed %s after epoch %d", self.run_dir, state["epoch"] + 1)

    # -- one epoch -----------------------------------------------------------------------------------------------

    def _forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            logits = self.network(images).float()
        return logits, self.criterion(logits, labels)

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor, epoch: int, step: int):
        inputs = self.preprocess(images.to(self.device, non_blocking=True), self.augment_generator)
        labels = labels.to(self.device, non_blocking=True)
        logits, loss = self._forward(inputs, labels)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"non-finite training loss ({value}) at epoch {epoch + 1}, step {step + 1}; "
                f"the last good checkpoint, {self.checkpoint_path}, is kept"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.recipe.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.recipe.grad_clip)
        self.optimizer.step()
        return logits.detach(), labels, value

    def _train_epoch(self, epoch: int, tracker) -> dict[str, float]:
        self.network.train()
        meters, started = ClassificationMeters(), time.perf_counter()
        progress = tqdm(
            self.train_batches,
            desc=f"epoch {epoch + 1}/{self.schedule.epochs}",
            leave=False,
            disable=not self.dist.is_main,
        )
        for step, (images, labels) in enumerate(progress):
            global_step = epoch * self.schedule.steps_per_epoch + step
            self.scheduler.step_update(global_step)
            logits, labels, loss = self._train_step(images, labels, epoch, step)
            meters.update(logits, labels, loss)
            rate = meters.count * self.dist.world_size / (time.perf_counter() - started)
            progress.set_postfix(loss=f"{meters.loss.avg:.3f}", acc=f"{meters.top1.avg:.1f}", img_s=f"{rate:.0f}")
            if global_step % self.cfg.log_every == 0:
                tracker.log_metrics(
                    {"step/train_loss": loss, "step/lr": self.optimizer.param_groups[0]["lr"]}, step=global_step
                )
        return {f"train/{key}": value for key, value in meters.reduce(self.dist).items()}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and top-1/top-5 error (%) on the (whole, or scaled) test set, summed over the ranks."""
        self.network.eval()
        meters = ClassificationMeters()
        for images, labels in self.test_batches:
            labels = labels.to(self.device, non_blocking=True)
            logits, loss = self._forward(self.preprocess(images.to(self.device), train=False), labels)
            meters.update(logits, labels, loss.item())
        return {f"test/{key}": value for key, value in meters.reduce(self.dist).items()}

    def _tests_after(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (from 0) ends with a test: every ``scale.test_every`` epochs, and the last."""
        every = self.cfg.scale.test_every or 1
        return (epoch + 1) % every == 0 or epoch + 1 == self.schedule.epochs

    def _epoch(self, epoch: int, tracker) -> dict[str, float]:
        """Train one epoch, then test if due; the clocks add to the run's seconds (kept across resumes)."""
        with DeviceClock(self.device) as epoch_clock:
            with DeviceClock(self.device) as train_clock:
                metrics = self._train_epoch(epoch, tracker)
            if self._tests_after(epoch):
                metrics.update(self.evaluate())
        self.seconds = {
            "train": self.seconds["train"] + train_clock.seconds,
            "total": self.seconds["total"] + epoch_clock.seconds,
        }
        images = self.schedule.steps_per_epoch * self.schedule.batch_size
        return {
            **metrics,
            "epoch": epoch + 1,
            "lr": self.optimizer.param_groups[0]["lr"],
            "images_per_second": images / train_clock.seconds,
            "epoch_seconds": epoch_clock.seconds,
        }

    # -- the run -------------------------------------------------------------------------------------------------

    def _tracker(self):
        if not self.dist.is_main:
            return contextlib.nullcontext(_NoTracker())
        tags = {
            "app": "train",
            "dataset": self.cfg.dataset.name,
            "model": self.architecture,
            "policy": self.cfg.policy.name,
            "scale": self.cfg.scale.name,
            "table": self.cfg.table,
            "seed": str(self.cfg.seed),
        }
        return tracker_for(self.cfg, self.run_dir, tags, resume_epoch=self.start_epoch)

    def run(self) -> dict:
        with run_lock(self.run_dir) if self.dist.is_main else contextlib.nullcontext():
            return self._run()

    def _run(self) -> dict:
        state = checkpoint.load(self.checkpoint_path, kind="train")
        check_identity(self.run_dir, state and state.get("identity"), self.identity)
        finished = finished_summary(self.run_dir)
        if finished is not None:
            log.info("%s is finished; nothing to do", self.run_dir)
            return finished
        if self.dist.is_main:
            save_hydra_record(self.run_dir, self.cfg)
        self._prepare()
        self._resume(state)
        with self._tracker() as tracker:
            for epoch in range(self.start_epoch, self.schedule.epochs):
                metrics = self._epoch(epoch, tracker)
                self._check_finite(f"after epoch {epoch + 1}", metrics)
                self.history.append(metrics)
                state = self._state(epoch)
                if self.dist.is_main:  # the record first: a kill between the two re-runs the epoch, never loses it
                    tracker.log_metrics(metrics, step=(epoch + 1) * self.schedule.steps_per_epoch)
                    checkpoint.save_atomic(state, self.checkpoint_path)
                log.info("epoch %d: %s", epoch + 1, {key: round(value, 4) for key, value in metrics.items()})
            self._check_finite("before the summary", self.history[-1])
            summary = self._summary()
            tracker.set_summary(summary)
        self.dist.barrier()
        return {"status": "FINISHED", **summary}

    def _check_finite(self, where: str, metrics: Mapping[str, float]) -> None:
        """Refuse non-finite metrics (the test loss too) or weights before they reach a checkpoint or a summary."""
        refuse_non_finite(
            where,
            metrics,
            {"weight": self.model},
            f"Nothing of it was saved; the last good checkpoint, {self.checkpoint_path}, is kept. Lower recipe.lr",
        )

    def _summary(self) -> dict[str, Any]:
        final = self.history[-1]
        best = min(
            (metrics for metrics in self.history if "test/error_top1" in metrics),
            key=lambda metrics: metrics["test/error_top1"],
        )
        clock = DeviceClock(self.device, device_count=self.dist.world_size)
        # FLOPs: one training step (the global batch) counted, times the steps, and every test pass over the test set
        image = (len(self.cfg.dataset.mean), self.cfg.dataset.image_size, self.cfg.dataset.image_size)
        tests = sum(self._tests_after(epoch) for epoch in range(self.schedule.epochs))
        train_flops = flops.training_step_flops(self.model, (self.schedule.batch_size, *image))
        test_flops = flops.forward_flops(self.model, (self.test_images, *image))
        cost = EvalCost(
            unit=clock.unit,
            device_name=clock.device_name,
            device_count=clock.device_count,
            num_threads=clock.num_threads,
            eval_device_hours=clock.device_count * self.seconds["total"] / 3600,
            flops=float(train_flops * self.schedule.total_steps + test_flops * tests),
        )
        policy = PolicyInfo(
            self.augmentation.name, self.augmentation.source, self.augmentation.on_device, self.preprocess.cutout
        )
        return TrainSummary(
            name=self.cfg.name,
            seed=self.cfg.seed,
            dataset=self.cfg.dataset.name,
            model=self.architecture,
            scale=self.cfg.scale.name,
            epochs=self.schedule.epochs,
            policy=policy,
            train_images=self.train_images,
            test_images=self.test_images,
            batch_size=self.schedule.batch_size,
            world_size=self.dist.world_size,
            test_error_top1=final["test/error_top1"],
            test_error_top5=final.get("test/error_top5"),
            test_error_best_epoch_selected_on_test=best["test/error_top1"],
            best_epoch_selected_on_test=best["epoch"],
            train_loss=final["train/loss"],
            train_error_top1=final["train/error_top1"],
            seconds=self.seconds["total"],
            train_seconds=self.seconds["train"],
            images_per_second=self.schedule.total_steps * self.schedule.batch_size / self.seconds["train"],
            cost=cost,
        ).to_dict()
