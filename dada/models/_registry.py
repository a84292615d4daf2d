"""Model registry: ``@register_model`` factories, looked up by name in ``create``."""

from collections.abc import Callable

from torch import nn

ModelFactory = Callable[..., nn.Module]

_MODEL_FACTORIES: dict[str, ModelFactory] = {}


def register_model(factory: ModelFactory) -> ModelFactory:
    """Register ``factory(num_classes, **kwargs)`` under its function name (timm style)."""
    name = factory.__name__
    if name in _MODEL_FACTORIES:
        raise ValueError(f"model {name!r} is already registered")
    _MODEL_FACTORIES[name] = factory
    return factory


def list_models() -> list[str]:
    """Names accepted by ``create``, sorted."""
    return sorted(_MODEL_FACTORIES)


def create(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with a ``num_classes``-way classifier; ``kwargs`` go to its factory."""
    if name not in _MODEL_FACTORIES:
        raise ValueError(f"unknown model {name!r}; valid choices: {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes}")
    return _MODEL_FACTORIES[name](num_classes=num_classes, **kwargs)
