"""The apps' entry points: ``dada-search``, ``dada-train`` and ``dada-detect`` (also ``python -m dada.<app>``).

``--help`` shows the app's own config groups, their options and its composed config. Hydra's own ``--help`` would
list every group under ``conf/``, the other apps' included; ``--hydra-help`` still shows Hydra's flags.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from typing import Callable

import yaml
from omegaconf import OmegaConf

from dada.config import CONF_DIR, compose_app_config, print_job_config, register_app_schemas


def app_groups(app: str) -> dict[str, list[str]]:
    """The config groups in ``conf/<app>.yaml``'s defaults list, each with its options in ``conf/<group>/``.

    Files starting with ``_`` are bases, not options; an experiment belongs to the app its header runs.
    """
    defaults = yaml.safe_load((CONF_DIR / f"{app}.yaml").read_text(encoding="utf-8"))["defaults"]
    groups = [key.removeprefix("optional ") for entry in defaults if isinstance(entry, dict) for key in entry]
    return {group: _options(group, app) for group in groups}


def _options(group: str, app: str) -> list[str]:
    paths = sorted(path for path in (CONF_DIR / group).glob("*.yaml") if not path.stem.startswith("_"))
    if group == "experiment":
        paths = [path for path in paths if f"-m dada.{app} " in path.read_text(encoding="utf-8")]
    return [path.stem for path in paths]


def app_help(app: str, overrides: list[str]) -> str:
    """What ``dada-<app> --help`` prints: the config's header comment, the groups and the composed config."""
    header = []
    for line in (CONF_DIR / f"{app}.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        header.append(line.removeprefix("#").removeprefix(" "))
    groups = "\n".join(
        textwrap.fill(
            ", ".join(options), 120, initial_indent=f"  {group}: ", subsequent_indent="    ", break_on_hyphens=False
        )
        for group, options in app_groups(app).items()
    )
    config = OmegaConf.to_yaml(compose_app_config(app, overrides))
    return (
        f"dada-{app} [key=value ...] (or python -m dada.{app})\n\n" + "\n".join(header) + "\n\n"
        f"Config groups (choose with group=option):\n{groups}\n\n"
        f"Composed config (override any key with key=value; --hydra-help for Hydra's flags):\n{config}"
    )


def run_app(app: str, main: Callable[[], None]) -> None:
    """Run the Hydra ``main`` of ``app``, or print its own help for ``--help`` / ``-h``."""
    register_app_schemas(app)
    arguments = sys.argv[1:]
    if "--help" in arguments or "-h" in arguments:
        print(app_help(app, [argument for argument in arguments if not argument.startswith("-")]))  # overrides only
        return
    if not print_job_config(app, arguments):  # --cfg job: the config the run records, the scale applied
        main()


def _console_script(app: str) -> Callable[[], None]:
    def entry() -> None:
        run_app(app, importlib.import_module(f"dada.{app}.__main__").main)

    entry.__doc__ = f"``dada-{app}``: ``python -m dada.{app}``."
    return entry


search, train, detect = (_console_script(app) for app in ("search", "train", "detect"))
