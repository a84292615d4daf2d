"""``python -m dada.search [overrides]``: a DADA policy search (Hydra app; ``--help`` lists the groups)."""

import sys

import hydra
from omegaconf import DictConfig

from dada.config import print_job_config, register_app_schemas
from dada.search.loop import SearchRun


@hydra.main(version_base="1.3", config_path="../../conf", config_name="search")
def main(cfg: DictConfig) -> None:
    SearchRun(cfg).run()


if __name__ == "__main__":
    register_app_schemas("search")
    if not print_job_config("search", sys.argv[1:]):
        main()
