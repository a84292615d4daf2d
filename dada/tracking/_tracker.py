"""`Tracker`: one logging interface fanned out to the run folder (always) and to MLflow and W&B (on request)."""

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from dada.tracking._backend import Backend, RunSpec
from dada.tracking._jsonl import JsonlBackend
from dada.tracking._system import collect_run_info
from dada.tracking._values import metric_values, plain_data
from dada.tracking.lineage import IDS_FILE, lineage_tags, searched_policy

BACKENDS = ("jsonl", "mlflow", "wandb")
WANDB_MODES = ("offline", "online")
STATUSES = ("FINISHED", "FAILED", "KILLED")


class TrackingWarning(RuntimeWarning):
    """An optional backend (MLflow, W&B) failed and was switched off; the run and its run folder go on."""


class Tracker:
    """Sends every record to the run folder first, then to each optional backend.

    The run folder (`JsonlBackend`) is the source of truth: its errors are raised. An optional backend
    that raises is warned about once (`TrackingWarning`), closed as FAILED, and skipped from then on.
    Use it as a context manager, or call `close` yourself; the run is FAILED when the block raises.
    """

    def __init__(self, local: JsonlBackend, backends: Sequence[Backend] = ()):
        self._local = local
        self._backends = list(backends)
        self._last_step = 0
        self._pending: list[tuple[dict[str, float], int]] = []  # dashboard records waiting for their epoch's
        self.closed = False

    def __repr__(self) -> str:
        return f"Tracker(run_dir={str(self.run_dir)!r}, backends={self.backends!r}, closed={self.closed})"

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close("FINISHED")
        else:
            self.close("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")

    @property
    def run_dir(self) -> Path:
        return self._local.run_dir

    @property
    def backends(self) -> list[str]:
        """Names of the backends still receiving records, the run folder's ``jsonl`` first."""
        return [self._local.name] + [backend.name for backend in self._backends]

    def _send(self, call: Callable[[Backend], None], where: str) -> None:
        """``call`` on the run folder (errors raise), then on every optional backend still on."""
        self._check_open()
        call(self._local)
        self._fan_out(call, where)

    def _fan_out(self, call: Callable[[Backend], None], where: str) -> None:
        for backend in tuple(self._backends):
            try:
                call(backend)
            except Exception as error:
                self._switch_off(backend, where, error)

    def _switch_off(self, backend: Backend, where: str, error: Exception) -> None:
        self._backends.remove(backend)
        warnings.warn(
            f"{backend.name} tracking failed in {where} and is off for the rest of this run: {error!r}",
            TrackingWarning,
        )
        with contextlib.suppress(Exception):
            backend.close("FAILED")

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError(f"{self!r} is closed; open a new tracker to log more")

    def _artifact_dir(self, path: Path) -> str | None:
        """A file inside the run folder keeps its sub-folder (``figures/``) in the backends' artifact stores."""
        if not path.is_relative_to(self.run_dir):
            return None
        parent = path.relative_to(self.run_dir).parent.as_posix()
        return None if parent == "." else parent

    def log_metrics(
        self, metrics: Mapping[str, Any], step: int, run_folder_only: Mapping[str, Any] | None = None
    ) -> None:
        """Log real numbers (floats, ints, 0-d tensors, NumPy scalars) at an integer step.

        ``run_folder_only`` joins the same ``metrics.jsonl`` record but reaches no dashboard: numbers kept for the
        analysis that would only clutter MLflow and W&B (the search's 525 numbered policy values).
        """
        values, step = metric_values(metrics), int(step)
        local = {**values, **metric_values(run_folder_only or {})}
        self._last_step = step
        self._check_open()
        self._local.log_metrics(local, step)
        self._pending.append((values, step))
        if "epoch" in values:
            self._flush()

    def _flush(self) -> None:
        """Send the held records to the dashboards. Records wait for their epoch's record (the one with ``epoch``),
        after which the app saves its checkpoint: a run killed mid-epoch sent none of that epoch's step records,
        so a resume, which repeats the epoch, gives MLflow and W&B no second point at the same step."""
        pending, self._pending = self._pending, []
        for values, step in pending:
            self._fan_out(lambda backend: backend.log_metrics(values, step), "log_metrics()")

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]], step: int) -> Path:
        """A table (rows of the same columns): ``<run_dir>/tables/<name>.json`` holds the latest; MLflow appends the
        rows to its table artifact ``tables/<name>.json`` (the run's Artifacts tab); W&B logs a ``wandb.Table``."""
        self._flush()
        rows = [plain_data(row) for row in rows]
        path = self._local.write_json(f"tables/{name}.json", {"step": int(step), "rows": rows})
        self._fan_out(lambda backend: backend.log_table(name, rows, int(step)), "log_table()")
        return path

    def log_artifact(self, path: "str | os.PathLike") -> Path:
        """Hand an existing file to the backends; files inside the run folder keep their sub-folder."""
        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"log_artifact needs an existing file, got {str(path)!r}")
        artifact_dir = self._artifact_dir(path)
        self._send(lambda backend: backend.log_artifact(path, artifact_dir), "log_artifact()")
        return path

    def log_text(self, name: str, text: str) -> Path:
        """Write ``<run_dir>/<name>`` (a relative path) and log it as an artifact."""
        self._check_open()
        return self.log_artifact(self._local.write_text(name, text))

    def log_dict(self, name: str, data: Mapping[str, Any]) -> Path:
        """Write ``data`` as ``<run_dir>/<name>`` JSON (".json" added when missing) and log it as an artifact."""
        if not name.endswith(".json"):
            name = f"{name}.json"
        return self.log_text(name, json.dumps(plain_data(data), indent=2) + "\n")

    def log_figure(
        self, figure: Any, name: str, step: int | None = None, formats: Iterable[str] = ("png", "pdf")
    ) -> Path:
        """Save a Matplotlib figure as ``<run_dir>/figures/<name>.<format>`` and log every file.

        PNGs are logged as images (a W&B media panel), other formats as artifacts. Returns the first file.
        The figure is left open; closing it is the caller's call.
        """
        self._check_open()
        self._flush()
        paths = [self._local.path(f"figures/{name}.{extension}") for extension in formats]
        if not paths:
            raise ValueError("log_figure needs at least one format, e.g. formats=('png', 'pdf')")
        for path in paths:
            figure.savefig(path, bbox_inches="tight")
        for path in paths:
            if path.suffix == ".png":
                self._send(lambda backend: backend.log_image(path, f"figures/{name}", "figures", step), "log_image()")
            else:
                self._send(lambda backend: backend.log_artifact(path, "figures"), "log_artifact()")
        return paths[0]

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        """Merge final values into the run's summary (``summary.json`` at close, MLflow metrics/tags, W&B summary)."""
        if not isinstance(summary, Mapping):
            raise TypeError(f"set_summary takes a mapping of names to values, got {type(summary).__name__}")
        summary = plain_data(summary)
        if "status" in summary:
            raise ValueError("summary key 'status' is reserved: close(status=...) sets it")
        step = self._last_step
        self._flush()
        self._send(lambda backend: backend.set_summary(summary, step), "set_summary()")

    def close(self, status: str = "FINISHED") -> None:
        """End the run: write ``summary.json`` with ``status``, hand it to the backends, close them. Idempotent."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}; choose one of {STATUSES}")
        if self.closed:
            return
        if status == "KILLED":  # interrupted mid-epoch: the resume repeats the epoch, so its records are not sent
            self._pending.clear()
        self._flush()  # a failed run shows its records up to the failure
        self._local.close(status)
        self.closed = True

        def finish(backend: Backend) -> None:
            for name in ("summary.json", "config.yaml", "metrics.jsonl"):
                backend.log_artifact(self._local.path(name), None)
            backend.close(status)

        self._fan_out(finish, "close()")


def _open_backend(name: str, spec: RunSpec, mlflow_uri: str | None, wandb_mode: str, wandb_project: str) -> Backend:
    """Import a backend's library only when it is asked for, so ``import dada.tracking`` stays cheap."""
    if name == "mlflow":
        from dada.tracking._mlflow import MlflowBackend

        return MlflowBackend(spec, tracking_uri=mlflow_uri)
    from dada.tracking._wandb import WandbBackend

    return WandbBackend(spec, mode=wandb_mode, project=wandb_project)


