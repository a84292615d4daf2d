"""Reproduce the paper's tables and figures: which runs each needs (``tables``, ``plan``) and a runner (``runner``).

python -m reproduce table1 --scale smoke --seeds 0,1 --data-root ./data     # what `make table1` runs
"""

from reproduce.plan import Run, missing_data, plan, plan_many, run_dir
from reproduce.runner import Outcome, execute
from reproduce.tables import Cell, DetectJob, EvalJob, Layout, PaperRef, SearchJob, get_layout

__all__ = [
    "Cell",
    "DetectJob",
    "EvalJob",
    "Layout",
    "Outcome",
    "PaperRef",
    "Run",
    "SearchJob",
    "execute",
    "get_layout",
    "missing_data",
    "plan",
    "plan_many",
    "run_dir",
]
