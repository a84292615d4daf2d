"""The search run: data, model, policy parameters, the bi-level loop, logging, checkpoints and export."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from dada import checkpoint, data, estimators, models, transforms
from dada.plots import policy_heatmap
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
from dada.schemas import (
    SearchCost,
    SearchSummary,
    gradient_metric,
    policy_slot_metric,
    policy_weight_metric,
)
from dada.search._config import validate
from dada.search.augment import SearchInputs
from dada.search.bilevel import BiLevelOptimizer, StepResult
from dada.search.schedule import epoch_batches, network_schedule, steps_per_epoch
from dada.search.space import SearchSpace
from dada.search.variant import get_variant
from dada.tracking import DeviceClock, flops, tracker_for

log = logging.getLogger(__name__)
IDENTITY_KEYS = ("dataset", "model", "search", "estimator", "scale", "seed")  # a resume or re-run must keep these


@dataclass
class SearchData:
    train_images: torch.Tensor  # uint8 [N,3,H,W], on the device
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor


def reduced_set(dataset: DictConfig, size: int, class_list: str | None = None) -> data.LabeledImages:
    """The reduced training set of section 4.2, in memory: ``size`` images, stratified and seeded.

    An image folder keeps ``dataset.search_classes`` classes when set (reduced ImageNet: 120): those of
    ``class_list`` (``search.class_list``), else random ones; renumbered from 0, and only the chosen images are
    decoded, at ``dataset.image_size``.
    """
    seed = dataset.search_split_seed
    if data.get_spec(dataset.name).in_memory:
        full = data.load_images(dataset.name, dataset.root, train=True)
        return full.subset(data.reduced_indices(full.labels, size, seed=seed))
    folder = data.load_image_folder(dataset.name, dataset.root, train=True, num_classes=dataset.num_classes)
    targets = torch.tensor(folder.targets)
    # The ImageNet pipeline crops at run time: keep a centre square at the validation resize (see FIDELITY.md).
    decode_size = dataset.search_pipeline.val_resize if dataset.search_pipeline else dataset.image_size
    if dataset.search_classes:
        classes = data.load_class_list(class_list) if class_list else None  # null: random classes, seeded
        indices, label_map = data.reduced_imagenet_indices(targets, dataset.search_classes, size, seed, classes)
        return data.decode_images(folder, indices, decode_size, label_map)
    return data.decode_images(folder, data.reduced_indices(targets, size, seed=seed), decode_size)


def prepare_data(cfg: DictConfig, device: torch.device) -> SearchData:
    """The reduced training set, split 50/50 and stratified into search-train and search-val (section 4.1)."""
    dataset = cfg.dataset
    size = dataset.search_images if cfg.scale.search_images is None else cfg.scale.search_images
    reduced = reduced_set(dataset, size, cfg.search.class_list)
    train_index, val_index = data.search_split(
        reduced.labels, train_fraction=dataset.search_train_fraction, seed=dataset.search_split_seed
    )
    images, labels = reduced.images, reduced.labels
    return SearchData(
        images[train_index].to(device),
        labels[train_index].to(device),
        images[val_index].to(device),
        labels[val_index].to(device),
    )


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


def policy_metrics(space: SearchSpace) -> dict[str, float]:
    """softmax(α) for every sub-policy, and β and m for every op slot, as flat metrics."""
    out = {policy_weight_metric(i): w for i, w in enumerate(space.weights().tolist())}
    for name, values in (("probability", space.probabilities()), ("magnitude", space.magnitudes())):
        for i, row in enumerate(values.tolist()):
            out.update({policy_slot_metric(name, i, j): v for j, v in enumerate(row)})
    return out


class SearchRun:
    """One seeded search; ``run()`` resumes from ``<run_dir>/checkpoint.pt`` and is a no-op once finished.

    The config is checked first (unknown keys, out-of-range values); ``run()`` holds the run folder's lock and
    refuses a folder whose run had other settings.
    """

    def __init__(self, cfg: DictConfig):
        validate(cfg)
        self.cfg = cfg
        self.identity = run_identity(cfg, IDENTITY_KEYS)
        self.run_dir = Path(cfg.run_dir)
        self.device = resolve_device(cfg.device)
        seed_everything(cfg.seed, deterministic=cfg.deterministic, threads=cfg.threads)
        self.generator = torch.Generator(self.device).manual_seed(cfg.seed)  # sub-policies, gates, crops, order
        recipe = cfg.search
        self.variant = get_variant(recipe.variant)
        self.epochs = recipe.epochs if cfg.scale.search_epochs is None else cfg.scale.search_epochs
        self.batch_size = (
            recipe.batch_size if cfg.scale.batch_size is None else min(recipe.batch_size, cfg.scale.batch_size)
        )
        self.cutout = recipe.cutout if recipe.cutout is not None else cfg.dataset.cutout
        classes = cfg.dataset.search_classes or cfg.dataset.num_classes  # reduced ImageNet: a 120-way head
        self.model = models.create(cfg.scale.model or cfg.model.name, classes, **cfg.model.kwargs).to(self.device)
        self.space = SearchSpace(
            recipe.ops_per_sub_policy, recipe.ordered, recipe.alpha_init, recipe.probability_init, recipe.magnitude_init
        ).to(self.device)
        self.estimator = estimators.create(
            cfg.estimator.name,
            num_categories=self.space.num_sub_policies,
            num_gates=self.space.probability.numel(),
            boundary="straight_through" if self.variant.project else "freeze",
            **self._estimator_kwargs(),
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
            self.variant,
            recipe.mode,
            recipe.sampling,
        )
        self.clock = DeviceClock(self.device)
        self.start_epoch, self.resumed_seconds = 0, 0.0

    def _estimator_kwargs(self) -> dict:
        options = OmegaConf.to_container(self.cfg.estimator)
        return {key: value for key, value in options.items() if key != "name" and value is not None}

    # -- checkpoints -------------------------------------------------------------------------------------------

    def _state(self, epoch: int) -> dict:
        return {
            "kind": "search",
            "identity": self.identity,
            "epoch": epoch,
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

    def _resume(self, state: dict | None = None) -> None:
        """Restore ``state`` (the checkpoint ``run()`` read, else the file's) into the run; nothing if there is none."""
        state = state or checkpoint.load(self.run_dir / "checkpoint.pt", kind="search")
        if state is None:
            return
        try:
            self.model.load_state_dict(state["model"])
            self.space.load_state_dict(state["space"])
            self.estimator.load_state_dict(state["estimator"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.optimizer.network_optimizer.load_state_dict(state["network_optimizer"])
            self.optimizer.policy_optimizer.load_state_dict(state["policy_optimizer"])
            self.generator.set_state(state["generator"])
            checkpoint.set_rng_state(state["rng"])
        except (RuntimeError, KeyError, ValueError, TypeError) as error:
            raise checkpoint.WrongCheckpointError(
                f"checkpoint {self.run_dir / 'checkpoint.pt'} does not fit this search (model "
                f"{self.cfg.scale.model or self.cfg.model.name}, estimator {self.cfg.estimator.name}): "
                f"{type(error).__name__}: {str(error).splitlines()[0]}. It was not overwritten: resume with the "
                f"settings it was written with, or choose another run_dir"
            ) from None
        self.start_epoch, self.resumed_seconds = state["epoch"] + 1, state["search_seconds"]
        log.info("resumed %s after epoch %d", self.run_dir, state["epoch"])

    # -- the loop ----------------------------------------------------------------------------------------------

    def _steps_per_epoch(self, split: SearchData) -> int:
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

    def _epoch(self, epoch: int, split: SearchData, tracker) -> dict[str, float]:
        moments, totals = _GradientMoments(), {"train_loss": 0.0, "val_loss": 0.0, "surrogate_loss": 0.0}
        train_batches = self._batches(len(split.train_labels))
        val_batches = self._batches(len(split.val_labels))
        progress = tqdm(range(len(train_batches)), desc=f"search epoch {epoch + 1}/{self.epochs}", leave=False)
        for step in progress:
            train_index, val_index = train_batches[step], val_batches[step % len(val_batches)]
            result = self.optimizer.step(
                self.train_batch(split, train_index), self.val_batch(split, val_index), self.generator
            )
            self._check_finite(result, epoch, step)
            moments.add(result)
            totals["train_loss"] += result.train_loss
            totals["val_loss"] += result.val_loss
            totals["surrogate_loss"] += result.surrogate_loss or 0.0
            progress.set_postfix(train=f"{result.train_loss:.3f}", val=f"{result.val_loss:.3f}")
            global_step = epoch * len(train_batches) + step
            if step % self.cfg.search.log_every == 0:
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

    def _check_finite(self, result: StepResult, epoch: int, step: int) -> None:
        if not (
            torch.isfinite(torch.tensor([result.train_loss, result.val_loss, result.policy_objective])).all()
            and torch.isfinite(self.space.alpha).all()
        ):
            raise FloatingPointError(
                f"non-finite loss or policy at epoch {epoch + 1}, step {step} (train {result.train_loss}, "
                f"val {result.val_loss}); the last good state is {self.run_dir / 'checkpoint.pt'}"
            )

    def _check_finite_state(self, where: str, metrics: Mapping[str, float] | None = None) -> None:
        """Refuse non-finite metrics, network weights or policy parameters before they are saved or exported."""
        refuse_non_finite(
            where,
            metrics or {},
            {"network": self.model, "policy": self.space, "estimator": self.estimator},
            f"Nothing of it was saved or exported; the last good state, {self.run_dir / 'checkpoint.pt'}, is kept. "
            f"Lower search.lr or search.policy_lr",
        )

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

    def run(self) -> dict:
        with run_lock(self.run_dir):
            return self._run()

    def _run(self) -> dict:
        state = checkpoint.load(self.run_dir / "checkpoint.pt", kind="search")
        check_identity(self.run_dir, state and state.get("identity"), self.identity)
        finished = finished_summary(self.run_dir)
        if finished is not None:
            log.info("%s is finished; nothing to do", self.run_dir)
            return finished
        save_hydra_record(self.run_dir, self.cfg)
        split = prepare_data(self.cfg, self.device)
        if self._steps_per_epoch(split) == 0:
            raise ValueError(
                f"the search-train split holds {len(split.train_labels)} images, fewer than one batch "
                f"of {self.batch_size}; raise scale.search_images or lower scale.batch_size"
            )
        self._resume(state)
        tags = {
            "app": "search",
            "estimator": self.cfg.estimator.name,
            "dataset": self.cfg.dataset.name,
            "model": self.cfg.scale.model or self.cfg.model.name,
            "scale": self.cfg.scale.name,
            "table": self.cfg.table,
            "seed": str(self.cfg.seed),
        }
        logger = self.cfg.logger
        with tracker_for(self.cfg, self.run_dir, tags, resume_epoch=self.start_epoch) as tracker:
            for epoch in range(self.start_epoch, self.epochs):
                with self.clock:
                    metrics = self._epoch(epoch, split, tracker)
                    self.scheduler.step()
                self._check_finite_state(f"after epoch {epoch + 1}", metrics)
                tracker.log_metrics(
                    {"epoch": epoch + 1, **metrics, **policy_metrics(self.space)},
                    step=(epoch + 1) * self._steps_per_epoch(split),
                )
                if (epoch + 1) % logger.heatmap_every == 0 or epoch + 1 == self.epochs:
                    self._log_heatmap(tracker, epoch)
                checkpoint.save_atomic(self._state(epoch), self.run_dir / "checkpoint.pt")
                log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in metrics.items()})
            summary = self._finish(tracker, split)
        return summary

    @property
    def search_seconds(self) -> float:
        """Device time of the search loop alone, across resumes; data preparation is outside the clock."""
        return self.resumed_seconds + self.clock.seconds

    def _finish(self, tracker, split: SearchData) -> dict:
        self._check_finite_state("at the policy export")
        policy = self.space.export(self.cfg.search.top_k, name=f"{self.cfg.name}-seed{self.cfg.seed}")
        policy_path = policy.save(self.run_dir / "policy.json")
        (self.run_dir / "policy_archive.json").write_text(json.dumps(policy.to_archive()))
        # FLOPs: one step counted (hypergradient runs a step's passes and updates nothing), times the steps; the
        # network part is the step's training forward and backward, the policy part the rest of the step.
        index = torch.arange(self.batch_size, device=self.device)
        train, val = self.train_batch(split, index), self.val_batch(split, index[: len(split.val_labels)])
        step_flops = flops.count_flops(self.optimizer.hypergradient, train, val, self.generator)
        network_flops = flops.training_step_flops(self.model, train[0].shape)
        steps = self.epochs * self._steps_per_epoch(split)
        validation_flops = flops.forward_flops(self.model, (len(split.val_labels), *val[0].shape[1:])) * self.epochs
        clock = self.clock
        cost = SearchCost(
            unit=clock.unit,
            device_name=clock.device_name,
            device_count=clock.device_count,
            num_threads=clock.num_threads,
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
            model=self.cfg.scale.model or self.cfg.model.name,
            scale=self.cfg.scale.name,
            epochs=self.epochs,
            estimator=self.cfg.estimator.name,
            variant=self.variant.name,
            policy=str(policy_path),
            search_seconds=self.search_seconds,
            cost=cost,
            top_overlap_with_other_seeds=top_overlap(self.run_dir, policy),
        ).to_dict()
        tracker.log_metrics(
            {
                "cost/search_device_hours": summary["cost"]["search_device_hours"],
                "cost/images_per_second": summary["cost"]["images_per_second"],
                "cost/flops": summary["cost"]["flops"],
            },
            step=self.epochs * self._steps_per_epoch(split),
        )
        tracker.log_artifact(policy_path)
        tracker.set_summary(summary)
        return {**summary, "status": "FINISHED"}


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
            theirs = {tuple(op[0] for op in s["operations"]) for s in json.loads(other.read_text())["sub_policies"]}
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            warnings.warn(
                f"{other} was skipped in the top-k overlap with other seeds: it cannot be read "
                f"({type(error).__name__}: {error}); this search goes on",
                RuntimeWarning,
            )
            continue
        overlaps[other.parent.name] = len(mine & theirs) / len(mine)
    return overlaps
