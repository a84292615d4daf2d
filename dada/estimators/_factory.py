"""``create(name, ...)``: build an estimator by its short name."""

from ._base import Estimator
from .gumbel import GumbelEstimator
from .reinforce import ReinforceEstimator
from .relax import RelaxEstimator

ESTIMATORS: dict[str, type[Estimator]] = {
    cls.name: cls for cls in (GumbelEstimator, RelaxEstimator, ReinforceEstimator)
}


def create(name: str, num_categories: int, num_gates: int, temperature: float, **kwargs) -> Estimator:
    """Build the estimator ``name`` ("gumbel", "relax" or "reinforce") for K categories and G gates.

    Extra keyword arguments go to its constructor (``hidden_size`` for relax, ``baseline_decay`` for reinforce).
    """
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; choose one of {sorted(ESTIMATORS)}")
    return ESTIMATORS[name](num_categories, num_gates, temperature=temperature, **kwargs)
