"""The errors the loaders raise when a data set's files are missing, unreadable or unsafe to read."""

from collections.abc import Sequence
from pathlib import Path

POINT_ELSEWHERE = (
    "Point elsewhere with dataset.root=/path/to/data (config override) or DATA_ROOT=/path/to/data (environment)."
)


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are missing; the message names the paths looked at and the expected layout."""


class CorruptDataError(RuntimeError):
    """A data file exists but cannot be read; the message names it and says how to restore it."""


class UnsafeDataError(CorruptDataError):
    """A data file asks to build objects its format never holds (code, in a pickle); it was refused unread."""


def missing_paths_error(name: str, root: Path, missing: Sequence[Path], layout: str) -> DatasetNotFoundError:
    """The error for data set ``name``: what is missing, what ``root`` should hold, how to point elsewhere."""
    lines = [f"data set {name!r} not found under the data root {root.absolute()}. Missing:"]
    lines += [f"  {path.absolute()}" for path in missing]
    lines += ["Expected layout under the data root:"]
    lines += [f"  {line}" for line in layout.splitlines()]
    lines += [POINT_ELSEWHERE]
    return DatasetNotFoundError("\n".join(lines))
