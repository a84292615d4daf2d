"""Seeded, stratified subsets for the paper's reduced-data search protocol (Sec. 4.1-4.2).

Policy search runs on a reduced training set (4,000 images for CIFAR-10/100, 1,000 from SVHN's core
training set, 6,000 from 120 random ImageNet classes), split in half: one half trains the network
weights, the other is the validation set for the policy parameters. The official DADA code draws these
with scikit-learn's ``StratifiedShuffleSplit(random_state=0)``; here the same kind of split is drawn
with a ``torch.Generator``, so one seed always gives the same indices and no global RNG is touched.

Stratified means each class keeps its share of the labels: on balanced data (CIFAR, Fashion-MNIST)
4,000 of 10 classes is exactly 400 per class. Rounding leftovers go to the classes with the largest
fractional quotas, ties to the lower class index.
"""

from collections.abc import Sequence

import torch
from torch import Tensor


def _as_labels(labels: Tensor | Sequence[int]) -> Tensor:
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.dim() != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of class indices, got shape {list(labels.shape)}")
    if labels.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    return labels


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _proportional_quotas(counts: Tensor, size: int) -> Tensor:
    """Per-class sample counts summing to ``size``, proportional to ``counts`` (largest remainders round up)."""
    scaled = counts * size
    total = int(counts.sum())
    quotas = scaled // total
    shortfall = size - int(quotas.sum())
    by_remainder = torch.argsort(scaled % total, descending=True, stable=True)
    quotas[by_remainder[:shortfall]] += 1
    return quotas


def _stratified_split(labels: Tensor, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Split positions of ``labels`` into a stratified random ``size``-subset and the rest, both sorted."""
    if not 0 < size <= len(labels):
        raise ValueError(f"size must be in [1, {len(labels)}] (the number of labels), got {size}")
    counts = torch.bincount(labels)
    quotas = _proportional_quotas(counts, size)
    shuffled = torch.randperm(len(labels), generator=generator)
    grouped = shuffled[torch.sort(labels[shuffled], stable=True).indices]  # by class, random within a class
    grouped_labels = labels[grouped]
    class_starts = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.arange(len(labels)) - class_starts[grouped_labels]
    chosen = rank_in_class < quotas[grouped_labels]
    return grouped[chosen].sort().values, grouped[~chosen].sort().values


def reduced_indices(labels: Tensor | Sequence[int], size: int, seed: int) -> Tensor:
    """Sorted indices of a stratified random ``size``-subset: the reduced data set of Sec. 4.2.

    The paper uses 4,000 images for CIFAR-10 and CIFAR-100 and 1,000 from SVHN's core training set.
    """
    chosen, _ = _stratified_split(_as_labels(labels), size, _generator(seed))
    return chosen


def search_split(labels: Tensor | Sequence[int], train_fraction: float = 0.5, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Stratified ``(train, val)`` positions into ``labels``: Sec. 4.1 splits the reduced set in half.

    ``train`` fits the network weights, ``val`` the policy parameters. Defaults: the paper's half, and
    seed 0 as the official code's ``random_state=0``.
    """
    labels = _as_labels(labels)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    train_size = round(len(labels) * train_fraction)
    if not 0 < train_size < len(labels):
        raise ValueError(f"train_fraction {train_fraction} of {len(labels)} labels leaves one side empty")
    return _stratified_split(labels, train_size, _generator(seed))


def reduced_imagenet_indices(
    targets: Tensor | Sequence[int], num_classes: int, size: int, seed: int, classes: Sequence[int] | None = None
) -> tuple[Tensor, dict[int, int]]:
    """Reduced ImageNet (Sec. 4.2, as Fast AA): ``size`` images from ``num_classes`` classes, ``classes`` if given
    (the official list, ``dada/reference/reduced-imagenet-120.json``), else random ones drawn from ``seed``.

    The paper uses 6,000 images from 120 classes (about 50 a class). Returns the sorted indices into
    ``targets`` and ``label_map``, original class -> new class in ``0..num_classes-1`` (in the order of
    the original class indices); ``label_map.__getitem__`` serves as an ImageFolder ``target_transform``.
    """
    targets = _as_labels(targets)
    present = torch.unique(targets)
    if not 0 < num_classes <= len(present):
        raise ValueError(f"num_classes must be in [1, {len(present)}] (the classes present), got {num_classes}")
    generator = _generator(seed)
    if classes is None:
        kept_classes = present[torch.randperm(len(present), generator=generator)[:num_classes]].sort().values
    else:
        kept_classes = _listed_classes(classes, present, num_classes)
    candidates = torch.nonzero(torch.isin(targets, kept_classes)).squeeze(1)
    new_labels = torch.searchsorted(kept_classes, targets[candidates])
    chosen, _ = _stratified_split(new_labels, size, generator)
    label_map = {int(original): new for new, original in enumerate(kept_classes)}
    return candidates[chosen], label_map


def _listed_classes(classes: Sequence[int], present: Tensor, num_classes: int) -> Tensor:
    """``classes`` as a sorted tensor, checked: ``num_classes`` distinct classes, each present in the data."""
    kept = torch.tensor(sorted(set(classes)), dtype=present.dtype)
    if len(kept) != len(classes) or len(kept) != num_classes:
        raise ValueError(
            f"the class list holds {len(classes)} entries ({len(kept)} distinct); it must hold "
            f"{num_classes} distinct classes, dataset.search_classes"
        )
    missing = kept[~torch.isin(kept, present)]
    if len(missing):
        raise ValueError(f"the class list names classes the data set lacks: {missing.tolist()[:10]}")
    return kept
