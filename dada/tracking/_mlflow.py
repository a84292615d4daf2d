"""MLflow backend: one `MlflowClient` with an explicit run id, so several trackers can share a process."""

import numbers
import re
import socket
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dada.tracking._backend import Backend, RunSpec
from dada.tracking._values import flatten

# Value caps of older MLflow versions (3.x allows 6000 and 8000); longer values are cut with a note.
MAX_PARAM_LENGTH = 500
MAX_TAG_LENGTH = 5000
_TRUNCATED = "...[truncated]"
# MLflow's limits per log_batch request: 1000 metrics, 100 params, 100 tags.
_BATCH_METRICS, _BATCH_PARAMS, _BATCH_TAGS = 1000, 100, 100
# Summary values that describe the file, not the run: tags, never metrics.
NOT_METRICS = ("schema_version",)
# Seconds to wait for a tracking server's TCP handshake; the client itself retries for minutes.
CONNECT_TIMEOUT = 2.0


def default_tracking_uri() -> str:
    """``sqlite:///<current directory>/mlruns.db``: a database store, never MLflow's deprecated file store."""
    return f"sqlite:///{Path.cwd().resolve() / 'mlruns.db'}"


def artifact_root(tracking_uri: str) -> str | None:
    """For a sqlite store, the ``mlartifacts`` folder next to the database; servers choose their own."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    database = Path(tracking_uri[len(prefix) :]).resolve()
    return (database.parent / "mlartifacts").as_uri()


def check_reachable(tracking_uri: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """For an ``http(s)://`` URI, one TCP connect to the server; raise ``ConnectionError`` if it fails in time."""
    parts = urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(
            f"MLflow server {tracking_uri} is unreachable ({error}); "
            f"start it, or set logger.mlflow_uri to another server or a sqlite:/// file"
        ) from None


def mlflow_key(name: str) -> str:
    """MLflow names allow letters, digits and ``_-./`` and spaces; any other character becomes ``_``."""
    return re.sub(r"[^\w./ -]", "_", name)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(_TRUNCATED)] + _TRUNCATED


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    return (items[start : start + size] for start in range(0, len(items), size))


def _experiment_id(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Get or create the experiment; a concurrent process creating it first is fine, a deleted one is restored."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


class MlflowBackend(Backend):
    """Config as params (dotted keys), caller tags and run info as tags, metrics, artifacts.

    Names pass through `mlflow_key`, so ``alpha[Rotate]`` is stored as ``alpha_Rotate_``.
    Summary values (nested ones under dotted keys) that are numbers become metrics at the last logged step;
    the others become ``summary.<key>`` tags. A resumed run (``spec.resume_ids["mlflow"]``) reopens that run
    when the store still holds it, and logs only the params it does not have yet (MLflow params never change).
    """

    name = "mlflow"

    def __init__(self, spec: RunSpec, tracking_uri: str | None = None):
        self.tracking_uri = tracking_uri or default_tracking_uri()
        check_reachable(self.tracking_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment_id = _experiment_id(self.client, spec.experiment, artifact_root(self.tracking_uri))
        tags = {**spec.tags, **spec.run_info, "mlflow.source.git.commit": spec.run_info.get("git_commit", "unknown")}
        previous = self._reopen(spec.resume_ids.get("mlflow"), experiment_id)
        self.run_id = (
            previous.info.run_id
            if previous
            else self.client.create_run(experiment_id, run_name=spec.run_name).info.run_id
        )
        logged = previous.data.params if previous else {}
        params = [param for param in self._params(spec.config) if param.key not in logged]
        self._log_batch(params=params, tags=self._tags(tags))
        self.system_metrics = _system_metrics(self.run_id, self.tracking_uri, resume=previous is not None)

    def __repr__(self) -> str:
        return f"MlflowBackend(tracking_uri={self.tracking_uri!r}, run_id={self.run_id!r})"

    @property
    def info(self) -> dict[str, str]:
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id}

    def _reopen(self, run_id: str | None, experiment_id: str):
        """The run ``run_id``, set RUNNING again, if this store holds it, live, in the experiment; else None."""
        if run_id is None:
            return None
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return None
        if run.info.lifecycle_stage != "active" or run.info.experiment_id != experiment_id:
            return None
        self.client.update_run(run_id, status="RUNNING")
        return run

    @staticmethod
    def _params(config: Mapping[str, Any]) -> list[Param]:
        return [Param(mlflow_key(key), _truncate(str(value), MAX_PARAM_LENGTH)) for key, value in flatten(config)]

    @staticmethod
    def _tags(tags: Mapping[str, Any]) -> list[RunTag]:
        return [RunTag(mlflow_key(key), _truncate(str(value), MAX_TAG_LENGTH)) for key, value in tags.items()]

    def _log_batch(self, metrics: Sequence = (), params: Sequence = (), tags: Sequence = ()) -> None:
        for batch in _chunks(metrics, _BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=batch)
        for batch in _chunks(params, _BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=batch)
        for batch in _chunks(tags, _BATCH_TAGS):
            self.client.log_batch(self.run_id, tags=batch)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        timestamp = int(time.time() * 1000)
        self._log_batch(metrics=[Metric(mlflow_key(key), value, timestamp, step) for key, value in metrics.items()])

    def log_artifact(self, path: Path, artifact_dir: str | None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_dir)

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        """Appended to the table artifact ``tables/<name>.json`` (MLflow joins the rows of repeated calls)."""
        columns = {key: [row[key] for row in rows] for key in rows[0]} if rows else {}
        self.client.log_table(
            self.run_id, data={**columns, "step": [step] * len(rows)}, artifact_file=f"tables/{name}.json"
        )

    def set_summary(self, summary: Mapping[str, Any], step: int) -> None:
        flat = {key: value for key, value in flatten(summary) if value is not None}  # None: not measured
        numeric = {key: float(value) for key, value in flat.items() if _is_number(value) and key not in NOT_METRICS}
        self.log_metrics(numeric, step)
        self._log_batch(tags=self._tags({f"summary.{key}": value for key, value in flat.items() if key not in numeric}))

    def close(self, status: str) -> None:
        if self.system_metrics is not None:
            self.system_metrics.finish()
        self.client.set_terminated(self.run_id, status)


def _system_metrics(run_id: str, tracking_uri: str, resume: bool):
    """MLflow's CPU, memory, disk, network and GPU sampler (``system/*`` metrics, every 10 s) for this run; None
    without psutil, which it needs."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
    except ImportError:
        return None
    monitor = SystemMetricsMonitor(run_id, resume_logging=resume, tracking_uri=tracking_uri)
    monitor.start()
    return monitor
