"""One run's life, shared by the search, the evaluation and the detection.

`RunLifecycle.run` holds the run folder's lock, refuses a folder whose run had other settings, returns a finished
run's summary untouched, resumes from ``checkpoint.pt``, runs the epochs (each refused when non-finite, before it
is saved), writes the summary, closes the tracker and prints the end-of-run line. An app says what differs: its
data and model (`prepare`), an epoch (`train_epoch`), what it logs (`log_epoch`), its checkpoint (`state`,
`restore`) and its summary (`finish`).
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import torch
from omegaconf import DictConfig

from dada import checkpoint
from dada.files import UnreadableFileError, read_json
from dada.layout import RunFolder
from dada.runtime import check_identity, refuse_non_finite, run_identity, run_lock, save_hydra_record
from dada.scale import apply_scale, hydra_overrides, scale_name
from dada.tracking import tracker_for

log = logging.getLogger(__name__)


class NullTracker:
    """What logs nothing: ranks other than 0, and analyses that run a search's epochs outside a run."""

    def log_metrics(self, metrics: Mapping[str, float], step: int, run_folder_only=None) -> None:
        pass

    def log_table(self, name: str, rows, step: int) -> None:
        pass

    def log_figure(self, figure, name: str) -> None:
        pass

    def log_artifact(self, path) -> None:
        pass

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        pass


