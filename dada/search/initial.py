"""``python -m dada.search.initial [the search's overrides]``: the policy a search exports at step 0.

The no-search control of the study ``conf/study/search_matters.yaml``: the search space of the search that the same
overrides configure, exported before any policy step. Every α is equal then (a uniform softmax, Eq. 3) and
β = m = 0.5 (conf/search/_base.yaml), so the top-k export (section 3.2) is decided by the tie-break alone. The
official code lists the 105 sub-policies in a random order drawn with the search's seed (``random.sample``,
FIDELITY.md row 11), so its step-0 export is ``top_k`` sub-policies drawn with that seed; this app draws them so,
from a generator seeded with ``seed``. (The search itself ranks ties in op-table order, which would give every seed
the same 25, 14 of them with ShearX; after its first step no two α are equal.)

It writes what a search writes for its evaluations and the analysis: ``policy.json``, ``policy_archive.json``,
``metrics.jsonl`` (softmax(α), β and m at epoch 0) and ``summary.json`` (0 epochs, no cost), in the run folder
``<runs_root>/<scale>/<experiment_name>/<variant_name>/seed<N>``; a finished folder is left as it is.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from dada.config import register_app_schemas
from dada.policy import Policy
from dada.runtime import finished_summary, run_lock, save_hydra_record
from dada.schemas import SearchSummary
from dada.search._config import validate
from dada.search.loop import top_overlap
from dada.search.policy_metrics import numbered_metrics
from dada.search.space import SearchSpace
from dada.tracking import tracker_for

log = logging.getLogger(__name__)


def initial_space(recipe: DictConfig) -> SearchSpace:
    """The search space as ``SearchRun`` builds it from the recipe, before any step."""
    return SearchSpace(
        recipe.ops_per_sub_policy, recipe.ordered, recipe.alpha_init, recipe.probability_init, recipe.magnitude_init
    )


def initial_policy(recipe: DictConfig, seed: int, name: str = "dada-search-step0") -> Policy:
    """The step-0 export: ``recipe.top_k`` sub-policies, ties in α broken in an order drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return initial_space(recipe).export(recipe.top_k, name=name, generator=generator)


def export_initial(cfg: DictConfig) -> dict:
    """Write the step-0 policy and its summary into ``cfg.run_dir``; a finished run is returned as it is."""
    validate(cfg)
    run_dir = Path(cfg.run_dir)
    with run_lock(run_dir):
        finished = finished_summary(run_dir)
        if finished is not None:
            log.info("%s is finished; nothing to do", run_dir)
            return finished
        save_hydra_record(run_dir, cfg)
        policy = initial_policy(cfg.search, cfg.seed, name=f"{cfg.name}-seed{cfg.seed}-step0")
        policy_path = policy.save(run_dir / "policy.json")
        (run_dir / "policy_archive.json").write_text(json.dumps(policy.to_archive()))
        tags = {"app": "search", "estimator": cfg.estimator.name, "dataset": cfg.dataset.name, "scale": cfg.scale.name}
        with tracker_for(cfg, run_dir, {**tags, "table": cfg.table, "seed": str(cfg.seed)}) as tracker:
            tracker.log_metrics({"epoch": 0}, step=0, run_folder_only=numbered_metrics(initial_space(cfg.search)))
            summary = SearchSummary(
                name=cfg.name,
                seed=cfg.seed,
                dataset=cfg.dataset.name,
                model=cfg.scale.model or cfg.model.name,
                scale=cfg.scale.name,
                epochs=0,
                estimator=cfg.estimator.name,
                variant=cfg.search.variant,
                policy=str(policy_path),
                top_overlap_with_other_seeds=top_overlap(run_dir, policy),
            ).to_dict()
            tracker.log_artifact(policy_path)
            tracker.set_summary(summary)
        return {**summary, "status": "FINISHED"}


@hydra.main(version_base="1.3", config_path="../../conf", config_name="search")
def main(cfg: DictConfig) -> None:
    export_initial(cfg)


if __name__ == "__main__":
    register_app_schemas("search")
    main()
