"""dada: Differentiable Automatic Data Augmentation (Li et al., ECCV 2020) in PyTorch.

Sub-packages load on first use, so ``import dada; dada.models.create("wrn40_2", 10)`` works
without importing the whole suite up front.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "checkpoint",
    "config",
    "data",
    "estimators",
    "models",
    "ops",
    "policy",
    "runtime",
    "search",
    "tracking",
    "train",
    "transforms",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"dada.{name}")
    raise AttributeError(f"module 'dada' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
