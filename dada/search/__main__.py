"""``python -m dada.search [overrides]``: a DADA policy search (Hydra app; ``--help`` lists the groups)."""

import hydra
from omegaconf import DictConfig

from dada.cli import run_app
from dada.config import CONF_DIR
from dada.search.loop import SearchRun


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="search")
def main(cfg: DictConfig) -> None:
    SearchRun(cfg).run()


if __name__ == "__main__":
    run_app("search", main)
