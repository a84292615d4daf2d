"""A study's finished run folders as one committed archive: the record its per-seed table derives from.

`pack` writes every finished run folder of a plan, less its checkpoints, figures and progress output, to a
``.tar.gz`` whose bytes depend only on the files (sorted members, no times or owners), so re-packing unchanged runs
changes nothing in git. `restore` puts them back under a runs root: a fresh clone then skips the runs the archive
holds, resumes a study that one session could not finish, and lets anyone re-derive the tables from the runs.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path, PurePosixPath
from typing import Iterable

from dada.files import UnreadableFileError, atomic_file
from dada.runtime import LOCK_FILE, finished_summary
from reproduce.runner import LOG_NAME

# Left out, as most of a run's bytes and none of its record: checkpoints (a finished run never reads them again),
# figures (drawn from metrics.jsonl), the runner's capture of the app's output (progress bars; the app's own log
# stays) and the lock.
LEFT_OUT_SUFFIXES = (".pt", ".png", ".pdf")
LEFT_OUT_NAMES = (LOG_NAME, LOCK_FILE)


def _packed_files(run_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in run_dir.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and path.name not in LEFT_OUT_NAMES
        and path.suffix not in LEFT_OUT_SUFFIXES
    )


def pack(run_dirs: Iterable[Path], archive: Path, runs_root: Path) -> list[Path]:
    """Write the finished run folders among ``run_dirs`` to ``archive`` (paths relative to ``runs_root``); the run
    folders packed. The archive is replaced only when the new one is complete."""
    packed = sorted({Path(run_dir) for run_dir in run_dirs if finished_summary(run_dir) is not None})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in (path for run_dir in packed for path in _packed_files(run_dir)):
            info = tarfile.TarInfo(path.relative_to(runs_root).as_posix())
            info.size, info.mode = path.stat().st_size, 0o644  # mtime, uid and gid stay 0: the bytes are the files'
            with path.open("rb") as file:
                tar.addfile(info, file)
    with atomic_file(archive) as file:
        file.write(gzip.compress(buffer.getvalue(), mtime=0))
    return packed


def restore(archive: Path, runs_root: Path) -> tuple[list[Path], list[Path]]:
    """Extract the run folders of ``archive`` under ``runs_root``; (restored, kept). A run folder that already
    exists is kept as it is, never overwritten or merged, so nothing of a local run is lost."""
    try:
        tar = tarfile.open(archive, mode="r:gz")
    except (OSError, tarfile.TarError) as error:
        raise UnreadableFileError(f"{archive} is not a readable run archive (.tar.gz): {error}") from None
    with tar:
        members = tar.getmembers()
        # a run folder is the parent of a summary.json; its members are every name below it
        folders = sorted({PurePosixPath(m.name).parent for m in members if m.name.endswith("/summary.json")})
        by_folder = {folder: [m for m in members if folder in PurePosixPath(m.name).parents] for folder in folders}
        restored, kept = [], []
        for folder, folder_members in by_folder.items():
            target = runs_root / folder
            if target.exists() or target.is_symlink():
                kept.append(target)
                continue
            # filter="data" refuses absolute names, "..", links and devices: an archive writes only inside runs_root
            tar.extractall(runs_root, members=folder_members, filter="data")
            restored.append(target)
    return restored, kept
