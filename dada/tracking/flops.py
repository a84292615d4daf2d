"""Floating-point operations of a run, counted with ``torch.utils.flop_counter.FlopCounterMode``.

The counter counts matrix products and convolutions, forward and backward (a multiply-add is 2 FLOPs); element-wise
ops, normalisation, the augmentation ops and optimiser updates count zero. Every step of a run has the same shapes,
so a run counts one representative step and multiplies by its number of steps. ``training_step_flops`` and
``forward_flops`` count on meta tensors: nothing is computed and the model's weights and statistics stay as they are.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[..., object], *args, **kwargs) -> int:
    """The FLOPs that ``fn(*args, **kwargs)`` runs (the call happens, with its effects)."""
    with FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def _meta_state(model: nn.Module) -> dict[str, torch.Tensor]:
    state = {
        name: torch.empty_like(weight, device="meta").requires_grad_(weight.requires_grad)
        for name, weight in model.named_parameters()
    }
    state.update({name: torch.empty_like(buffer, device="meta") for name, buffer in model.named_buffers()})
    return state


def training_step_flops(model: nn.Module, batch_shape: Sequence[int]) -> int:
    """Forward, cross-entropy and backward to the weights of one training batch of ``batch_shape`` [B,C,H,W]."""
    state = _meta_state(model)
    images = torch.empty(tuple(batch_shape), device="meta")
    labels = torch.zeros(batch_shape[0], dtype=torch.long, device="meta")
    training = model.training
    model.train()
    try:
        with FlopCounterMode(display=False) as counter:
            loss = nn.functional.cross_entropy(functional_call(model, state, (images,)), labels)
            torch.autograd.grad(loss, [weight for weight in state.values() if weight.requires_grad])
    finally:
        model.train(training)
    return counter.get_total_flops()


def forward_flops(model: nn.Module, batch_shape: Sequence[int]) -> int:
    """One forward pass in evaluation mode of a batch of ``batch_shape`` [B,C,H,W]."""
    state = _meta_state(model)
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            functional_call(model, state, (torch.empty(tuple(batch_shape), device="meta"),))
    finally:
        model.train(training)
    return counter.get_total_flops()
