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
from typing import Any, Mapping

import hydra
import torch
from omegaconf import DictConfig

from dada.cli import run_app
from dada.config import CONF_DIR
from dada.files import write_atomic
from dada.policy import Policy
from dada.run import RunLifecycle
from dada.scale import scale_name
from dada.schemas import SearchSummary
from dada.search._config import validate
from dada.search.loop import SearchRun, top_overlap
from dada.search.policy_metrics import numbered_metrics
from dada.search.space import SearchSpace


def initial_space(recipe: DictConfig) -> SearchSpace:
    """The search space as ``SearchRun`` builds it from the recipe, before any step."""
    return SearchSpace(
        recipe.ops_per_sub_policy, recipe.ordered, recipe.alpha_init, recipe.probability_init, recipe.magnitude_init
    )


def initial_policy(recipe: DictConfig, seed: int, name: str = "dada-search-step0") -> Policy:
    """The step-0 export: ``recipe.top_k`` sub-policies, ties in α broken in an order drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return initial_space(recipe).export(recipe.top_k, name=name, generator=generator)


class InitialExport(RunLifecycle):
    """A search of no epochs: the shared lifecycle (lock, identity, a finished folder left as it is, summary, tracker)
    around the step-0 export."""

    app, noun = "search", "step-0 export"
    identity_keys, lower, rename = SearchRun.identity_keys, SearchRun.lower, SearchRun.rename
    epochs = 0

    def __init__(self, cfg: DictConfig):
        super().__init__(cfg, validate)

    def prepare(self) -> None:
        self.space = initial_space(self.cfg.search)

    def finite_modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.space}

    def tags(self) -> dict[str, str]:
        return {"model": self.cfg.model.name, "estimator": self.cfg.estimator.name}

    def finish(self, tracker) -> dict[str, Any]:
        cfg = self.cfg
        policy = initial_policy(cfg.search, cfg.seed, name=f"{cfg.name}-seed{cfg.seed}-step0")
        policy_path = policy.save(self.folder.policy)
        write_atomic(self.run_dir / "policy_archive.json", json.dumps(policy.to_archive()))
        tracker.log_metrics({"epoch": 0}, step=0, run_folder_only=numbered_metrics(self.space))
        tracker.log_artifact(policy_path)
        return SearchSummary(
            name=cfg.name,
            seed=cfg.seed,
            dataset=cfg.dataset.name,
            model=cfg.model.name,
            scale=scale_name(cfg),
            epochs=0,
            estimator=cfg.estimator.name,
            variant=cfg.search.variant,
            policy=str(policy_path),
            top_overlap_with_other_seeds=top_overlap(self.run_dir, policy),
        ).to_dict()

    def result(self, summary: Mapping[str, Any]) -> str:
        return f"policy {summary['policy']} (step 0: no policy step taken)"


def export_initial(cfg: DictConfig) -> dict:
    """Write the step-0 policy and its summary into ``cfg.run_dir``; a finished run is returned as it is."""
    return InitialExport(cfg).run()


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="search")
def main(cfg: DictConfig) -> None:
    export_initial(cfg)


if __name__ == "__main__":
    run_app("search", main)
