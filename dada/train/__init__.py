"""Policy evaluation (paper section 4.1): train a network with a policy on Fast AA's recipe, report honestly.

``python -m dada.train model=wrn28_10 dataset=cifar10 policy=dada scale=paper seed=0`` (Hydra app); the
pieces are usable alone: `create_augmentation` (policies by name), `plan_schedule`/`create_optimizer`/
`create_scheduler` (recipes), `TrainRun` (one run).
"""

from dada.train.distributed import Distributed
from dada.train.loop import TrainRun
from dada.train.metrics import ClassificationMeters
from dada.train.policies import POLICIES, Augmentation, NoPolicy, create_augmentation
from dada.train.recipe import Schedule, create_optimizer, create_scheduler, plan_schedule

__all__ = [
    "POLICIES",
    "Augmentation",
    "ClassificationMeters",
    "Distributed",
    "NoPolicy",
    "Schedule",
    "TrainRun",
    "create_augmentation",
    "create_optimizer",
    "create_scheduler",
    "plan_schedule",
]
