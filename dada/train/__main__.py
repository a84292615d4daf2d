"""``python -m dada.train [overrides]``: evaluate a policy by training a network (Hydra app; ``--help`` lists groups).

Under ``torchrun --nproc_per_node=N -m dada.train ...`` it trains data-parallel on N devices.
"""

import hydra
from omegaconf import DictConfig

from dada.cli import run_app
from dada.config import CONF_DIR
from dada.train.loop import TrainRun


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    run = TrainRun(cfg)
    try:
        run.run()
    finally:
        run.dist.close()


if __name__ == "__main__":
    run_app("train", main)
