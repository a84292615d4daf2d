"""The op table: DADA's 15-op search space, one entry per op, shared by both backends.

The ops are AutoAugment's minus SamplePairing (DADA Sec. 4.1). Ranges, the random mirror and the Cutout fill
are Fast AutoAugment's (Lim et al., 2019, ``augmentations.py``, ``augment_list``), which DADA's code reuses.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import torch


@dataclass(frozen=True)
class OpSpec:
    """One op of the search space: a level ``m`` in [0, 1] maps linearly onto ``[low, high]``.

    ``signed`` ops get Fast AA's "random mirror": their value flips sign with probability 0.5.
    ``integer`` ops truncate their value (Posterize's bit count). ``unit`` says what the value means.
    """

    name: str
    low: float
    high: float
    signed: bool = False
    integer: bool = False
    unit: str = ""

    @property
    def has_magnitude(self) -> bool:
        return self.low != self.high

    def value(self, level: float | torch.Tensor) -> float | torch.Tensor:
        """Map a level in [0, 1] to the op's value ``v = m * (high - low) + low``, truncated for integer ops."""
        value = level * (self.high - self.low) + self.low
        if not self.integer:
            return value
        return value.floor() if isinstance(value, torch.Tensor) else float(math.floor(value))


def _table(*specs: OpSpec) -> Mapping[str, OpSpec]:
    """A read-only, ordered name -> spec mapping."""
    return MappingProxyType(OrderedDict((spec.name, spec) for spec in specs))


OPS: Mapping[str, OpSpec] = _table(
    OpSpec("ShearX", -0.3, 0.3, signed=True, unit="shear factor"),
    OpSpec("ShearY", -0.3, 0.3, signed=True, unit="shear factor"),
    OpSpec("TranslateX", -0.45, 0.45, signed=True, unit="fraction of width"),
    OpSpec("TranslateY", -0.45, 0.45, signed=True, unit="fraction of height"),
    OpSpec("Rotate", -30.0, 30.0, signed=True, unit="degrees"),
    OpSpec("AutoContrast", 0.0, 0.0),
    OpSpec("Invert", 0.0, 0.0),
    OpSpec("Equalize", 0.0, 0.0),
    OpSpec("Solarize", 0.0, 256.0, unit="threshold (grey level)"),
    OpSpec("Posterize", 4.0, 8.0, integer=True, unit="bits kept"),
    OpSpec("Contrast", 0.1, 1.9, unit="enhance factor"),
    OpSpec("Color", 0.1, 1.9, unit="enhance factor"),
    OpSpec("Brightness", 0.1, 1.9, unit="enhance factor"),
    OpSpec("Sharpness", 0.1, 1.9, unit="enhance factor"),
    OpSpec("Cutout", 0.0, 0.2, unit="square side, fraction of width"),
)
OP_NAMES: tuple[str, ...] = tuple(OPS)

CUTOUT_FILL = (125, 123, 114)  # Fast AA's CutoutAbs fill colour (augmentations.py)


def batch_values(op_index: torch.Tensor, level: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """``OPS[OP_NAMES[op_index[i]]].value(level[i])`` for every sample at once, times ``sign[i]`` for signed ops."""
    table = level.new_tensor([[spec.low, spec.high, spec.integer, spec.signed] for spec in OPS.values()])
    low, high, integer, signed = table[op_index].unbind(1)
    value = level * (high - low) + low
    value = torch.where(integer.bool(), value.floor(), value)
    return torch.where(signed.bool(), value * sign, value)


def op_spec(name: str) -> OpSpec:
    """The spec of op ``name``; a ValueError lists the valid names."""
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; valid ops: {', '.join(OP_NAMES)}")
    return OPS[name]


def check_level(level: float | torch.Tensor) -> None:
    """Raise a ValueError unless every level lies in [0, 1]."""
    if isinstance(level, torch.Tensor):
        inside = bool(((level >= 0) & (level <= 1)).all())
    else:
        inside = 0.0 <= level <= 1.0
    if not inside:
        raise ValueError(f"level must lie in [0, 1], got {level}")


def check_sign(sign: int | torch.Tensor | None) -> None:
    """Raise a ValueError unless ``sign`` is None (random mirror) or made of +1 / -1."""
    if sign is None:
        return
    values = sign.unique().tolist() if isinstance(sign, torch.Tensor) else [sign]
    if not set(values) <= {-1, 1}:
        raise ValueError(f"sign must be +1, -1 or None (random), got {sign}")
