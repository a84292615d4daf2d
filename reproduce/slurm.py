"""``--launcher slurm``: one Slurm job per run through submitit, each evaluation after its search (``afterok``).

A job's resources come from ``conf/launcher/slurm.yaml``. The job ids are kept in
``<runs root>/<scale>/.slurm_jobs.json`` (``python -m reproduce status`` reads them), submitit's files in
``<runs root>/<scale>/.slurm/<job id>/``. A job runs the local runner's command (:func:`reproduce.runner.launch`),
so the apps' own checkpoint and resume carry a run over a preemption or a time-out: submitit requeues the job and
the app resumes from its ``checkpoint.pt``."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import submitit
import yaml

from dada.config import CONF_DIR
from dada.files import UnreadableFileError, read_json, write_atomic
from dada.runtime import finished_summary
from reproduce.plan import Run, missing_data
from reproduce.runner import WAITING, Outcome, launch, log_tail, skip_reason

ROOT = Path(__file__).resolve().parents[1]
CONFIG = CONF_DIR / "launcher" / "slurm.yaml"
JOBS_FILE = ".slurm_jobs.json"
LOGS = ".slurm"
MATCH_KEYS = ("app", "dataset", "experiment", "scale")
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
NEVER = "DependencyNeverSatisfied"  # squeue's reason for a job whose search failed: it would wait for ever


@dataclass(frozen=True)
class Resources:
    """What one run's job asks Slurm for."""

    gpus: int
    cpus: int
    mem_gb: float
    time_min: int


def load_config(path: Path = CONFIG) -> dict:
    return yaml.safe_load(Path(path).read_text())


def resources(run: Run, config: dict) -> Resources:
    """The rules of ``config["resources"]`` that match ``run`` (on app, dataset, experiment, scale), in order."""
    values: dict = {}
    for rule in config["resources"]:
        if all(getattr(run, key) == rule[key] for key in MATCH_KEYS if key in rule):
            values.update({key: value for key, value in rule.items() if key not in MATCH_KEYS})
    return Resources(**values)


def job_command(run: Run, gpus: int, python: str = sys.executable) -> list[str]:
    """The local runner's command; an evaluation on several GPUs runs under torchrun, data-parallel over them."""
    command = run.command(python)
    if run.app == "train" and gpus > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", *command[1:]]
    return command


class RunJob(submitit.helpers.Checkpointable):
    """One run inside its Slurm job. On preemption or time-out submitit calls ``checkpoint()``, which returns a
    ``DelayedSubmission`` of this same call, and requeues the job; the app then resumes from its ``checkpoint.pt``.
    The app ignores SIGTERM and SIGUSR2 (Slurm's warnings), which this process answers; it is killed with the job."""

    def __init__(self, run: Run, data_root: Path, command: list[str]) -> None:
        self.run, self.data_root, self.command = run, data_root, command

    def __call__(self) -> str:
        reason = skip_reason(self.run, self.data_root)
        if reason == "finished earlier":
            return reason
        if reason:
            raise RuntimeError(f"{self.run.label}: {reason}")
        outcome = launch(self.run, self.data_root, command=self.command, ignore=(signal.SIGTERM, signal.SIGUSR2))
        if not outcome.ok:
            raise RuntimeError(str(outcome))
        return str(outcome)


def jobs_file(run: Run) -> Path:
    """``<runs root>/<scale>/.slurm_jobs.json``: run folder -> its latest Slurm job id."""
    return run.run_dir.parents[2] / JOBS_FILE


def read_jobs(path: Path) -> dict[str, str]:
    return read_json(path, "Slurm job list") if path.exists() else {}


def _write_jobs(path: Path, jobs: dict[str, str]) -> None:
    write_atomic(path, json.dumps(jobs, indent=1, sort_keys=True) + "\n")


def job_log(run: Run, job_id: str) -> Path:
    """The job's stderr as submitit writes it: the app's failure, with the tail of its log, or Slurm's kill."""
    return run.run_dir.parents[2] / LOGS / job_id / f"{job_id}_0_log.err"


