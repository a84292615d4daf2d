"""``pip install .``: the wheel ships conf/, analysis/ and reproduce/, its console scripts run outside the source tree,
and each app's ``--help`` shows its own config groups only."""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from conftest import SEARCH_SMOKE
from setuptools import find_packages

from dada.cli import app_groups, app_help

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "conf", "dada", "analysis", "reproduce")
SCRIPTS = ("dada-search", "dada-train", "dada-detect", "dada-reproduce", "dada-analysis")


def test_the_wheel_lists_every_package_and_ships_conf():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = find_packages(str(ROOT), include=["dada*", "analysis*", "reproduce*"])
    assert sorted(setuptools["packages"]) == sorted([*found, "dada.conf"])
    assert setuptools["package-dir"] == {"dada.conf": "conf"}


def test_each_app_help_shows_its_own_groups():
    search, train, detect = (set(app_groups(app)) for app in ("search", "train", "detect"))
    assert {"estimator", "search"} <= search and not search & {"policy", "recipe", "detector"}
    assert {"policy", "recipe"} <= train and not train & {"estimator", "detector"}
    assert {"detector", "detect_dataset"} <= detect and not detect & {"estimator", "policy"}
    assert all(name.startswith("search_") for name in app_groups("search")["experiment"])
    text = app_help("search", ["estimator=gumbel"])
    assert "estimator: gumbel, reinforce, relax" in text and "name: gumbel" in text and "detector" not in text


@pytest.mark.slow
def test_the_installed_wheel_runs_outside_the_source_tree(tmp_path):
    """Build the wheel, install it with --no-deps into a venv that sees this environment's packages through a .pth
    (torch and the rest), then run the console scripts from an empty folder."""
    wheels, venv, work, source = (tmp_path / name for name in ("wheels", "venv", "elsewhere", "source"))
    work.mkdir(), source.mkdir()
    for name in SOURCES:  # a copy, so that the build's build/ and egg-info stay out of the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = ["-m", "pip", "--disable-pip-version-check", "-q"]
    _run([sys.executable, *pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], env, tmp_path)
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env, tmp_path)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env, work).strip()
    Path(purelib, "shared_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([python, *pip, "install", "--no-deps", *wheels.glob("dada-*.whl")], env, work)

    where = _run([python, "-c", "import dada, dada.config; print(dada.__file__, dada.config.CONF_DIR)"], env, work)
    assert where.count(str(venv)) == 2, where  # the installed package and its conf/, not the source tree
    assert all((venv / "bin" / script).is_file() for script in SCRIPTS)
    help_text = _run([venv / "bin" / "dada-search", "--help"], env, work)
    assert "estimator: gumbel, reinforce, relax" in help_text and "detector" not in help_text
    _run([venv / "bin" / "dada-search", *SEARCH_SMOKE, "scale.search_images=96", "threads=1"], env, work)
    assert (work / "runs" / "smoke" / "search_fashion-mnist-on-wrn10_1" / "relax" / "seed0" / "policy.json").is_file()


def _run(command: list, env: dict, cwd: Path) -> str:
    result = subprocess.run([str(part) for part in command], env=env, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout
