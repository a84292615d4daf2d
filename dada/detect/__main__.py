"""``python -m dada.detect [overrides]``: fine-tune a detector from a dada.train backbone, report COCO AP (Hydra app;
``--help`` lists the groups)."""

import sys

import hydra
from omegaconf import DictConfig

from dada.config import print_job_config, register_app_schemas
from dada.detect.loop import DetectRun


@hydra.main(version_base="1.3", config_path="../../conf", config_name="detect")
def main(cfg: DictConfig) -> None:
    DetectRun(cfg).run()


if __name__ == "__main__":
    register_app_schemas("detect")
    if not print_job_config("detect", sys.argv[1:]):
        main()