def queue() -> dict[str, tuple[str, str]] | None:
    """Slurm's queue as ``{job id: (state, reason)}``, or None where ``squeue`` is missing or fails."""
    try:
        result = subprocess.run(
            ["squeue", "-h", "-o", "%i|%T|%r"], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {job: (state, reason) for job, state, reason in (line.split("|", 2) for line in result.stdout.splitlines())}


def _sacct_state(job_id: str) -> str | None:
    """The ended job's state from Slurm's accounting (CANCELLED, TIMEOUT, ...), or None where accounting is off."""
    try:
        result = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


def _executor(
    run: Run, res: Resources, config: dict, dependency: str | None, partition: str | None, account: str | None
) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(
        folder=run.run_dir.parents[2] / LOGS / "%j", cluster="slurm", slurm_max_num_timeout=config["max_requeues"]
    )
    optional = {
        "gpus_per_node": res.gpus or None,
        "slurm_partition": partition,
        "slurm_account": account,
        "slurm_dependency": f"afterok:{dependency}" if dependency else None,
    }
    executor.update_parameters(
        name=f"dada:{run.app}:{run.experiment}/{run.variant}/seed{run.seed}",
        timeout_min=res.time_min,
        cpus_per_task=res.cpus,
        mem_gb=res.mem_gb,
        slurm_additional_parameters={"requeue": True},
        slurm_setup=[f"export PYTHONPATH={shlex.quote(str(ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}"],
        **{key: value for key, value in optional.items() if value is not None},
    )
    return executor


def submit(
    runs: Sequence[Run],
    data_root: Path,
    python: str = sys.executable,
    config: dict | None = None,
    partition: str | None = None,
    account: str | None = None,
) -> list[Outcome]:
    """Submit every run that is not finished, not queued already and has its data; searches come first in a plan,
    and an evaluation whose search is queued waits for it (``afterok``). A job left waiting for a failed search is
    cancelled and submitted again."""
    config = config or load_config()
    partition, account = partition or config.get("partition"), account or config.get("account")
    slurm = queue()
    if slurm is None:
        raise RuntimeError("squeue failed: is Slurm reachable from here? (tests/cluster/slurm.sh up starts one)")
    books: dict[Path, dict[str, str]] = {}
    queued: dict[Path, str] = {}  # run folder -> its pending or running job, which an evaluation can wait for
    outcomes = []
    for run in runs:
        book = books.setdefault(jobs_file(run), read_jobs(jobs_file(run)))
        previous = book.get(str(run.run_dir))
        state, reason = slurm.get(previous, (None, None)) if previous else (None, None)
        why = skip_reason(run, data_root)
        if why and not why.startswith(WAITING):
            outcomes.append(Outcome(run, why))
        elif state and reason != NEVER:
            queued[run.run_dir] = previous
            outcomes.append(Outcome(run, f"queued earlier as Slurm job {previous} ({state.lower()})"))
        elif why and run.needs not in queued:
            outcomes.append(Outcome(run, why))
        else:
            if state:
                subprocess.run(["scancel", previous], check=False)
            dependency = queued.get(run.needs) if run.needs else None
            res = resources(run, config)
            job = _executor(run, res, config, dependency, partition, account).submit(
                RunJob(run, data_root, job_command(run, res.gpus, python))
            )
            queued[run.run_dir] = book[str(run.run_dir)] = job.job_id
            _write_jobs(jobs_file(run), book)
            after = f" after job {dependency}" if dependency else ""
            outcomes.append(Outcome(run, f"submitted as Slurm job {job.job_id}{after}"))
        print(outcomes[-1], file=sys.stderr)
    return outcomes


@dataclass(frozen=True)
class RunStatus:
    """Where a run stands: pending, running, finished, failed, not run or not submitted, with its job id."""

    run: Run
    state: str
    job_id: str | None = None
    detail: str = ""

    @property
    def waiting(self) -> bool:
        """Pending or running, and able to end (not left waiting for a failed search)."""
        return self.state in ("pending", "running") and NEVER not in self.detail

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail and "\n" not in self.detail else ""
        lines = [f"{self.state:<13} {self.job_id or '-':>8}  {self.run.label}{detail}"]
        if "\n" in self.detail:
            lines += ["    | " + line for line in self.detail.splitlines()]
        return "\n".join(lines)


def _ended(run: Run, job_id: str) -> RunStatus:
    log = job_log(run, job_id)
    state = _sacct_state(job_id)
    head = f"Slurm state {state}; " if state else ""
    if not log.exists():
        return RunStatus(run, "failed", job_id, f"{head}the job ended without a FINISHED summary and left no log")
    return RunStatus(run, "failed", job_id, f"{head}last lines of {log}:\n{log_tail(log)}")


def run_status(run: Run, data_root: Path, job_id: str | None, slurm: dict[str, tuple[str, str]] | None) -> RunStatus:
    """The run's state from its ``summary.json``, Slurm's queue (or, without ``squeue``, the job's files)."""
    try:
        if finished_summary(run.run_dir) is not None:
            return RunStatus(run, "finished", job_id)
    except UnreadableFileError as error:
        return RunStatus(run, "failed", job_id, str(error))
    missing = missing_data(run.dataset, data_root)
    if missing is not None:
        return RunStatus(run, "not run", job_id, f"no data at {missing}")
    if job_id is None:
        return RunStatus(run, "not submitted")
    if slurm is None:  # no squeue: submitit writes a result file when the job ends
        if job_log(run, job_id).with_name(f"{job_id}_0_result.pkl").exists():
            return _ended(run, job_id)
        return RunStatus(run, "running" if job_log(run, job_id).exists() else "pending", job_id, "squeue failed")
    if job_id not in slurm:
        return _ended(run, job_id)
    state, reason = slurm[job_id]
    if state in RUNNING:
        return RunStatus(run, "running", job_id)
    if reason == NEVER:
        reason = f"{NEVER}: its search failed; re-run the target to submit both again"
    detail = reason if state == "PENDING" else f"{state.lower()}, {reason}"  # e.g. requeued, suspended
    return RunStatus(run, "pending", job_id, detail.removesuffix(", None").removesuffix("None"))


def status(runs: Sequence[Run], data_root: Path) -> list[RunStatus]:
    slurm = queue()
    return [run_status(run, data_root, read_jobs(jobs_file(run)).get(str(run.run_dir)), slurm) for run in runs]


def report(statuses: Sequence[RunStatus]) -> str:
    """One line per run (a failed one followed by the tail of its log), then the counts."""
    counts: dict[str, int] = {}
    for entry in statuses:
        counts[entry.state] = counts.get(entry.state, 0) + 1
    return "\n".join([*map(str, statuses), ", ".join(f"{count} {state}" for state, count in counts.items())])


def wait(runs: Sequence[Run], data_root: Path, poll_s: float = 30.0) -> list[RunStatus]:
    """Poll until none of ``runs`` is pending or running; the statuses at the end."""
    shown = None
    while True:
        statuses = status(runs, data_root)
        waiting = [entry for entry in statuses if entry.waiting]
        if not waiting:
            return statuses
        line = (
            f"waiting for {sum(entry.state == 'running' for entry in waiting)} running and "
            f"{sum(entry.state != 'running' for entry in waiting)} pending Slurm jobs"
        )
        if line != shown:
            print(line, file=sys.stderr)
            shown = line
        time.sleep(poll_s)
