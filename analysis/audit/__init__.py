"""The search-cost audit of Table 1(a): every claimed GPU-hour figure against a FLOP lower bound of its published
protocol, the utilisation the claim implies, and a verdict (``python -m analysis audit``).

- ``protocols``: the published protocols (analysis/search_protocols.yaml), each number cited or an assumption;
- ``counting``: FLOPs of a step, on meta tensors, and of this repository's DADA search step at the paper settings;
- ``cpu_side``: the official pipeline's PIL time per image;
- ``measured``: our committed CPU epoch and, when present, ``make device-check``'s GPU epoch;
- ``rows``, ``figure``, ``report``: the rows, the figure and the files.
"""

from analysis.audit.report import write_audit

__all__ = ["write_audit"]
