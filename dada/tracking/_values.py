"""Turning what callers hand the tracker (tensors, NumPy scalars, OmegaConf nodes) into plain JSON-ready data."""

import numbers
from typing import Any, Iterator, Mapping, Sequence

RESERVED_METRIC_KEYS = ("step", "time")


def to_scalar(value: Any) -> Any:
    """A 0-d tensor or NumPy scalar becomes the Python number it holds; anything else is returned unchanged."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def plain_data(value: Any) -> Any:
    """Mappings become dicts, sequences lists, scalars stay; any other object becomes its ``str``.

    Works on OmegaConf ``DictConfig``/``ListConfig`` (resolving interpolations) without importing OmegaConf.
    """
    value = to_scalar(value)
    if value is None or isinstance(value, (bool, numbers.Real, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [plain_data(item) for item in value]
    return str(value)


def metric_values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Check metric names and turn every value into a float; raise on anything that is not one real number."""
    values = {}
    for key, value in metrics.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metric names must be non-empty strings, got {key!r}")
        if key in RESERVED_METRIC_KEYS:
            raise ValueError(f"metric name {key!r} is reserved for metrics.jsonl; reserved: {RESERVED_METRIC_KEYS}")
        scalar = to_scalar(value)
        if isinstance(scalar, bool) or not isinstance(scalar, numbers.Real):
            raise TypeError(
                f"metric {key!r} must be a real number, a 0-d tensor or a NumPy scalar, got {type(value).__name__}"
            )
        values[key] = float(scalar)
    return values


def flatten(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested mappings as dotted keys: ``{"optim": {"lr": 0.1}}`` yields ``("optim.lr", 0.1)``."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{name}.")
        else:
            yield name, value
