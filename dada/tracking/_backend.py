"""What every tracking backend receives (`RunSpec`) and the methods it answers (`Backend`)."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class RunSpec:
    """One run as the backends see it: where it lives locally, what it was asked to do, and how to name it."""

    run_dir: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    run_info: Mapping[str, str] = field(default_factory=dict)
    experiment: str = "dada"
    run_name: str | None = None
    resume_epoch: int | None = None  # continue the run after this epoch (0: from its start); None: a new run
    resume_ids: Mapping[str, str] = field(default_factory=dict)  # backend name -> the run id to continue
    used_policy: Path | None = None  # a search's policy.json that the run trains with (its input artifact)


class Backend:
    """One destination for a run's records. The defaults do nothing, so a backend overrides only what it stores.

    `Tracker` validates every value before a backend sees it: metrics arrive as ``dict[str, float]``,
    summaries as JSON-ready dicts, artifacts as paths to existing files.
    """

    name = "backend"

    @property
    def info(self) -> dict[str, str]:
        """Identifiers of this run inside the backend (run id, folder), written to ``run_info.json``."""
        return {}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: Path, artifact_dir: str | None) -> None:
        pass

    def log_image(self, path: Path, key: str, artifact_dir: str | None, step: int | None) -> None:
        """An image file (a saved figure); backends without an image view store it as an artifact."""
        self.log_artifact(path, artifact_dir)

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        """Rows of the same columns; backends without a table view skip them (the run folder keeps them)."""

    def set_summary(self, summary: Mapping[str, Any], step: int) -> None:
        pass

    def close(self, status: str) -> None:
        pass
