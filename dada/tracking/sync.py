"""``python -m dada.tracking.sync [--dry-run] [runs root]`` (``make wandb-sync``): upload the offline W&B runs.

Each run keeps its offline W&B data in ``<run_dir>/wandb/offline-run-*``, so a plain ``wandb sync`` in the project
folder finds nothing. This finds them under the runs root and hands them to ``wandb sync`` in one call; a resumed
run's folders share its run id, and ``wandb sync`` uploads them in order into that one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def offline_runs(root: Path) -> list[Path]:
    """Every offline W&B run folder under ``root``, oldest first (their names start with the date)."""
    return sorted(root.glob("**/wandb/offline-run-*"), key=lambda path: path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dada.tracking.sync", description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path("runs"), help="the runs root (default: runs)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded, upload nothing")
    args = parser.parse_args(argv)
    folders = offline_runs(args.root)
    if not folders:
        print(f"no offline W&B runs under {args.root} (runs made with logger=wandb or logger=many)")
        return 0
    command = [sys.executable, "-m", "wandb", "sync", *(["--dry-run"] if args.dry_run else []), *map(str, folders)]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
