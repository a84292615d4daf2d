"""FLOPs of one step, counted with ``torch.utils.flop_counter`` on the real network at the real input size.

A published protocol's step is one training step or one forward pass, counted on meta tensors
(``dada.tracking.flops``): nothing is computed, so ResNet-50 at 224 px costs nothing to count.

A DADA step is this repository's search step (``BiLevelOptimizer.hypergradient``, as ``SearchRun._finish`` counts
it), built from the composed ``scale=paper`` config. Its augmentation, sampling and ``.item()`` calls need real
tensors, so it runs on real ones under ``MatmulShapesOnly``: every convolution and matrix product (the only ops
the counter counts) is answered with zeros of the shape its meta twin gives, and everything else runs. The counter
sees the same ops and shapes as in a real step, so the count is the same (checked against a real step in
tests/test_audit.py); only the values differ. It counts at two small batches and extends the line (``dada_step``).
"""

from __future__ import annotations

import functools
import math
import tempfile
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode

from analysis.audit.protocols import Phase
from dada import models
from dada.config import compose_app_config
from dada.tracking import flops

aten = torch.ops.aten
COUNTED_OPS = {
    aten.convolution.default,
    aten._convolution.default,
    aten.convolution_backward.default,
    aten.mm.default,
    aten.addmm.default,
    aten.bmm.default,
    aten.baddbmm.default,
}
ESTIMATORS = ("relax", "gumbel")


class MatmulShapesOnly(TorchDispatchMode):
    """Convolutions and matrix products return zeros of their output shape (found on meta tensors); the rest runs.

    Enter it outside ``FlopCounterMode``, so that the counter sees each op before this mode answers it.
    """

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in COUNTED_OPS:
            return func(*args, **kwargs)
        to_meta = lambda value: value.to("meta") if isinstance(value, torch.Tensor) else value  # noqa: E731
        shapes = func(*tree_map(to_meta, args), **tree_map(to_meta, kwargs))
        return tree_map(lambda m: torch.zeros(m.shape, dtype=m.dtype) if isinstance(m, torch.Tensor) else m, shapes)


def phase_step_flops(phase: Phase) -> int:
    """One step of a published phase: a training step or a forward pass of ``batch`` images (meta tensors)."""
    return _step_flops(phase.kind, phase.network, phase.classes, phase.batch, phase.input_size)


@functools.lru_cache(maxsize=None)  # phases share networks and shapes; each count takes about a second
def _step_flops(kind: str, network: str, classes: int, batch: int, size: int) -> int:
    model = models.create(network, classes)
    shape = (batch, 3, size, size)
    return flops.training_step_flops(model, shape) if kind == "train" else flops.forward_flops(model, shape)


def phase_flops(phase: Phase, step_flops: int) -> float:
    """The phase's FLOPs: every image processed once per epoch and run, at the per-image cost of a full step."""
    return phase.images_processed * step_flops / phase.batch


@dataclass(frozen=True)
class DadaStep:
    """This repository's search step at a paper setting, for one estimator."""

    experiment: str
    estimator: str
    network: str
    input_size: int
    classes: int
    train_images: int
    val_images: int
    epochs: int
    batch: int
    step_flops: int  # the whole bi-level step (hypergradient), as SearchRun._finish counts it
    network_flops: int  # one training forward and backward of the network: the rest is the policy's
    val_forward_flops: int  # the per-epoch forward over the search-val half

    @property
    def policy_flops(self) -> int:
        return self.step_flops - self.network_flops

    @property
    def protocol_steps(self) -> int:
        """epochs x ceil(train images / batch), as the official loader (drop_last=False)."""
        return self.epochs * math.ceil(self.train_images / self.batch)

    @property
    def total_flops(self) -> float:
        return self.train_images * self.epochs * self.step_flops / self.batch + self.epochs * self.val_forward_flops


def paper_search_config(experiment: str, estimator: str, overrides: tuple[str, ...] = ()):
    """``conf/search.yaml`` with ``experiment``, ``scale=paper`` and ``estimator``, on the CPU, writing nowhere."""
    runs_root = tempfile.gettempdir() + "/dada-audit-unused"
    base = [f"experiment={experiment}", "scale=paper", f"estimator={estimator}", "device=cpu", f"runs_root={runs_root}"]
    return compose_app_config("search", [*base, *overrides])


def _bilevel_step_flops(run, batch: int, size: int, classes: int, seed: int) -> int:
    """One ``hypergradient`` of ``run`` on ``batch`` random images, under ``MatmulShapesOnly``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=generator)
    labels = torch.arange(batch) % classes
    draws = torch.Generator().manual_seed(seed)  # the same sub-policy draws at every batch size
    with MatmulShapesOnly(), FlopCounterMode(display=False) as counter:
        run.optimizer.hypergradient((images, labels), (images.clone(), labels.clone()), draws)
    return counter.get_total_flops()


def dada_step(experiment: str, estimator: str, overrides: tuple[str, ...] = ()) -> DadaStep:
    """Count one search step of the composed ``scale=paper`` config (module docstring).

    The step is counted at batches of 2 and 4 and extended linearly to the config's batch: every counted product
    is linear in the batch (the estimator's, which is not, is the intercept), and a step of ResNet-50 at 224 px and
    batch 32 would hold about 10 GB of activations. tests/test_audit.py checks the line against a real step.
    """
    from dada.search.loop import SearchRun  # the search app, imported only when a DADA row is counted

    cfg = paper_search_config(experiment, estimator, overrides)
    run = SearchRun(cfg)
    dataset = cfg.dataset
    size, classes = dataset.image_size, dataset.search_classes or dataset.num_classes
    images = dataset.search_images if cfg.scale.search_images is None else cfg.scale.search_images
    train_images = round(images * dataset.search_train_fraction)
    two, four = (_bilevel_step_flops(run, batch, size, classes, cfg.seed) for batch in (2, 4))
    shape = (run.batch_size, 3, size, size)
    return DadaStep(
        experiment=experiment,
        estimator=estimator,
        network=cfg.scale.model or cfg.model.name,
        input_size=size,
        classes=classes,
        train_images=train_images,
        val_images=images - train_images,
        epochs=run.epochs,
        batch=run.batch_size,
        step_flops=two + (four - two) * (run.batch_size - 2) // 2,
        network_flops=flops.training_step_flops(run.model, shape),
        val_forward_flops=flops.forward_flops(run.model, (images - train_images, 3, size, size)),
    )
