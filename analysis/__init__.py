"""Runs back into the paper's tables and figures: ``python -m analysis <target>`` writes ``results/``.

Modules: ``paper`` (the paper's numbers, ``paper_results.yaml``), ``runs`` (finished runs from run folders
or MLflow), ``tables`` (paper / ours / difference per cell), ``cost`` (search cost report), ``figures``
(Fig. 1, 3a, 3b), ``search_curves`` (policy heatmaps, estimator variance per epoch), ``estimators``
(estimator bias and variance on toy problems), ``report`` (writes a target's files).
"""

from analysis.paper import load_paper_results
from analysis.report import Context, write_results
from analysis.runs import read_runs, read_runs_mlflow
from analysis.tables import build_table

__all__ = ["Context", "build_table", "load_paper_results", "read_runs", "read_runs_mlflow", "write_results"]
