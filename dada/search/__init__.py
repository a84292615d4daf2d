"""DADA's policy search: the space of sub-policies, the bi-level step (Eq. 16-19) and the search run."""

from dada.search.bilevel import BiLevelOptimizer, StepResult, virtual_step
from dada.search.space import SearchSpace

__all__ = ["BiLevelOptimizer", "SearchSpace", "StepResult", "virtual_step"]
