"""``python -m dada.detect [overrides]``: fine-tune a detector from a dada.train backbone, report COCO AP (Hydra app;
``--help`` lists the groups)."""

import hydra
from omegaconf import DictConfig

from dada.cli import run_app
from dada.config import CONF_DIR
from dada.detect.loop import DetectRun


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="detect")
def main(cfg: DictConfig) -> None:
    DetectRun(cfg).run()


if __name__ == "__main__":
    run_app("detect", main)
