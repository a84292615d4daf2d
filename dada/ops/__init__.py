"""DADA's augmentation search space: the 15-op table and its two backends.

- ``OPS`` / ``OP_NAMES``: the op table (name -> ``OpSpec`` with range and random-mirror flag), in search order.
- ``apply_pil``: reference backend, one PIL image at a time, Fast AutoAugment's semantics.
- ``apply`` / ``apply_indexed``: batched tensor backend (CPU or CUDA) with per-sample ops, levels and masks,
  and the straight-through magnitude gradient of DADA Eq. 10-11. ``apply`` checks the pixel range
  (``check_image_range``); ``apply_indexed``, the search's hot path, leaves that to its caller.
"""

from ._batch import apply, apply_indexed, check_image_range
from ._pil import apply_pil
from ._table import OP_NAMES, OPS, OpSpec

__all__ = ["OPS", "OP_NAMES", "OpSpec", "apply", "apply_indexed", "apply_pil", "check_image_range"]
