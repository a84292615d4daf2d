"""Schema of the search app's config (``conf/search.yaml``); values live in ``conf/``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING, DictConfig

from dada.config import ConfigValueError, RunConfig, check_run_config, check_schema, valid
from dada.ops import OP_NAMES


@dataclass
class EstimatorConfig:
    """Values in ``conf/estimator/``; fields left null are not passed, so each estimator keeps its own default."""

    name: str = MISSING  # gumbel | relax | reinforce
    temperature: float = valid("> 0")  # tau of the relaxation
    hidden_size: Optional[int] = valid(">= 1", None)  # relax: width of the surrogate c_phi
    baseline_decay: Optional[float] = valid("[0, 1]", None)  # reinforce: moving-average baseline


@dataclass
class SearchRecipe:
    """Section 4.1's search: the network's SGD with cosine decay, the policy's Adam, the top-k export.

    Every value lives in ``conf/search/``: the shared ones, cited, in ``_base.yaml``; batch, lr, weight decay and
    Cutout per data set in ``<dataset>.yaml``.
    """

    epochs: int = valid(">= 1")
    batch_size: int = valid(">= 1")
    drop_last: bool = MISSING  # false: keep each epoch's last partial batch (official)
    lr: float = valid("> 0")
    lr_min: float = valid(">= 0")
    lr_step_first: bool = MISSING  # true: the cosine schedule steps before each epoch, epoch e at lr(e + 1) (official)
    momentum: float = valid("[0, 1)")
    weight_decay: float = valid(">= 0")
    grad_clip: float = valid(">= 0")  # the network gradient's largest L2 norm; 0: no clipping
    crop_padding: int = valid(">= 0")  # pad-and-crop of the 32x32 sets before the op
    cutout: Optional[int] = valid(">= 0")  # null: the data set's Cutout; 0: none
    policy_lr: float = valid("> 0")
    policy_betas: list[float] = valid("[0, 1)")
    policy_weight_decay: float = valid(">= 0")
    ops_per_sub_policy: int = MISSING
    ordered: bool = MISSING
    sampling: str = MISSING  # batch: one sub-policy per mini-batch (official) | image: one per image
    mode: str = MISSING  # unrolled: Eq. 17-19 | first_order: d from the augmented validation batch
    variant: str = MISSING  # official: as VDIGPKU/DADA's code | paper: as the equations read (FIDELITY.md)
    alpha_init: float = MISSING
    probability_init: float = valid("[0, 1]")
    magnitude_init: float = valid("[0, 1]")
    fd_epsilon: float = valid("> 0")  # Eq. 19's finite-difference step, divided by the direction's norm
    top_k: int = MISSING
    class_list: Optional[str] = None  # image folders: the classes kept (dada/reference/ name, JSON path); null: random


@dataclass
class SearchAppConfig(RunConfig):
    search: SearchRecipe = MISSING
    estimator: EstimatorConfig = MISSING
    experiment_name: str = "search_${dataset.name}"  # run_dir's experiment (conf/experiment/*.yaml set their own)
    variant_name: str = "${estimator.name}"  # run_dir's variant; name a search.variant=paper run, e.g. relax-paper


def validate(cfg: DictConfig) -> None:
    """Refuse unknown keys and out-of-range values at start-up, naming the key and the valid range."""
    check_schema(cfg, SearchAppConfig)
    check_run_config(cfg)
    recipe = cfg.search
    if not 1 <= recipe.ops_per_sub_policy <= len(OP_NAMES):
        raise ConfigValueError(
            f"search.ops_per_sub_policy={recipe.ops_per_sub_policy} is out of range: a sub-policy "
            f"holds 1 to {len(OP_NAMES)} of the {len(OP_NAMES)} operations"
        )
    count = (math.perm if recipe.ordered else math.comb)(len(OP_NAMES), recipe.ops_per_sub_policy)
    if not 1 <= recipe.top_k <= count:
        raise ConfigValueError(
            f"search.top_k={recipe.top_k} is out of range: the search space holds {count} "
            f"sub-policies of {recipe.ops_per_sub_policy} operations, so it must lie in "
            f"[1, {count}]"
        )
