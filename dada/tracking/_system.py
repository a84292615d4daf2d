"""Facts about the code and the machine a run uses: git commit, library versions, device and CPU names."""

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import torch

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    """Output of a git command run in dada's own source folder, or None when git or the repository is missing."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=_PACKAGE_DIR, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit() -> str:
    """The commit of the dada source that is running (not of the working directory); "unknown" outside git."""
    return _git("rev-parse", "HEAD") or "unknown"


def git_dirty() -> str:
    """ "true" when tracked files differ from the commit, "false" when clean, "unknown" outside git."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    if status is None:
        return "unknown"
    return "true" if status else "false"


def cpu_name() -> str:
    """The CPU model, e.g. "AMD EPYC 7R13 Processor", from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_name(device: torch.device) -> str:
    """The accelerator's marketing name (e.g. "NVIDIA H100 80GB HBM3") on CUDA, else the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def collect_run_info() -> dict[str, str]:
    """Everything a run records once at its start; all values are strings so they fit MLflow tags."""
    cuda = torch.cuda.is_available()
    return {
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "cuda_version": str(torch.version.cuda) if cuda else "none",
        "device_name": device_name(torch.device("cuda" if cuda else "cpu")),
        "cuda_device_count": str(torch.cuda.device_count() if cuda else 0),
        "cpu_name": cpu_name(),
        "cpu_count": str(os.cpu_count() or 0),
        "torch_num_threads": str(torch.get_num_threads()),
        "hostname": socket.gethostname(),
        "command": " ".join(sys.argv),
    }
