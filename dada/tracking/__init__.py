"""Run tracking: one `Tracker` writing the run folder (``metrics.jsonl``, always) and MLflow / W&B (on request),
and `DeviceClock` for the search cost in device-hours. Callers decide what to log; this package transports it.

    with create_tracker(("jsonl", "mlflow"), run_dir="runs/search/0", config=cfg, tags={"table": "1"}) as tracker:
        tracker.log_metrics({"train/loss": loss}, step=step)
        tracker.log_dict("policy.json", policy)

The apps open theirs with ``tracker_for(cfg, run_dir, tags, resume_epoch)``, as their ``logger`` config node asks.
MLflow and W&B are imported only when a tracker asks for them.
"""

from dada.tracking._backend import Backend, RunSpec
from dada.tracking._system import collect_run_info
from dada.tracking._tracker import (
    BACKENDS,
    STATUSES,
    WANDB_MODES,
    Tracker,
    TrackingWarning,
    create_tracker,
    tracker_for,
)
from dada.tracking.cost import DeviceClock

__all__ = [
    "BACKENDS",
    "Backend",
    "DeviceClock",
    "RunSpec",
    "STATUSES",
    "Tracker",
    "TrackingWarning",
    "WANDB_MODES",
    "collect_run_info",
    "create_tracker",
    "tracker_for",
]
