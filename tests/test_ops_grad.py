"""DADA Eq. 10-11: the straight-through magnitude gradient of dada.ops.apply / apply_indexed."""

from __future__ import annotations

import pytest
import torch

from dada.ops import OP_NAMES, apply, apply_indexed

BATCH = 6
MASK = torch.tensor([True, False, True, True, False, True])


def _setup(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float images in [0, 1], per-sample levels that require grad, and the random weights of a loss."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH, 3, 10, 10, generator=generator)
    level = torch.rand(BATCH, generator=generator).requires_grad_()
    weights = torch.randn(BATCH, 3, 10, 10, generator=generator)
    return x, level, weights


def _eq11(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 11: dL/dm_i = sum over pixels (and channels) of dL/dx_hat, for the samples the op was applied to."""
    return weights.sum(dim=(1, 2, 3)) * mask


@pytest.mark.parametrize("op", OP_NAMES)
def test_magnitude_gradient_is_straight_through(op):
    x, level, weights = _setup(seed=OP_NAMES.index(op))
    center = torch.tensor([4.0, 6.0])
    out = apply(x, op, level, mask=MASK, sign=1, center=center)
    (gradient,) = torch.autograd.grad((out * weights).sum(), level)
    torch.testing.assert_close(gradient, _eq11(weights, MASK))
    assert torch.equal(out.detach(), apply(x, op, level.detach(), mask=MASK, sign=1, center=center))


def test_straight_through_holds_for_a_different_op_per_sample():
    x, level, weights = _setup(seed=20)
    op_index = torch.tensor([0, 5, 7, 9, 13, 14])
    out = apply_indexed(x, op_index, level, mask=MASK)
    (gradient,) = torch.autograd.grad((out * weights).sum(), level)
    torch.testing.assert_close(gradient, _eq11(weights, MASK))


def test_both_magnitudes_of_a_sub_policy_get_eq11():
    """x_hat = O2(O1(x; m1); m2): the straight-through passes O2, so m1 also gets the sum over x_hat's pixels."""
    x, first_level, weights = _setup(seed=21)
    second_level = torch.rand(BATCH).requires_grad_()
    first_mask = torch.tensor([True, True, False, False, True, True])
    second_mask = torch.tensor([True, False, True, False, True, False])
    first = apply_indexed(x, torch.tensor([4, 8, 2, 11, 7, 14]), first_level, mask=first_mask)
    out = apply_indexed(first, torch.tensor([13, 0, 9, 3, 5, 10]), second_level, mask=second_mask)
    gradients = torch.autograd.grad((out * weights).sum(), [first_level, second_level])
    torch.testing.assert_close(gradients[0], _eq11(weights, first_mask))
    torch.testing.assert_close(gradients[1], _eq11(weights, second_mask))


def test_shared_scalar_magnitude_sums_over_augmented_samples():
    x, _, weights = _setup(seed=22)
    level = torch.tensor(0.3, requires_grad=True)
    out = apply(x, "Solarize", level, mask=MASK)
    (gradient,) = torch.autograd.grad((out * weights).sum(), level)
    torch.testing.assert_close(gradient, _eq11(weights, MASK).sum())


def test_image_gradient_passes_straight_through():
    x, level, weights = _setup(seed=23)
    x.requires_grad_()
    out = apply(x, "Equalize", level.detach(), mask=MASK)
    (gradient,) = torch.autograd.grad((out * weights).sum(), x)
    torch.testing.assert_close(gradient, weights)


def test_no_graph_without_grad():
    x, level, _ = _setup(seed=24)
    assert not apply(x, "Rotate", level.detach()).requires_grad


def test_uint8_images_cannot_carry_the_gradient():
    _, level, _ = _setup(seed=25)
    with pytest.raises(ValueError, match="needs float images"):
        apply(torch.zeros(BATCH, 3, 4, 4, dtype=torch.uint8), "Rotate", level)
