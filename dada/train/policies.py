"""The evaluated policies, by name: what runs between crop+flip and normalisation (then Cutout); Fast AA's
runs before crop+flip, as its code does (``policy.before_crop``, FIDELITY.md row 14).

``create_augmentation(config, dataset, seed)`` turns a ``PolicyConfig`` into an `Augmentation`: a
torchvision-compatible transform for PIL images (the DataLoader path) and, where the policy draws per
image in one vectorised call (DADA, Fast AA, random and the identity), a batched ``apply_batch`` for the device.
torchvision's AutoAugment, RandAugment and TrivialAugment draw one op per call, so they run per image
in DataLoader workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torchvision.transforms import v2

from dada.layout import RunFolder
from dada.policy import SHIPPED_POLICIES, Policy, load_named

AUTOAUGMENT_POLICIES = {
    "cifar10": v2.AutoAugmentPolicy.CIFAR10,
    "svhn": v2.AutoAugmentPolicy.SVHN,
    "imagenet": v2.AutoAugmentPolicy.IMAGENET,
}
# The released policy a data set trains with when policy.source is null: the first of its list that the method
# released. CIFAR-100 falls back to CIFAR-10's, as AutoAugment and Fast AA evaluate it (DADA released its own).
# Fashion-MNIST has no released policy: it takes CIFAR-10's, as the smoke tables do.
DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar10",),
    "cifar100": ("cifar100", "cifar10"),
    "svhn": ("svhn",),
    "imagenet": ("imagenet",),
    "fashion-mnist": ("cifar10",),
}


def default_source(policy: str, dataset: str, released: Sequence[str], hint: str = "") -> str:
    """The policy of ``released`` that data set ``dataset`` uses by default; ValueError asking for policy.source."""
    for source in DEFAULT_SOURCES.get(dataset, ()):
        if source in released:
            return source
    raise ValueError(
        f"policy={policy} has no released policy for data set {dataset!r}: set policy.source to one "
        f"of {', '.join(released)}{hint}"
    )


class NoPolicy(v2.Transform):
    """The identity: the baseline's and Cutout's "policy", on PIL images and on batches alike."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return inpt

    def apply_batch(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return images

    def __repr__(self) -> str:
        return "NoPolicy()"


def _no_policy(config, dataset: str, seed: int) -> NoPolicy:
    return NoPolicy()


def _autoaugment(config, dataset: str, seed: int) -> v2.AutoAugment:
    source = config.source or default_source("autoaugment", dataset, tuple(AUTOAUGMENT_POLICIES))
    if source not in AUTOAUGMENT_POLICIES:
        raise ValueError(f"autoaugment: policy.source={source!r} is not one of {', '.join(AUTOAUGMENT_POLICIES)}")
    return v2.AutoAugment(AUTOAUGMENT_POLICIES[source])


def _randaugment(config, dataset: str, seed: int) -> v2.RandAugment:
    return v2.RandAugment(num_ops=config.num_ops, magnitude=config.magnitude)


def _trivialaugment(config, dataset: str, seed: int) -> v2.TrivialAugmentWide:
    return v2.TrivialAugmentWide()


def _random(config, dataset: str, seed: int) -> Policy:
    return Policy.random(config.num_sub_policies, config.num_ops, seed=seed)


def _dada(config, dataset: str, seed: int) -> Policy:
    return Policy.load(search_policy_file(_dada_source(config, dataset), dataset))


def search_policy_file(source: str, dataset: str) -> str:
    """The policy file of ``source``: a search's run folder gives its ``policy.json``, checked as the detection
    checks its backbone run: the search finished (its summary readable), and on ``dataset`` or a warning. A
    ``policy.json`` inside a run folder is checked alike; a shipped name or another file passes as it is."""
    path = Path(source)
    folder = RunFolder(path if path.is_dir() else path.parent)
    if not (path.is_dir() or (path.name == RunFolder.POLICY and folder.summary.exists())):
        return source
    advice = "run it to the end first, or point policy.source at a finished search or a policy file"
    typed = folder.finished_run("search", f"policy.source={source}: search", advice)
    if typed.dataset != dataset:
        warnings.warn(
            f"policy.source={source} was searched on {typed.dataset}; this evaluation trains on {dataset}",
            RuntimeWarning,
        )
    return source if path.is_file() else str(folder.policy)


def _dada_source(config, dataset: str) -> str:
    """A shipped DADA policy (by default the data set's) or the path of a search's policy.json."""
    return config.source or default_source(
        "dada", dataset, SHIPPED_POLICIES["dada"], " or a search's run folder or policy.json"
    )


def _fastaa(config, dataset: str, seed: int) -> Policy:
    return load_named(config.source or default_source("fastaa", dataset, SHIPPED_POLICIES["fastaa"]), "fastaa")


POLICIES: dict[str, Callable[[Any, str, int], v2.Transform]] = {
    "none": _no_policy,
    "cutout": _no_policy,
    "autoaugment": _autoaugment,
    "randaugment": _randaugment,
    "trivialaugment": _trivialaugment,
    "random": _random,
    "dada": _dada,
    "fastaa": _fastaa,
}


@dataclass(frozen=True)
class Augmentation:
    """A policy ready for the pipeline: ``transform`` for PIL images; ``apply_batch`` when ``on_device``."""

    name: str
    source: str | None
    transform: v2.Transform
    on_device: bool
    cutout: bool
    before_crop: bool = False  # the policy runs before crop and flip (Fast AA's order), not after (DADA's)

    def apply_batch(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 [B,C,H,W] in, uint8 out: one draw per image (the on-device path)."""
        if not self.on_device:
            raise RuntimeError(f"{self!r} runs per image in the DataLoader, not on batches")
        return self.transform.apply_batch(images, generator)

    def __repr__(self) -> str:
        return (
            f"Augmentation(name={self.name!r}, source={self.source!r}, on_device={self.on_device}, "
            f"cutout={self.cutout}, before_crop={self.before_crop}, transform={self.transform!r})"
        )


def _place(name: str, transform: v2.Transform, requested: bool | None, in_memory: bool) -> bool:
    """Batched on the device unless asked otherwise, when the policy draws per image and the data is in memory."""
    batched = hasattr(transform, "apply_batch")
    if requested is None:
        return batched and in_memory
    if requested and not batched:
        raise ValueError(
            f"policy {name!r} ({type(transform).__name__}) draws one op per call, so it runs per "
            f"image in DataLoader workers: set policy.on_device=false (or leave it null)"
        )
    if requested and not in_memory:
        raise ValueError(
            "policy.on_device=true needs an in-memory data set; this one is read from disk by a "
            "DataLoader: set policy.on_device=false (or leave it null)"
        )
    return requested


def create_augmentation(config, dataset: str, seed: int, in_memory: bool = True) -> Augmentation:
    """The `Augmentation` for ``config`` (a ``PolicyConfig``) on data set ``dataset``, seeded by the run seed."""
    if config.name not in POLICIES:
        raise ValueError(f"unknown policy {config.name!r}; valid choices: {', '.join(POLICIES)}")
    transform = POLICIES[config.name](config, dataset, seed)
    on_device = _place(config.name, transform, config.on_device, in_memory)
    source = _describe(config, dataset, transform)
    return Augmentation(config.name, source, transform, on_device, config.cutout, config.before_crop)


def _describe(config, dataset: str, transform: v2.Transform) -> str | None:
    """Where the policy came from, for the summary: the file or shipped name, the seed, or the settings."""
    if config.name == "dada":
        return _dada_source(config, dataset)
    if isinstance(transform, Policy):
        return transform.name
    if isinstance(transform, v2.AutoAugment):
        return transform.policy.value
    if isinstance(transform, v2.RandAugment):
        return f"rand-n{transform.num_ops}-m{transform.magnitude}"
    return None
