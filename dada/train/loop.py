"""The evaluation run: train a network with a policy on a recipe, test every epoch, checkpoint, summarise.

Honest reporting: ``test_error_top1``/``test_error_top5`` are the final epoch's; the best epoch picked on
the test set (what Fast AA's train.py reports) appears only under a name that says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from dada import checkpoint, data, models
from dada.run import RunLifecycle
from dada.runtime import resolve_device, seed_everything
from dada.scale import scale_name
from dada.schemas import PolicyInfo, TrainSummary
from dada.tracking import DeviceClock, flops
from dada.tracking.cost import eval_cost
from dada.train import pipeline
from dada.train._config import validate
from dada.train.distributed import Distributed
from dada.train.metrics import ClassificationMeters
from dada.train.policies import create_augmentation
from dada.train.recipe import create_optimizer, create_scheduler, plan_schedule

log = logging.getLogger(__name__)
ORDER_STREAM, AUGMENT_STREAM = 0, 1  # independent random streams derived from the run seed


def stream_seed(seed: int, *key: int) -> int:
    """A seed for one random stream of the run (NumPy's SeedSequence: independent of the other streams)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1, dtype=np.uint64)[0] >> 1)


class TrainRun(RunLifecycle):
    """One seeded evaluation; ``run()`` resumes from ``<run_dir>/checkpoint.pt`` and is a no-op once finished.

    The config is checked first (a recipe, unknown keys, out-of-range values); ``run()`` holds the run folder's
    lock (rank 0) and refuses a folder whose run had other settings (`dada.run.RunLifecycle`).
    """

    app, noun, lower = "train", "evaluation", "recipe.lr"
    identity_keys = (
        *("dataset", "model", "recipe", "policy", "scale", "seed"),
        *("subset_seed", "train_images", "test_images", "test_every"),
    )

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg, validate)
        self.dist = Distributed.setup(resolve_device(cfg.device))
        self.device = self.dist.device
        self.is_main = self.dist.is_main
        if not self.dist.is_main:
            log.setLevel(logging.WARNING)  # rank 0 speaks for the job
        seed_everything(cfg.seed + self.dist.rank, deterministic=cfg.deterministic, threads=cfg.threads)
        self.order_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, ORDER_STREAM))
        self.augment_generator = torch.Generator().manual_seed(stream_seed(cfg.seed, AUGMENT_STREAM, self.dist.rank))
        self.model = models.create(cfg.model.name, cfg.dataset.num_classes, **cfg.model.kwargs).to(self.device)
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.network = self.dist.wrap(self.model)
        if cfg.compile:
            self.network = torch.compile(self.network)
        self.criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.CrossEntropyLoss()
        self.history, self.seconds = [], {"train": 0.0, "total": 0.0}

    @property
    def epochs(self) -> int:
        return self.schedule.epochs

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp and self.device.type == "cuda"
        )

    # -- data, optimiser, schedule ------------------------------------------------------------------------------

    def prepare(self) -> None:
        cfg, dataset = self.cfg, self.cfg.dataset
        in_memory = data.get_spec(dataset.eval_train_split).in_memory
        self.augmentation = create_augmentation(cfg.policy, dataset.name, cfg.seed, in_memory)
        train_split = pipeline.load_train_split(
            dataset, self.augmentation, cfg.recipe, cfg.train_images, cfg.subset_seed
        )
        test_split = pipeline.load_test_split(dataset, cfg.test_images, cfg.subset_seed)
        self.train_images, self.test_images = len(train_split), len(test_split)
        self.schedule = plan_schedule(cfg.recipe, self.train_images)
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
            cfg.num_workers,
        )
        eval_batch = max(cfg.recipe.eval_batch_size // self.dist.world_size, 1)
        self.test_batches = pipeline.test_batches(test_split, eval_batch, self.dist, self.device, cfg.num_workers)
        cutout = dataset.cutout if self.augmentation.cutout else 0
        self.preprocess = pipeline.Preprocess(list(dataset.mean), list(dataset.std), cutout, cfg.recipe.lighting)
        self.optimizer = create_optimizer(self.model, cfg.recipe)
        self.scheduler = create_scheduler(self.optimizer, cfg.recipe, self.schedule)
        log.info(
            "%s\n%s on %d train / %d test images, %s",
            self.augmentation,
            cfg.model.name,
            self.train_images,
            self.test_images,
            self.schedule,
        )

    # -- checkpoints ---------------------------------------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        """Everything an exact resume needs; per-rank random states gathered from every rank."""
        return {
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

    def check_resumable(self, state: dict[str, Any]) -> None:
        if state["world_size"] != self.dist.world_size:
            raise ValueError(
                f"{self.checkpoint_path} was written by {state['world_size']} ranks; resume it with "
                f"the same number (this job has {self.dist.world_size})"
            )

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.order_generator.set_state(state["order_generator"])
        self.augment_generator.set_state(state["augment_generator"][self.dist.rank])
        checkpoint.set_rng_state(state["rng"][self.dist.rank])
        self.history, self.seconds = state["history"], state["seconds"]

    # -- one epoch -----------------------------------------------------------------------------------------------

    def _forward(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            logits = self.network(images).float()
        return logits, self.criterion(logits, labels)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, epoch: int, step: int):
        inputs = self.preprocess(images.to(self.device, non_blocking=True), self.augment_generator)
        labels = labels.to(self.device, non_blocking=True)
        logits, loss = self._forward(inputs, labels)
        value = self.optimizer_step(loss, self.model.parameters(), self.cfg.recipe.grad_clip, epoch, step)
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
            logits, labels, loss = self.train_step(images, labels, epoch, step)
            meters.update(logits, labels, loss)
            rate = meters.count * self.dist.world_size / (time.perf_counter() - started)
            progress.set_postfix(loss=f"{meters.loss.avg:.3f}", acc=f"{meters.top1.avg:.1f}", img_s=f"{rate:.0f}")
            if global_step % self.cfg.logger.log_every == 0:
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
        """Whether epoch ``epoch`` (from 0) ends with a test: every ``test_every`` epochs, and the last."""
        return (epoch + 1) % self.cfg.test_every == 0 or epoch + 1 == self.schedule.epochs

    def train_epoch(self, epoch: int, tracker) -> dict[str, float]:
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

    def tags(self) -> dict[str, str]:
        return {"model": self.cfg.model.name, "policy": self.cfg.policy.name}

    def keep(self, metrics: dict[str, float]) -> None:
        self.history.append(metrics)

    def log_epoch(self, epoch: int, metrics: dict[str, float], tracker) -> None:
        tracker.log_metrics(metrics, step=(epoch + 1) * self.schedule.steps_per_epoch)

    def finite_modules(self) -> dict[str, nn.Module]:
        return {"weight": self.model}

    def finish(self, tracker) -> dict[str, Any]:
        self.check_finite("before the summary", self.history[-1])
        summary = self._summary()
        return summary

    def result(self, summary: Mapping[str, Any]) -> str:
        return f"test error {summary['test_error_top1']:.2f} % (checkpoint {self.checkpoint_path})"

    def run(self) -> dict:
        summary = super().run()
        self.dist.barrier()
        return summary

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
        cost = eval_cost(
            clock, self.seconds["total"], float(train_flops * self.schedule.total_steps + test_flops * tests)
        )
        policy = PolicyInfo(
            self.augmentation.name, self.augmentation.source, self.augmentation.on_device, self.preprocess.cutout
        )
        return TrainSummary(
            name=self.cfg.name,
            seed=self.cfg.seed,
            dataset=self.cfg.dataset.name,
            model=self.cfg.model.name,
            scale=scale_name(self.cfg),
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
