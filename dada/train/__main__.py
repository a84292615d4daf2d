"""``python -m dada.train [overrides]``: evaluate a policy by training a network (Hydra app; ``--help`` lists groups).

Under ``torchrun --nproc_per_node=N -m dada.train ...`` it trains data-parallel on N devices.
"""

import sys

import hydra
from omegaconf import DictConfig

from dada.config import print_job_config, register_app_schemas
from dada.train.loop import TrainRun


@hydra.main(version_base="1.3", config_path="../../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    run = TrainRun(cfg)
    try:
        run.run()
    finally:
        run.dist.close()


if __name__ == "__main__":
    register_app_schemas("train")
    if not print_job_config("train", sys.argv[1:]):
        main()