def _backend_names(backends: "str | Iterable[str]") -> list[str]:
    names = [backends] if isinstance(backends, str) else list(backends)
    unknown = [name for name in names if name not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown tracking backend(s) {unknown}; choose from {BACKENDS}")
    return [name for name in dict.fromkeys(names) if name != "jsonl"]


def create_tracker(
    backends: "str | Iterable[str]" = ("jsonl",),
    *,
    run_dir: "str | os.PathLike",
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    experiment: str = "dada",
    run_name: str | None = None,
    mlflow_uri: str | None = None,
    wandb_mode: str = "offline",
    wandb_project: str = "dada",
    resume_epoch: int | None = None,
    used_policy: "str | os.PathLike | None" = None,
) -> Tracker:
    """Open a run in ``run_dir`` (always, it holds ``metrics.jsonl``) and in each named backend.

    Writes ``config.yaml`` (``config`` as plain YAML; OmegaConf configs are resolved) and ``run_info.json``
    (git commit, versions, device, and each backend's run id). ``tags`` go to MLflow tags and W&B
    ``key:value`` tags. A backend that cannot start is warned about (`TrackingWarning`) and left out.
    ``mlflow_uri`` defaults to ``sqlite:///<cwd>/mlruns.db``; ``wandb_mode`` is offline or online.

    ``resume_epoch`` continues a run killed or failed after that epoch (0: before its first): ``metrics.jsonl`` is
    cut after that epoch's record, and the MLflow and W&B runs named in ``<run_dir>/tracking_ids.json`` (written
    whenever a backend opens) are reopened instead of new ones started. ``used_policy``: the searched ``policy.json``
    the run trains with, which W&B records as the input artifact of the run.
    """
    names = _backend_names(backends)
    if wandb_mode not in WANDB_MODES:
        raise ValueError(f"unknown W&B mode {wandb_mode!r}; choose one of {WANDB_MODES}")
    run_dir = Path(run_dir).resolve()
    run_info = {**collect_run_info(), "run_dir": str(run_dir)}
    known_ids = _known_ids(run_dir / IDS_FILE) if resume_epoch is not None else {}
    spec = RunSpec(
        run_dir=run_dir,
        config=plain_data(config or {}),
        tags={str(key): str(value) for key, value in (tags or {}).items()},
        run_info=run_info,
        experiment=experiment,
        run_name=run_name,
        resume_epoch=resume_epoch,
        used_policy=Path(used_policy) if used_policy is not None else None,
        resume_ids={
            name: known_ids[name]["run_id"]
            for name in names
            if name in known_ids and _same_store(name, known_ids[name], mlflow_uri)
        },
    )
    local = JsonlBackend(spec)
    opened = []
    for name in names:
        try:
            opened.append(_open_backend(name, spec, mlflow_uri, wandb_mode, wandb_project))
        except Exception as error:
            warnings.warn(f"{name} tracking could not start and is off for this run: {error!r}", TrackingWarning)
    backends_info = {backend.name: backend.info for backend in opened}
    local.write_json("run_info.json", {**run_info, "backends": backends_info})
    if backends_info:
        local.write_json(IDS_FILE, {**known_ids, **backends_info})
    return Tracker(local, opened)


def tracker_for(
    cfg: Any, run_dir: "str | os.PathLike", tags: Mapping[str, Any], resume_epoch: int | None = None
) -> Tracker:
    """The tracker of one app run: ``cfg.logger`` (conf/logger/) names the backends, the MLflow store, the W&B mode
    and project and the experiment; the run is named ``<cfg.name>/seed<cfg.seed>``, and ``config.yaml`` holds ``cfg``,
    resolved. The tags get the run's experiment and, for a searched policy, its search's run ids and estimator
    (`lineage_tags`). ``resume_epoch`` as in `create_tracker`."""
    logger = cfg.logger
    return create_tracker(
        list(logger.backends),
        run_dir=run_dir,
        config=cfg,
        tags={**lineage_tags(cfg), **tags},
        used_policy=searched_policy(cfg),
        experiment=logger.experiment,
        run_name=f"{cfg.name}/seed{cfg.seed}",
        mlflow_uri=logger.mlflow_uri,
        wandb_mode=logger.wandb_mode,
        wandb_project=logger.wandb_project,
        resume_epoch=resume_epoch,
    )


def _known_ids(path: Path) -> dict[str, dict[str, str]]:
    """The backends' run ids a previous attempt recorded; an unreadable file is warned about and ignored."""
    if not path.is_file():
        return {}
    try:
        known = json.loads(path.read_text())
        return {
            name: ids for name, ids in known.items() if isinstance(ids, dict) and isinstance(ids.get("run_id"), str)
        }
    except (OSError, ValueError, AttributeError) as error:
        warnings.warn(f"{path} cannot be read ({error!r}); MLflow and W&B start new runs", TrackingWarning)
        return {}


def _same_store(name: str, ids: Mapping[str, str], mlflow_uri: str | None) -> bool:
    """An MLflow run id is reused only in the store that holds it."""
    if name != "mlflow":
        return True
    from dada.tracking._mlflow import default_tracking_uri

    return ids.get("tracking_uri") == (mlflow_uri or default_tracking_uri())
