"""Safe file primitives for run folders and data roots: writes that never follow a planted link, capped reads.

A run folder is writable by whoever can plant files in it, so nothing the apps write goes through a name a link
could sit at: a file is written to a fresh unique name in its folder (``mkstemp``, which opens with ``O_EXCL``)
and renamed over its final name (a rename replaces a link, never its target), and the lock and the appended logs
are opened with ``O_NOFOLLOW``. A link found at a run file's name is refused with a sentence.

Every file read from a run folder, a data root or an annotation file goes through one reader per format here
(`read_json`, `read_yaml`), capped in size before a byte is read, and failing with an `UnreadableFileError` that
names the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import yaml

MiB = 2**20
JSON_CAP = 64 * MiB  # the largest run-folder JSON (a summary, a policy, annotations of a small set)
MAX_NESTING = 64  # JSON and YAML the apps read nest a few levels; deeper is no file of theirs


class UnreadableFileError(ValueError):
    """A file that cannot be read as its format: too large, not parseable, or of the wrong shape."""


class UnsafeRunFileError(OSError):
    """A run file's name holds a symbolic link, or the run folder cannot be written."""


def refuse_link(path: Path) -> None:
    """Raise if ``path`` is a symbolic link: the apps never write through one (its target may lie anywhere)."""
    if path.is_symlink():
        raise UnsafeRunFileError(
            f"{path} is a symbolic link (to {os.readlink(path)}); a run file is never written through a link. "
            f"Nothing was written: remove the link, or choose another run_dir"
        )


def _not_writable(path: Path, error: OSError) -> UnsafeRunFileError:
    return UnsafeRunFileError(
        f"{path} cannot be written ({error.strerror or error}): the run folder {path.parent} is not writable by "
        f"this user. Make it writable, or choose another run_dir"
    )


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a unique temporary file in its folder, then rename it into place."""
    path = Path(path)
    with atomic_file(path) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` when the block ends well; on an error nothing is left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError as error:
        raise _not_writable(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def open_no_follow(path: str | os.PathLike, flags: int, mode: int = 0o644) -> int:
    """``os.open`` with ``O_NOFOLLOW``: a link at ``path`` is refused with a sentence, so is an unwritable folder."""
    path = Path(path)
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            refuse_link(path)
        if isinstance(error, PermissionError):
            raise _not_writable(path, error) from None
        raise


def open_append(path: str | os.PathLike) -> IO[str]:
    """``path`` opened for appending text, created if absent, never through a link."""
    return os.fdopen(open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")


class RunLogHandler(logging.FileHandler):
    """Hydra's run log (``hydra.job_logging``) opened without following a link. A log that cannot be opened is
    said once on stderr and left out: the app itself then refuses a folder it cannot write, with a sentence."""

    def __init__(self, filename: str, mode: str = "a", encoding: str | None = "utf-8"):
        super().__init__(filename, mode, encoding, delay=True)

    def _open(self):
        try:
            return open_append(self.baseFilename)
        except OSError as error:
            print(f"the run log is off: {error}", file=sys.stderr)
            return open(os.devnull, "w", encoding="utf-8")


def read_bytes(path: str | os.PathLike, cap: int, what: str) -> bytes:
    """The bytes of ``path`` (``what`` it is, for the message), refused by size before reading when above ``cap``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > cap:
            raise UnreadableFileError(
                f"{what} {path} is {size / MiB:.1f} MiB, above the {cap / MiB:.0f} MiB a {what} may hold; it was "
                f"not read. Check that it is the right file"
            )
        return path.read_bytes()
    except OSError as error:
        raise UnreadableFileError(f"{what} {path} cannot be read ({error.strerror or error})") from None


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (iteratively: a deep document cannot exhaust the stack)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        node, level = pending.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, level)
            pending.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _parsed(path: Path, what: str, parse, text: str, expect: type | None) -> Any:
    try:
        value = parse(text)
    except RecursionError:
        raise UnreadableFileError(f"{what} {path} nests deeper than any {what}; it was not read") from None
    except (ValueError, yaml.YAMLError) as error:
        raise UnreadableFileError(f"{what} {path} cannot be parsed ({type(error).__name__}: {error})") from None
    if _depth(value) > MAX_NESTING:
        raise UnreadableFileError(f"{what} {path} nests deeper than {MAX_NESTING} levels; it was not read")
    if expect is not None and not isinstance(value, expect):
        raise UnreadableFileError(
            f"{what} {path} holds a {type(value).__name__}, not the {expect.__name__} a {what} holds"
        )
    return value


def _text(path: Path, cap: int, what: str) -> str:
    try:
        return read_bytes(path, cap, what).decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableFileError(f"{what} {path} is not UTF-8 text ({error})") from None


def read_json(path: str | os.PathLike, what: str = "JSON file", expect: type | None = dict, cap: int = JSON_CAP) -> Any:
    """The JSON document at ``path``, of type ``expect`` (None: any); every failure names the file."""
    path = Path(path)
    return _parsed(path, what, json.loads, _text(path, cap, what), expect)


def read_yaml(path: str | os.PathLike, what: str = "YAML file", expect: type | None = dict, cap: int = MiB) -> Any:
    """The YAML document at ``path`` read with ``safe_load`` (a tag that would build an object is refused)."""
    path = Path(path)
    return _parsed(path, what, yaml.safe_load, _text(path, cap, what), expect)
