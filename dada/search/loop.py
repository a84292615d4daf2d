"""The search run: data, model, policy parameters, the bi-level loop, logging, checkpoints and export."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from dada import checkpoint, estimators, models, transforms
from dada.data.search_set import SearchData, prepare_search_data
from dada.files import read_json, write_atomic
from dada.plots import policy_heatmap
from dada.policy import POLICY_CAP, Policy
from dada.run import RunLifecycle
from dada.runtime import resolve_device, seed_everything
from dada.scale import scale_name
from dada.schemas import (
    SearchCost,
    SearchSummary,
    gradient_metric,
)
from dada.search._config import validate
from dada.search.augment import SearchInputs
from dada.search.bilevel import BiLevelOptimizer, StepResult
from dada.search.policy_metrics import TABLE_NAME, PolicySummaries, numbered_metrics, state_table
from dada.search.schedule import epoch_batches, network_schedule, steps_per_epoch
from dada.search.space import SearchSpace
from dada.search.variant import get_variant
from dada.tracking import DeviceClock, flops

log = logging.getLogger(__name__)


class _GradientMoments:
    """Per-coordinate mean and variance of the estimates over one epoch, per parameter group."""

    def __init__(self):
        self.count, self.total, self.squares = 0, {}, {}

    def add(self, result: StepResult) -> None:
        self.count += 1
        for group, value in (
            ("alpha", result.grad_alpha),
            ("probability", result.grad_probability),
            ("magnitude", result.grad_magnitude),
        ):
            value = value.double().cpu()
            self.total[group] = self.total.get(group, 0) + value
            self.squares[group] = self.squares.get(group, 0) + value * value

    def metrics(self) -> dict[str, float]:
        out = {}
        for group, total in self.total.items():
            mean = total / self.count
            variance = (self.squares[group] / self.count - mean * mean).clamp_min(0)
            out[gradient_metric(group, "mean")] = mean.mean().item()
            out[gradient_metric(group, "variance")] = variance.mean().item()
            out[gradient_metric(group, "norm")] = mean.norm().item()
        return out


class SearchRun(RunLifecycle):
    """One seeded search; ``run()`` resumes from ``<run_dir>/checkpoint.pt`` and is a no-op once finished.

    The config is checked first (unknown keys, out-of-range values); ``run()`` holds the run folder's lock and
    refuses a folder whose run had other settings (`dada.run.RunLifecycle`).
    """

    app, noun = "search", "search"
    identity_keys = ("dataset", "model", "search", "estimator", "scale", "seed")
    lower = "search.lr or search.policy_lr"
    rename = "variant_name=..."

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg, validate)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads)
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)  # sub-policies, gates, crops, order
        recipe = cfg.search
        self.variant = get_variant(recipe.variant)
        self.epochs, self.batch_size = recipe.epochs, recipe.batch_size
        self.cutout = recipe.cutout if recipe.cutout is not None else cfg.dataset.cutout
        classes = cfg.dataset.search_classes or cfg.dataset.num_classes  # reduced ImageNet: a 120-way head
        self.model = models.create(cfg.model.name, classes, **cfg.model.kwargs).to(self.device)
        self.space = SearchSpace(
            recipe.ops_per_sub_policy, recipe.ordered, recipe.alpha_init, recipe.probability_init, recipe.magnitude_init
        ).to(self.device)
        self.policy_summaries = PolicySummaries(recipe.top_k)
        self.estimator = estimators.create(
            cfg.estimator.name,
            num_categories=self.space.num_sub_policies,
            num_gates=self.space.probability.numel(),
            boundary="straight_through" if self.variant.project else "freeze",
            **self.estimator_options(),
        ).to(self.device)
        network_optimizer = torch.optim.SGD(
            self.model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
        policy_optimizer = torch.optim.Adam(
            list(self.space.parameters()) + list(self.estimator.parameters()),
            lr=recipe.policy_lr,
            betas=tuple(recipe.policy_betas),
            weight_decay=recipe.policy_weight_decay,
        )
        self.scheduler = network_schedule(network_optimizer, self.epochs, recipe.lr_min, recipe.lr_step_first)
        self.pipeline = cfg.dataset.search_pipeline
        self.inputs = SearchInputs(
            self.space,
            cfg.dataset.mean,
            cfg.dataset.std,
            self.cutout,
            self.generator,
            official=self.variant.on_network_input,
            after_ops=self._lighting(),
        )
        self.optimizer = BiLevelOptimizer(
            self.model,
            self.space,
            self.estimator,
            network_optimizer,
            policy_optimizer,
            recipe.grad_clip,
            self.inputs,
            recipe.fd_epsilon,
            self.variant,
            recipe.mode,
            recipe.sampling,
        )
        self.clock = DeviceClock(self.device)
        self.resumed_seconds = 0.0

    def estimator_options(self) -> dict:
        options = OmegaConf.to_container(self.cfg.estimator)
        return {key: value for key, value in options.items() if key != "name" and value is not None}

    # -- checkpoints -------------------------------------------------------------------------------------------

    def checkpoint_state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "space": self.space.state_dict(),
            "estimator": self.estimator.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "network_optimizer": self.optimizer.network_optimizer.state_dict(),
            "policy_optimizer": self.optimizer.policy_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "rng": checkpoint.rng_state(),
            "search_seconds": self.search_seconds,
        }

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.space.load_state_dict(state["space"])
        self.estimator.load_state_dict(state["estimator"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.optimizer.network_optimizer.load_state_dict(state["network_optimizer"])
        self.optimizer.policy_optimizer.load_state_dict(state["policy_optimizer"])
        self.generator.set_state(state["generator"])
        checkpoint.set_rng_state(state["rng"])
        self.resumed_seconds = state["search_seconds"]

    def describe(self) -> str:
        return f"model {self.cfg.model.name}, estimator {self.cfg.estimator.name}"

    # -- the loop ----------------------------------------------------------------------------------------------

    def steps_per_epoch(self, split: SearchData) -> int:
        return steps_per_epoch(len(split.train_labels), self.batch_size, self.cfg.search.drop_last)

    def _batches(self, count: int) -> list[torch.Tensor]:
        return epoch_batches(count, self.batch_size, self.generator, self.device, self.cfg.search.drop_last)

    def _lighting(self):
        """ImageNet's PCA lighting noise after the op (official search_relax/dataset.py), or None."""
        if not self.pipeline:
            return None
        pipeline = self.pipeline
        return lambda images: transforms.lighting(
            images,
            pipeline.lighting_std,
            list(pipeline.pca_eigval),
            [list(row) for row in pipeline.pca_eigvec],
            self.generator,
        )

    def train_batch(self, split: SearchData, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Search-train images at ``index`` as [0,1] floats before the op, with their labels: pad, crop and flip
        (CIFAR), or random resized crop, flip and colour jitter (the official ImageNet search)."""
        images = split.train_images[index].float() / 255
        if not self.pipeline:
            images = transforms.random_crop_flip(images, self.cfg.search.crop_padding, self.generator)
            return images, split.train_labels[index]
        size, jitter = self.cfg.dataset.image_size, self.pipeline.color_jitter
        images = transforms.random_resized_crop(
            images, size, tuple(self.pipeline.random_resized_crop_scale), generator=self.generator
        )
        images = transforms.color_jitter(
            transforms.random_flip(images, self.generator), jitter, jitter, jitter, self.generator
        )
        return images, split.train_labels[index]

    def val_batch(self, split: SearchData, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Search-val images at ``index`` as [0,1] floats (centre-cropped for ImageNet), with their labels;
        ``SearchInputs.val`` normalises them."""
        images = split.val_images[index].float() / 255
        if self.pipeline:
            images = transforms.center_crop(images, self.cfg.dataset.image_size)
        return images, split.val_labels[index]

    def search_epoch(self, epoch: int, split: SearchData, tracker) -> dict[str, float]:
        moments, totals = _GradientMoments(), {"train_loss": 0.0, "val_loss": 0.0, "surrogate_loss": 0.0}
        train_batches = self._batches(len(split.train_labels))
        val_batches = self._batches(len(split.val_labels))
        progress = tqdm(range(len(train_batches)), desc=f"search epoch {epoch + 1}/{self.epochs}", leave=False)
        for step in progress:
            train_index, val_index = train_batches[step], val_batches[step % len(val_batches)]
            result = self.optimizer.step(
                self.train_batch(split, train_index), self.val_batch(split, val_index), self.generator
            )
            self._check_finite_step(result, epoch, step)
            moments.add(result)
            totals["train_loss"] += result.train_loss
            totals["val_loss"] += result.val_loss
            totals["surrogate_loss"] += result.surrogate_loss or 0.0
            progress.set_postfix(train=f"{result.train_loss:.3f}", val=f"{result.val_loss:.3f}")
            global_step = epoch * len(train_batches) + step
            if step % self.cfg.logger.log_every == 0:
                tracker.log_metrics(
                    {
                        "step/train_loss": result.train_loss,
                        "step/val_loss": result.val_loss,
                        "step/policy_objective": result.policy_objective,
                    },
                    step=global_step,
                )
        steps = len(train_batches)
        metrics = {f"search/{k}": v / steps for k, v in totals.items()}
        if self.cfg.estimator.name != "relax":
            metrics.pop("search/surrogate_loss")
        return {
            **metrics,
            **moments.metrics(),
            "search/lr": self.scheduler.get_last_lr()[0],
            "search/val_accuracy": self._val_accuracy(split),
        }

    def _check_finite_step(self, result: StepResult, epoch: int, step: int) -> None:
        if not (
            torch.isfinite(torch.tensor([result.train_loss, result.val_loss, result.policy_objective])).all()
            and torch.isfinite(self.space.alpha).all()
        ):
            raise FloatingPointError(
                f"non-finite loss or policy at epoch {epoch + 1}, step {step} (train {result.train_loss}, "
                f"val {result.val_loss}); the last good state is {self.run_dir / 'checkpoint.pt'}"
            )

    def finite_modules(self) -> dict[str, torch.nn.Module]:
        return {"network": self.model, "policy": self.space, "estimator": self.estimator}

    @torch.no_grad()
    def _val_accuracy(self, split: SearchData) -> float:
        self.model.eval()
        correct = 0
        for start in range(0, len(split.val_labels), 256):
            images, labels = self.val_batch(split, torch.arange(start, min(start + 256, len(split.val_labels))))
            correct += (self.model(self.inputs.val(images)).argmax(1) == labels).sum().item()
        self.model.train()
        return correct / len(split.val_labels)

    def _log_heatmap(self, tracker, epoch: int) -> None:
        figure = policy_heatmap(
            self.space.sub_policies,
            self.space.alpha,
            self.space.probabilities(),
            self.space.magnitudes(),
            self.cfg.search.top_k,
            title=f"{self.cfg.name} seed {self.cfg.seed}: after epoch {epoch + 1}",
        )
        tracker.log_figure(figure, f"policy_epoch{epoch + 1:03d}")

    def tags(self) -> dict[str, str]:
        return {"estimator": self.cfg.estimator.name, "model": self.cfg.model.name}

    def prepare(self) -> None:
        self.split = prepare_search_data(self.cfg.dataset, self.device, self.cfg.search.class_list)
        if self.steps_per_epoch(self.split) == 0:
            raise ValueError(
                f"the search-train split holds {len(self.split.train_labels)} images, fewer than one batch "
                f"of {self.batch_size}; raise dataset.search_images or lower search.batch_size"
            )
        log.info(
            "%s on %d search-train / %d search-val images, %d epochs, batch %d, lr %g, policy lr %g",
            self.cfg.model.name,
            len(self.split.train_labels),
            len(self.split.val_labels),
            self.epochs,
            self.batch_size,
            self.cfg.search.lr,
            self.cfg.search.policy_lr,
        )

    def train_epoch(self, epoch: int, tracker) -> dict[str, float]:
        with self.clock:
            metrics = self.search_epoch(epoch, self.split, tracker)
            self.scheduler.step()
        return metrics

    def log_epoch(self, epoch: int, metrics: dict[str, float], tracker) -> None:
        step = (epoch + 1) * self.steps_per_epoch(self.split)
        summaries = self.policy_summaries(self.space)
        tracker.log_metrics({"epoch": epoch + 1, **metrics, **summaries}, step, numbered_metrics(self.space))
        tracker.log_table(TABLE_NAME, state_table(self.space, epoch + 1), step)
        if (epoch + 1) % self.cfg.logger.heatmap_every == 0 or epoch + 1 == self.epochs:
            self._log_heatmap(tracker, epoch)

    def finish(self, tracker) -> dict:
        return self._finish(tracker, self.split)

    def result(self, summary) -> str:
        """The policy file and its heaviest sub-policies."""
        policy = Policy.load(summary["policy"])
        top = "; ".join(str(sub_policy) for sub_policy in policy.sub_policies[:3])
        return f"policy {summary['policy']} ({len(policy.sub_policies)} sub-policies; the first: {top})"

    @property
    def search_seconds(self) -> float:
        """Device time of the search loop alone, across resumes; data preparation is outside the clock."""
        return self.resumed_seconds + self.clock.seconds

    def _finish(self, tracker, split: SearchData) -> dict:
        self.check_finite("at the policy export")
        policy = self.space.export(self.cfg.search.top_k, name=f"{self.cfg.name}-seed{self.cfg.seed}")
        policy_path = policy.save(self.folder.policy)
        write_atomic(self.run_dir / "policy_archive.json", json.dumps(policy.to_archive()))
        # FLOPs: one step counted (hypergradient runs a step's passes and updates nothing), times the steps; the
        # network part is the step's training forward and backward, the policy part the rest of the step.
        index = torch.arange(self.batch_size, device=self.device)
        train, val = self.train_batch(split, index), self.val_batch(split, index[: len(split.val_labels)])
        step_flops = flops.count_flops(self.optimizer.hypergradient, train, val, self.generator)
        network_flops = flops.training_step_flops(self.model, train[0].shape)
        steps = self.epochs * self.steps_per_epoch(split)
        validation_flops = flops.forward_flops(self.model, (len(split.val_labels), *val[0].shape[1:])) * self.epochs
        clock = self.clock
        cost = SearchCost(
            **clock.device_info(),
            search_device_hours=self.search_seconds / 3600 * clock.device_count,
            images_per_second=len(split.train_labels) * self.epochs / max(self.search_seconds, 1e-9),
            flops=float(step_flops * steps + validation_flops),
            network_flops=float(network_flops * steps),
            policy_flops=float((step_flops - network_flops) * steps),
        )
        summary = SearchSummary(
            name=self.cfg.name,
            seed=self.cfg.seed,
            dataset=self.cfg.dataset.name,
            model=self.cfg.model.name,
            scale=scale_name(self.cfg),
            epochs=self.epochs,
            estimator=self.cfg.estimator.name,
            variant=self.variant.name,
            policy=str(policy_path),
            search_seconds=self.search_seconds,
            cost=cost,
            top_overlap_with_other_seeds=top_overlap(self.run_dir, policy),
        ).to_dict()
        tracker.log_artifact(policy_path)
        return summary


def top_overlap(run_dir: Path, policy) -> dict[str, float]:
    """Fraction of top-k sub-policies shared with each finished sibling seed (same experiment).

    A sibling's ``policy.json`` that cannot be read is warned about and skipped: it never fails this run.
    """
    mine = {tuple(op.name for op in s.operations) for s in policy.sub_policies}
    overlaps = {}
    for other in sorted(run_dir.parent.glob("*/policy.json")):
        if other.parent == run_dir:
            continue
        try:
            document = read_json(other, "policy file", cap=POLICY_CAP)
            theirs = {tuple(op[0] for op in s["operations"]) for s in document["sub_policies"]}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            warnings.warn(
                f"{other} was skipped in the top-k overlap with other seeds: it cannot be read "
                f"({type(error).__name__}: {error}); this search goes on",
                RuntimeWarning,
            )
            continue
        overlaps[other.parent.name] = len(mine & theirs) / len(mine)
    return overlaps
