"""Gradient estimators for E[f(c, b)] under a Categorical (alpha) x Bernoulli (beta) policy distribution.

    estimator = create("relax", num_categories=105, num_gates=210, temperature=tau)  # tau: conf/estimator/*.yaml
    sample = estimator.sample(alpha, beta, generator)
    output = estimator.gradients(sample, loss_of(sample))   # output.grad_alpha, output.grad_beta

Standalone: imports only torch. ``toy`` holds small problems with exact gradients for checking them.
"""

from ._base import Estimator, EstimatorOutput, EstimatorSample
from ._factory import ESTIMATORS, create
from .gumbel import GumbelEstimator
from .reinforce import ReinforceEstimator
from .relax import RelaxEstimator, Surrogate

__all__ = [
    "ESTIMATORS",
    "Estimator",
    "EstimatorOutput",
    "EstimatorSample",
    "GumbelEstimator",
    "ReinforceEstimator",
    "RelaxEstimator",
    "Surrogate",
    "create",
]
