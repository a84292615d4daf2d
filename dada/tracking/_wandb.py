"""Weights & Biases backend; offline by default, so it needs neither a network nor an API key."""

import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import wandb

from dada.tracking._backend import Backend, RunSpec

MAX_TAG_LENGTH = 64  # W&B rejects tags longer than 64 characters.


class WandbBackend(Backend):
    """Config (with the run info under ``run_info``), ``key:value`` tags, metrics, figures as images, files.

    The group is the run layout's experiment and the job type the app (search, train, detect); an evaluation on a
    searched policy uses that search's policy artifact when online (offline W&B refuses it: the
    ``search.wandb_run_id`` tag links them). Offline runs land in ``<run_dir>/wandb/offline-run-*``,
    to be uploaded later with ``wandb sync``. W&B needs steps that never decrease within a run.
    A resumed run (``spec.resume_ids["wandb"]``) continues under the same run id (``resume="allow"``).
    """

    name = "wandb"

    def __init__(self, spec: RunSpec, mode: str = "offline", project: str = "dada"):
        self.run_dir = spec.run_dir
        tags = [f"{key}:{value}"[:MAX_TAG_LENGTH] for key, value in spec.tags.items()]
        # reinit="create_new" (W&B >= 0.19.10) lets several trackers hold runs in one process.
        settings = wandb.Settings(silent=True, console="off", disable_git=True, reinit="create_new")
        self.run = wandb.init(
            mode=mode,
            dir=str(spec.run_dir),
            project=project,
            group=spec.tags.get("experiment", spec.experiment),  # the run layout's experiment, e.g. search_cifar10
            job_type=spec.tags.get("app"),  # search, train or detect
            name=spec.run_name,
            config={**spec.config, "run_info": dict(spec.run_info)},
            tags=tags,
            settings=settings,
            id=spec.resume_ids.get("wandb"),
            resume="allow" if "wandb" in spec.resume_ids else None,
        )

        if spec.used_policy is not None and mode == "online":  # offline W&B refuses use_artifact; the tags stay
            search_id = spec.tags.get("search.wandb_run_id", "unknown")
            self.run.use_artifact(_policy_artifact(spec.used_policy, search_id))

    def __repr__(self) -> str:
        return f"WandbBackend(project={self.run.project!r}, run_id={self.run.id!r})"

    @property
    def info(self) -> dict[str, str]:
        return {"run_id": self.run.id, "dir": str(Path(self.run.dir).parent)}

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_artifact(self, path: Path, artifact_dir: str | None) -> None:
        """Copied into the run's ``files/`` folder, which W&B uploads at the end (or at ``wandb sync``); a search's
        ``policy.json`` is also logged as the artifact ``policy-<run id>``, which its evaluations use."""
        target = Path(self.run.dir, artifact_dir or "", path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        if path.name == "policy.json" and self.run.job_type == "search":
            self.run.log_artifact(_policy_artifact(path, self.run.id))

    def log_table(self, name: str, rows: Sequence[Mapping[str, Any]], step: int) -> None:
        if rows:
            table = wandb.Table(columns=list(rows[0]), data=[list(row.values()) for row in rows])
            self.run.log({f"tables/{name}": table}, step=step)

    def log_image(self, path: Path, key: str, artifact_dir: str | None, step: int | None) -> None:
        """Shown as a W&B image; without a step it joins the current step instead of starting a new one."""
        image = {key: wandb.Image(str(path))}
        if step is None:
            self.run.log(image, commit=False)
        else:
            self.run.log(image, step=step)

    def set_summary(self, summary: Mapping[str, Any], step: int) -> None:
        self.run.summary.update(dict(summary))

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)


def _policy_artifact(path: Path, search_run_id: str) -> "wandb.Artifact":
    """The searched policy as a W&B artifact; the search logs it and its evaluations use the same name and content,
    so W&B joins them into one artifact version with the search as producer and the evaluations as consumers."""
    artifact = wandb.Artifact(f"policy-{search_run_id}", type="policy")
    artifact.add_file(str(path), name="policy.json")
    return artifact
