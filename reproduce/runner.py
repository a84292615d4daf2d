"""Run a plan: each run in its own subprocess, finished ones skipped, missing data recorded.

A progress bar counts the runs that will run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from dada.files import UnreadableFileError, open_no_follow
from dada.runtime import finished_summary
from reproduce.plan import Run, missing_data

LOG_NAME = "reproduce.log"  # the app's stdout and stderr, in its run folder
WAITING = "not run: its "  # a run whose search (or a detection's backbone) did not finish
FAILED_LOG_LINES = 15


@dataclass(frozen=True)
class Outcome:
    """What became of a run: ``ran``, ``finished earlier``, ``failed (exit N)`` or ``not run: <why>``; with
    ``--launcher slurm``: ``submitted as Slurm job N`` or ``queued earlier as Slurm job N``."""

    run: Run
    status: str
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("ran", "finished earlier") or self.status.startswith(
            ("not run: no data", "submitted as", "queued earlier as")
        )

    def __str__(self) -> str:
        timing = f" in {self.seconds:.0f} s" if self.status == "ran" else ""
        return f"{self.run.label}: {self.status}{timing}"


def skip_reason(run: Run, data_root: Path) -> str | None:
    """Why ``run`` need not or cannot run now, or None when it should run."""
    try:
        if finished_summary(run.run_dir) is not None:
            return "finished earlier"
        missing = missing_data(run.dataset, data_root)
        if missing is not None:
            return f"not run: no data at {missing}"
        if run.needs is not None and finished_summary(run.needs) is None:
            return f"{WAITING}{'backbone' if run.app == 'detect' else 'search'} {run.needs} did not finish"
    except UnreadableFileError as error:  # a bad summary.json: named, and the other runs go on
        return f"not run: {error}"
    return None


def log_tail(path: Path, lines: int = FAILED_LOG_LINES) -> str:
    text = path.read_text(errors="replace").replace("\r", "\n").splitlines()
    return "\n".join(line for line in text[-lines:])


def _ignoring(signals: Sequence[signal.Signals]):
    """A ``preexec_fn`` that makes the child ignore ``signals``: an ignored signal stays ignored across ``exec``."""

    def ignore() -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_IGN)

    return ignore


def launch(
    run: Run,
    data_root: Path,
    python: str = sys.executable,
    command: Sequence[str] | None = None,
    ignore: Sequence[signal.Signals] = (),
) -> Outcome:
    """Run the app in a subprocess (DATA_ROOT set), its output in ``<run_dir>/reproduce.log``: ``run.command`` or
    ``command``, with the signals in ``ignore`` ignored by the app."""
    command = list(command or run.command(python))
    run.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run.run_dir / LOG_NAME
    started = time.perf_counter()
    with os.fdopen(open_no_follow(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w", encoding="utf-8") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        result = subprocess.run(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DATA_ROOT": str(data_root)},
            check=False,
            preexec_fn=_ignoring(ignore) if ignore else None,
        )
    seconds = time.perf_counter() - started
    if result.returncode == 0 and finished_summary(run.run_dir) is not None:
        return Outcome(run, "ran", seconds)
    return Outcome(run, f"failed (exit {result.returncode}); last lines of {log_path}:\n{log_tail(log_path)}", seconds)


def _will_run(runs: Sequence[Run], data_root: Path) -> set[Path]:
    """The run folders of ``runs`` (in plan order, searches first) that will run: not finished earlier, with their
    data, and with a search (or backbone) that finished or will run. The progress bar counts these only."""
    counted: set[Path] = set()
    for run in runs:
        ready = run.needs is None or run.needs in counted or finished_summary(run.needs) is not None
        if ready and finished_summary(run.run_dir) is None and missing_data(run.dataset, data_root) is None:
            counted.add(run.run_dir)
    return counted


def execute(runs: Sequence[Run], data_root: Path, python: str = sys.executable, jobs: int = 1) -> list[Outcome]:
    """Every run, ``jobs`` at a time, one line per run above a progress bar; an evaluation waits for its search.

    The pool starts runs in plan order and a plan lists searches first, so a search is running or done before any
    run that waits for it takes a worker: waiting cannot deadlock. With ``jobs=1`` it is one run after another."""
    counted = _will_run(runs, data_root)
    progress = tqdm(total=len(counted), unit="run", dynamic_ncols=True, file=sys.stderr)

    def perform(run: Run, search: Future | None) -> Outcome:
        if search is not None:
            search.result()
        reason = skip_reason(run, data_root)
        outcome = Outcome(run, reason) if reason else launch(run, data_root, python)
        progress.write(str(outcome), file=sys.stderr)
        if run.run_dir in counted:
            progress.update()
        return outcome

    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        started: dict[Path, Future] = {}
        for run in runs:
            started[run.run_dir] = pool.submit(perform, run, started.get(run.needs))
        return [future.result() for future in started.values()]
    finally:  # Ctrl-C: the running apps get SIGINT and save a checkpoint; nothing new starts
        pool.shutdown(cancel_futures=True)
        progress.close()


def _kind(status: str) -> str:
    if status.startswith("failed"):
        return "failed"
    if status.startswith("not run: no data"):
        return "not run (no data)"
    if status.startswith("not run"):
        return "not run (search or backbone did not finish)"
    if status.startswith("submitted as"):
        return "submitted to Slurm"
    if status.startswith("queued earlier as"):
        return "queued on Slurm earlier"
    return status


def summarize(outcomes: Sequence[Outcome]) -> str:
    """Counts per kind of outcome and the time spent running."""
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[_kind(outcome.status)] = counts.get(_kind(outcome.status), 0) + 1
    seconds = sum(outcome.seconds for outcome in outcomes)
    return ", ".join(f"{count} {status}" for status, count in counts.items()) + f"; {seconds / 60:.1f} min running"
