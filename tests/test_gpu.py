"""The CUDA path: the search step, Policy.apply_batch, the estimators and DeviceClock stay on the device, and the
CUDA ops agree with the CPU's. Marked ``gpu``; skipped where torch sees no CUDA device.

An op "leaves the device" when it makes a tensor elsewhere (``OffDevice``). Not counted: 0-dim tensors (scalars) and
the one host copy by design, the per-op counts that the ops read back to sort a batch (dada/ops/_batch.py).
"""

import importlib
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from dada import estimators
from dada.data.search_set import prepare_search_data
from dada.ops import OP_NAMES, apply_indexed
from dada.policy import Policy
from dada.search.loop import SearchRun
from dada.tracking import DeviceClock

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; torch sees none"),
]
DEVICE = torch.device("cuda")
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


OP_COUNTS = (len(OP_NAMES) + 1,)  # torch.bincount(key, minlength=len(OP_NAMES) + 1).tolist() in dada/ops/_batch.py


class OffDevice(TorchDispatchMode):
    """Records (op, shape) of every tensor with elements that an op makes off ``device``, but the per-op counts."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device, self.found = device, []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.found += [
            (str(func), tuple(tensor.shape))
            for tensor in tree_leaves(out)
            if isinstance(tensor, torch.Tensor)
            and tensor.ndim
            and tensor.device.type != self.device.type
            and not (tensor.shape == OP_COUNTS and not tensor.is_floating_point())
        ]
        return out


@pytest.mark.parametrize("estimator", ["gumbel", "relax", "reinforce"])
def test_search_step_stays_on_the_device(search_config, estimator):
    cfg = search_config(f"estimator={estimator}", f"device={DEVICE.type}")
    run = SearchRun(cfg)
    split = prepare_search_data(cfg.dataset, run.device)
    index = torch.arange(run.batch_size, device=run.device)
    train, val = run.train_batch(split, index), run.val_batch(split, index)
    with OffDevice(run.device) as off:
        result = run.optimizer.step(train, val, run.generator)
    assert off.found == []
    assert result.grad_alpha.device.type == result.grad_magnitude.device.type == DEVICE.type
    modules = (run.model, run.space, run.estimator)
    assert {tensor.device.type for module in modules for tensor in module.state_dict().values()} == {DEVICE.type}


def test_policy_apply_batch_keeps_the_images_on_the_device():
    """Without a generator the draws come from the images' device: nothing of the batch's size leaves it."""
    images, policy = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, device=DEVICE), Policy.load("cifar10")
    with OffDevice(DEVICE) as off:
        out = policy.apply_batch(images)
    assert out.device.type == DEVICE.type and out.dtype == torch.uint8 and out.shape == images.shape
    assert off.found == []


def test_policy_apply_batch_with_a_device_generator_stays_on_the_device():
    images, policy = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, device=DEVICE), Policy.load("cifar10")
    generator = torch.Generator(DEVICE).manual_seed(0)
    with OffDevice(DEVICE) as off:
        out = policy.apply_batch(images, generator=generator)
    assert out.device.type == DEVICE.type and off.found == []


@pytest.mark.parametrize("name", ["gumbel", "relax", "reinforce"])
def test_estimators_stay_on_the_device(name):
    options = {"relax": {"hidden_size": 100}}.get(name, {})
    estimator = estimators.create(name, num_categories=105, num_gates=210, temperature=0.5, **options).to(DEVICE)
    alpha = torch.full((105,), 1e-3, device=DEVICE)
    beta = torch.full((210,), 0.5, device=DEVICE)
    generator = torch.Generator(DEVICE).manual_seed(0)
    with OffDevice(DEVICE) as off:
        samples = [estimator.sample(alpha, beta, generator=generator) for _ in range(2)]
        losses = [(sample.category_weights[sample.category] * sample.gates.sum()).sum() for sample in samples]
        output = estimator.gradients_many(samples, losses, retain_graph=True)
        difference = estimator.difference_of_estimates(
            samples, losses, [loss * 0.5 for loss in losses], torch.tensor(2.0, device=DEVICE)
        )
    assert off.found == []
    tensors = [output.grad_alpha, output.grad_beta, difference.grad_alpha, difference.grad_beta]
    assert {tensor.device.type for tensor in tensors} == {DEVICE.type}


def test_device_clock_synchronises_and_counts_queued_kernels(monkeypatch):
    calls = []
    synchronize = torch.cuda.synchronize
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: (calls.append(device), synchronize(device)))
    matrix = torch.randn(4096, 4096, device=DEVICE)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    clock = DeviceClock(DEVICE)
    assert clock.unit == "GPU-hours"
    with clock:
        start.record()
        for _ in range(20):
            matrix = matrix @ matrix / 64  # queued: the launches return long before the kernels end
        end.record()
    assert [torch.device(device).type for device in calls] == [DEVICE.type, DEVICE.type]
    assert clock.seconds >= 0.95 * start.elapsed_time(end) / 1000


def test_cuda_ops_agree_with_the_cpu(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    device_check = importlib.import_module("device_check")
    parity = device_check.ops_parity(DEVICE, device_check.FULL)
    failed = {op: found for op, found in parity["ops"].items() if not found["passed"]}
    assert parity["passed"], f"beyond the tolerance ({parity['tolerance']}): {failed}"


def test_straight_through_gradient_on_the_device_matches_the_cpu():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(len(OP_NAMES), 3, 32, 32, generator=generator)
    op_index, centers = torch.arange(len(OP_NAMES)), torch.full((len(OP_NAMES), 2), 16.0)
    gradients = []
    for device in (torch.device("cpu"), DEVICE):
        level = torch.full((len(OP_NAMES),), 0.7, dtype=torch.float64, device=device, requires_grad=True)
        out = apply_indexed(images.to(device), op_index.to(device), level, sign=1, center=centers.to(device))
        out.sum().backward()
        gradients.append(level.grad.cpu())
    torch.testing.assert_close(gradients[1], gradients[0])