class RunLifecycle:
    """The part of a search, an evaluation and a detection that is the same: see the module's docstring."""

    app: ClassVar[str]  # search | train | detect: the checkpoint's kind and the tracker's app tag
    noun: ClassVar[str]  # what the messages call the run
    identity_keys: ClassVar[tuple[str, ...]]  # the settings a resume or a re-run must keep
    lower: ClassVar[str]  # what to lower when the run diverges
    rename: ClassVar[str] = "tag=..."  # how to give a run with other settings its own folder
    is_main: bool = True  # the process that holds the lock, logs and saves (rank 0)
    epochs: int

    def __init__(self, cfg: DictConfig, validate: Callable[[DictConfig], None]):
        validate(cfg)  # the values as given, so that a refusal quotes what was typed
        apply_scale(cfg, self.app, hydra_overrides())
        validate(cfg)  # and as they run
        self.cfg = cfg
        self.folder = RunFolder(cfg.run_dir)
        self.run_dir = self.folder.path
        self.identity = run_identity(cfg, self.identity_keys)
        self.start_epoch = 0

    @property
    def checkpoint_path(self) -> Path:
        return self.folder.checkpoint

    # -- what each app says (and ``epochs``, the run's length) ------------------------------------------------------

    def prepare(self) -> None:
        """Data, model and optimisers: what the epochs need, once the folder is accepted."""
        raise NotImplementedError

    def train_epoch(self, epoch: int, tracker) -> dict[str, float]:
        raise NotImplementedError

    def keep(self, metrics: dict[str, float]) -> None:
        """Add an epoch's metrics to what the checkpoint holds (its history), if the app keeps them."""

    def log_epoch(self, epoch: int, metrics: dict[str, float], tracker) -> None:
        raise NotImplementedError

    def checkpoint_state(self) -> dict[str, Any]:
        """What an exact resume needs besides the epoch: weights, optimisers, random states, history."""
        raise NotImplementedError

    def state(self, epoch: int) -> dict[str, Any]:
        """The checkpoint after epoch ``epoch`` (from 0): its kind, the settings it was written with, the app's."""
        return {"kind": self.app, "epoch": epoch, "identity": self.identity, **self.checkpoint_state()}

    def check_resumable(self, state: dict[str, Any]) -> None:
        """Refuse a checkpoint the run cannot continue, before anything is restored."""

    def restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def describe(self) -> str:
        """The settings a checkpoint must fit, for the messages."""
        return f"model {self.cfg.model.name}"

    def finite_modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def tags(self) -> dict[str, str]:
        """The tracker's tags besides app, data set, scale, table and seed."""
        return {"model": self.cfg.model.name}

    def finish(self, tracker) -> dict[str, Any]:
        """The summary, after the last epoch; the lifecycle hands it to the tracker."""
        raise NotImplementedError

    def result(self, summary: Mapping[str, Any]) -> str:
        """The end-of-run line's result: the final error, the policy, the AP."""
        raise NotImplementedError

    # -- the lifecycle ---------------------------------------------------------------------------------------------

    def run(self) -> dict:
        with run_lock(self.run_dir) if self.is_main else contextlib.nullcontext():
            return self._run()

    def _run(self) -> dict:
        state = checkpoint.load(self.checkpoint_path, kind=self.app)
        check_identity(self.run_dir, state and state.get("identity"), self.identity, rename=self.rename)
        finished = self.folder.finished_summary()
        if finished is not None:
            log.info("%s is finished; nothing to do", self.run_dir)
            return finished
        if self.is_main:
            save_hydra_record(self.run_dir, self.cfg)
        self.prepare()
        self.resume(state)
        with self.tracker() as tracker:
            for epoch in range(self.start_epoch, self.epochs):
                metrics = self.train_epoch(epoch, tracker)
                self.check_finite(f"after epoch {epoch + 1}", metrics)
                self.keep(metrics)
                state = self.state(epoch)  # every rank: gathering the ranks' random states is collective
                if self.is_main:  # the record first: a kill between the two re-runs the epoch, never loses it
                    self.log_epoch(epoch, metrics, tracker)
                    checkpoint.save_atomic(state, self.checkpoint_path)
                log.info("epoch %d: %s", epoch + 1, {key: round(value, 4) for key, value in metrics.items()})
            summary = self.finish(tracker)
            tracker.set_summary(summary)
        if self.is_main:
            print(self.end_line(summary), flush=True)
        return {"status": "FINISHED", **summary}

    def resume(self, state: dict[str, Any] | None) -> None:
        """Restore the checkpoint ``run`` read into the run; nothing if there is none."""
        if state is None:
            return
        self.check_resumable(state)
        try:
            self.restore(state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as error:
            raise checkpoint.WrongCheckpointError(
                f"checkpoint {self.checkpoint_path} does not fit this {self.noun} ({self.describe()}): "
                f"{type(error).__name__}: {str(error).splitlines()[0]}. It was not overwritten: resume with the "
                f"settings it was written with, or choose another run_dir"
            ) from None
        self.start_epoch = state["epoch"] + 1
        log.info("resumed %s after epoch %d", self.run_dir, self.start_epoch)

    def check_finite(self, where: str, metrics: Mapping[str, float] | None = None) -> None:
        """Refuse non-finite metrics or weights before they reach a checkpoint, an export or a summary."""
        refuse_non_finite(
            where,
            metrics or {},
            self.finite_modules(),
            f"Nothing of it was saved or exported; the last good checkpoint, {self.checkpoint_path}, is kept. "
            f"Lower {self.lower}",
        )

    def optimizer_step(self, loss: torch.Tensor, parameters, grad_clip: float, epoch: int, step: int) -> float:
        """Refuse a non-finite training loss (the last good checkpoint is kept), else back-propagate, clip the
        gradients' norm to ``grad_clip`` (0: no clipping) and step ``self.optimizer``; return the loss."""
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(
                f"non-finite training loss ({value}) at epoch {epoch + 1}, step {step + 1}; the last good "
                f"checkpoint, {self.checkpoint_path}, is kept. Lower {self.lower}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
        self.optimizer.step()
        return value

    def tracker(self):
        """The run's tracker (``cfg.logger``); a `NullTracker` on ranks other than 0."""
        if not self.is_main:
            return contextlib.nullcontext(NullTracker())
        tags = {
            "app": self.app,
            "dataset": self.cfg.dataset.name,
            **self.tags(),
            "scale": scale_name(self.cfg),
            "table": self.cfg.table,
            "seed": str(self.cfg.seed),
        }
        return tracker_for(self.cfg, self.run_dir, tags, resume_epoch=self.start_epoch)

    def end_line(self, summary: Mapping[str, Any]) -> str:
        """What a finished run prints last: its folder, its result, its cost and where its tracker's record is."""
        cost = summary.get("cost") or {}
        hours = cost.get("search_device_hours", cost.get("eval_device_hours"))
        spent = f"; cost {hours:.4g} {cost.get('unit', 'device-hours')}" if hours is not None else ""
        return f"{self.noun} finished: {self.run_dir}: {self.result(summary)}{spent}{self._tracker_hint()}"

    def _tracker_hint(self) -> str:
        """The MLflow run to open, or the ``wandb sync`` command of an offline W&B run, from the tracker's ids."""
        ids_file = self.run_dir / "tracking_ids.json"
        try:
            ids = read_json(ids_file, "tracker ids") if ids_file.is_file() else {}
        except UnreadableFileError:
            return ""
        hints = []
        if "mlflow" in ids:
            mlflow = ids["mlflow"]
            hints.append(f"MLflow run {mlflow['run_id']} in {mlflow.get('tracking_uri')} (make mlflow-ui)")
        if "wandb" in ids and self.cfg.logger.wandb_mode == "offline":
            hints.append(f"wandb sync {ids['wandb'].get('dir', self.run_dir / 'wandb')}")
        return "; " + "; ".join(hints) if hints else ""
