"""``search.variant``: the points where the paper's text and the official code (VDIGPKU/DADA) differ.

Each field is one row of FIDELITY.md. ``official`` reproduces the code that produced the paper's numbers and
is the default of every table; ``paper`` follows the equations as printed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    scale_by_lr: bool
    """Eq. 19 multiplies the policy gradient by ζ; the official architect.py drops it (``dalpha += [-ig]``)."""
    difference_of_estimates: bool
    """Official: one estimate for L_train(w+) and one for L_train(w-), then their difference over 2ε (RELAX's
    control variate cancels). Paper reading: one estimate of the finite difference itself."""
    on_network_input: bool
    """Official: ops run as constants; the magnitude's straight-through term and the Gumbel mixture act on the
    normalised network input. Paper: Eq. 4's mixture and Eq. 10-11 act on the [0, 1] images, every op computed."""
    project: bool
    """Paper reading: β and m are projected back into [0, 1] after each update. Official: neither is; β's gradient
    is zero outside [ε, 1-ε] (it freezes) and m drifts, its ops clamped to [0, 1]."""


VARIANTS = {
    "official": Variant(
        "official", scale_by_lr=False, difference_of_estimates=True, on_network_input=True, project=False
    ),
    "paper": Variant("paper", scale_by_lr=True, difference_of_estimates=False, on_network_input=False, project=True),
}


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown search.variant {name!r}; valid: {', '.join(VARIANTS)}")
    return VARIANTS[name]
