"""The run folder: ``metrics.jsonl`` (the source of truth), ``config.yaml``, ``run_info.json``, ``summary.json``."""

import json
import time
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import yaml

from dada.files import MiB, open_append, read_bytes, refuse_link, write_atomic
from dada.tracking._backend import Backend, RunSpec

METRICS_CAP = 1024 * MiB  # a paper search logs a few MiB


class JsonlBackend(Backend):
    """Writes the run folder; unlike the other backends its errors are raised, never swallowed.

    ``metrics.jsonl`` holds one JSON object per `log_metrics` call, ``{"step": .., "time": .., <metrics>}``,
    written and flushed line by line and opened for appending, so a resumed run continues it; non-finite
    values appear as ``NaN``/``Infinity``, which Python's ``json`` and pandas read back.
    ``summary.json`` appears at `close` only, so it marks a run that ended (its ``status`` says how).
    A resumed run (``spec.resume_epoch`` set) first cuts ``metrics.jsonl`` after the record of that epoch: what
    follows came from work the resume redoes, so each record appears once, as in an uninterrupted run.
    """

    name = "jsonl"

    def __init__(self, spec: RunSpec):
        self.run_dir = spec.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_text("config.yaml", yaml.safe_dump(dict(spec.config), sort_keys=False))
        self.metrics_path = self.run_dir / "metrics.jsonl"
        if spec.resume_epoch is not None:
            self._cut_after_epoch(spec.resume_epoch)
        self._metrics_file = open_append(self.path("metrics.jsonl"))
        self._summary: dict[str, Any] = {}

    def _cut_after_epoch(self, epoch: int) -> None:
        """Keep the records up to the last one of an epoch <= ``epoch``; a half-written line ends the kept part."""
        if not self.metrics_path.exists():
            return
        lines = read_bytes(self.path("metrics.jsonl"), METRICS_CAP, "metrics log").decode(errors="replace")
        lines = lines.splitlines(keepends=True)
        kept = 0
        for index, line in enumerate(lines):
            try:
                record = json.loads(line)
            except ValueError:
                break
            if "epoch" in record and record["epoch"] <= epoch:
                kept = index + 1
        self.write_text("metrics.jsonl", "".join(lines[:kept]))

    def path(self, name: str) -> Path:
        """``run_dir / name`` for a relative name that stays inside the run folder; parents are created, and a link at
        the name is refused (nothing in the run folder is written through one)."""
        relative = PurePosixPath(name)
        if not name or relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"file names must be relative paths inside the run folder, got {name!r}")
        path = self.run_dir
        for part in relative.parts:  # a linked sub-folder would lead out of the run folder as well
            path = path / part
            refuse_link(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def write_text(self, name: str, text: str) -> Path:
        """Write a file in the run folder atomically (a reader never sees half of it)."""
        return write_atomic(self.path(name), text)

    def write_json(self, name: str, data: Mapping[str, Any]) -> Path:
        return self.write_text(name, json.dumps(data, indent=2) + "\n")

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        record = {"step": step, "time": round(time.time(), 3), **metrics}
        self._metrics_file.write(json.dumps(record) + "\n")
        self._metrics_file.flush()

    def set_summary(self, summary: Mapping[str, Any], step: int) -> None:
        self._summary.update(summary)

    def close(self, status: str) -> None:
        self._metrics_file.close()
        self.write_json("summary.json", {"status": status, **self._summary})
