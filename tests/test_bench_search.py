"""The official-pipeline emulation of benchmarks/bench_search.py: its loader's batches and its step's gradients."""

import importlib
from pathlib import Path

import pytest
import torch

from dada.data.search_set import prepare_search_data
from dada.ops import OP_NAMES
from dada.search.loop import SearchRun
from dada.search.space import SearchSpace

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
BATCH = 8


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_search")


@pytest.fixture
def smoke(search_config):
    cfg = search_config()
    return cfg, prepare_search_data(cfg.dataset, torch.device("cpu"))


def _seeded_batch(loader, category: int, gates: torch.Tensor):
    loader.dataset.set_batch_policy(torch.tensor(category), gates)
    torch.manual_seed(0)  # the same order, crops and flips for every call
    return next(iter(loader))


def test_loader_applies_the_sub_policy_set_for_the_batch(bench, smoke):
    """Two batches, same crops: with Invert's gate on, every pixel is 1 - itself (before Normalize)."""
    cfg, split = smoke
    space = SearchSpace()
    category = next(i for i, ops in enumerate(space.sub_policies.tolist()) if OP_NAMES[ops[0]] == "Invert")
    loader, _ = bench.official_loaders(
        split, space, BATCH, cutout=0, mean=cfg.dataset.mean, std=cfg.dataset.std, crop_padding=cfg.search.crop_padding
    )
    gates_off = torch.zeros_like(space.probability)
    gates_on = gates_off.clone()
    gates_on[category, 0] = 1.0
    (plain, plain_labels), (inverted, inverted_labels) = (
        _seeded_batch(loader, category, gates_off),
        _seeded_batch(loader, category, gates_on),
    )
    assert plain.shape == inverted.shape == (BATCH, 3, 32, 32)
    assert plain.dtype == inverted.dtype == torch.float32
    assert plain_labels.dtype == torch.int64 and torch.equal(plain_labels, inverted_labels)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (cfg.dataset.mean, cfg.dataset.std))
    torch.testing.assert_close(inverted * std + mean, 1 - (plain * std + mean), atol=1e-5, rtol=0)


def test_dataset_needs_a_well_formed_batch_policy(bench, smoke):
    cfg, split = smoke
    space = SearchSpace()
    loader, _ = bench.official_loaders(
        split, space, BATCH, cutout=16, mean=cfg.dataset.mean, std=cfg.dataset.std, crop_padding=cfg.search.crop_padding
    )
    with pytest.raises(RuntimeError, match="set_batch_policy"):
        next(iter(loader))
    with pytest.raises(ValueError, match="gates must have shape"):
        loader.dataset.set_batch_policy(torch.tensor(0), torch.zeros(3))


def test_official_step_gives_the_magnitude_gradient_of_the_fired_op_only(bench, smoke):
    """The emulated step keeps Eq. 10-11: with β forcing one op of each pair on, only that op's m gets d/dm."""
    cfg, split = smoke
    run = SearchRun(cfg)
    pipeline = bench.OfficialPipeline(run, split)
    for slot in range(run.space.ops_per_sub_policy):
        with torch.no_grad():
            run.space.probability.zero_()[:, slot] = 1.0
        result = pipeline.step()
        fired = torch.zeros_like(run.space.magnitude, dtype=torch.bool)
        fired[int(pipeline.estimator.pending.category), slot] = True
        assert torch.isfinite(torch.tensor([result.train_loss, result.val_loss])).all()
        assert torch.equal(result.grad_magnitude != 0, fired)
