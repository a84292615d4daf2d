"""Augmentation policies: sub-policies of ``(operation, probability, level)``, their files, their application.

A policy is what a DADA search exports and what an evaluation trains with (paper section 3.1, Eq. 1-2):
each image draws one sub-policy uniformly, and each of its operations fires with its probability. Fast
AutoAugment's policies apply the same way, so the released ones of both methods ship in ``dada/policies/``.

>>> from torchvision.transforms import v2
>>> v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(), Policy.load("dada-cifar10")])  # doctest: +SKIP
>>> Policy.load("fastaa-svhn")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import numbers
import random as _random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image
from torchvision.transforms import v2

from dada.files import MiB, read_json, write_atomic
from dada.ops import OP_NAMES, apply_indexed, apply_pil, check_image_range
from dada.ops._batch import _uniform

# The released policies in dada/policies/<family>-<data set>.json; each file's "source" cites its origin and licence.
SHIPPED_POLICIES: dict[str, tuple[str, ...]] = {
    "dada": ("cifar10", "cifar100", "svhn", "imagenet"),  # Li et al. 2020, the official genotype.py
    "fastaa": ("cifar10", "svhn", "imagenet"),  # Lim et al. 2019, kakaobrain's archive.py
}
NAMED_POLICIES = SHIPPED_POLICIES["dada"]
POLICY_CAP = MiB  # a policy of all 105 two-op sub-policies is 10 KiB


def _is_number(value: Any) -> bool:
    """A real number that is no bool (JSON's ``true`` would otherwise pass as 1)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Operation:
    """One augmentation: an op from ``dada.ops.OPS``, its probability of firing and its level, both in [0, 1]."""

    name: str
    probability: float
    level: float

    def __post_init__(self):
        if self.name not in OP_NAMES:
            raise ValueError(f"unknown operation {self.name!r}; valid: {', '.join(OP_NAMES)}")
        for field in ("probability", "level"):
            value = getattr(self, field)
            if not _is_number(value):
                raise ValueError(f"{self.name}: {field}={value!r} is a {type(value).__name__}, not a number in [0, 1]")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{self.name}: {field}={value} is outside [0, 1]")


@dataclass(frozen=True)
class SubPolicy:
    """Operations applied in sequence (Eq. 2); ``weight`` is softmax(α) of the sub-policy when it came from a search."""

    operations: tuple[Operation, ...]
    weight: float | None = None

    def __post_init__(self):
        if self.weight is not None and not _is_number(self.weight):
            raise ValueError(f"weight={self.weight!r} is a {type(self.weight).__name__}, not a number or null")

    def __str__(self) -> str:
        return " -> ".join(f"{op.name}(p={op.probability:.2f}, m={op.level:.2f})" for op in self.operations)


class Policy(v2.Transform):
    """A DADA/Fast-AA policy, usable as a torchvision v2 transform and batched on a device.

    Calling it on one image (PIL or tensor [C,H,W]) draws one sub-policy; ``apply_batch`` draws one
    per image of a [B,C,H,W] batch in a single vectorised pass.
    """

    def __init__(self, sub_policies: Sequence[SubPolicy], name: str = "custom", source: str | None = None):
        super().__init__()
        if not sub_policies:
            raise ValueError("a policy needs at least one sub-policy")
        lengths = {len(s.operations) for s in sub_policies}
        if len(lengths) != 1:
            raise ValueError(f"all sub-policies must have the same number of operations, got {sorted(lengths)}")
        self.sub_policies = tuple(sub_policies)
        self.name = name
        self.source = source
        self._op_index, self._probability, self._level = self._as_tensors()

    def _as_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ops = [[(OP_NAMES.index(op.name), op.probability, op.level) for op in s.operations] for s in self.sub_policies]
        table = torch.tensor(ops, dtype=torch.float64)
        return table[..., 0].long(), table[..., 1].float(), table[..., 2].float()

    # -- application -------------------------------------------------------------------------------------------

    def apply_batch(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch [B,C,H,W] (uint8, or float in [0,1]): a random sub-policy per image, each op with its p.

        C is 3, or 1 for grey images: those are augmented as three equal channels, which every op keeps equal (Cutout
        fills with its RGB grey's first channel, 125), and come back with one. The draws come from ``generator`` on
        its own device (the default generator of the images' device when None) and are moved to the images' device,
        so a CPU or a CUDA generator both work.
        """
        if isinstance(images, torch.Tensor) and images.ndim == 4 and images.shape[1] not in (1, 3):
            raise ValueError(f"expected an image batch [B, 3, H, W] or grey [B, 1, H, W], got {tuple(images.shape)}")
        if images.ndim == 4 and images.shape[1] == 1:
            return self.apply_batch(images.expand(-1, 3, -1, -1), generator)[:, :1]
        check_image_range(images)
        device = images.device
        chosen = draw_indices(len(self.sub_policies), images.shape[0], generator, device)
        op_index, probability, level = (t.to(device)[chosen] for t in (self._op_index, self._probability, self._level))
        fires = _uniform(probability.shape, generator, device) < probability
        for stage in range(op_index.shape[1]):
            images = apply_indexed(
                images, op_index[:, stage], level[:, stage], mask=fires[:, stage], generator=generator
            )
        return images

    def apply_pil(self, image: Image.Image) -> Image.Image:
        """Fast AA's per-image path: one random sub-policy, each op applied with its probability."""
        for op in _random.choice(self.sub_policies).operations:
            if _random.random() < op.probability:
                image = apply_pil(image, op.name, op.level)
        return image

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, Image.Image):
            return self.apply_pil(inpt)
        if isinstance(inpt, torch.Tensor) and inpt.ndim == 3:
            return self.apply_batch(inpt.unsqueeze(0))[0]
        if isinstance(inpt, torch.Tensor) and inpt.ndim == 4:
            return self.apply_batch(inpt)
        return inpt

    # -- files -------------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        subs = []
        for s in self.sub_policies:
            entry: dict[str, Any] = {"operations": [[op.name, op.probability, op.level] for op in s.operations]}
            if s.weight is not None:
                entry["weight"] = s.weight
            subs.append(entry)
        return {"name": self.name, "source": self.source, "sub_policies": subs}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Policy":
        try:
            subs = [
                SubPolicy(tuple(Operation(*op) for op in s["operations"]), s.get("weight"))
                for s in data["sub_policies"]
            ]
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(
                f"not a policy document (expected sub_policies: [{{operations: [[name, p, m], ...]}}]): {error!r}"
            ) from error
        empty = [index for index, sub in enumerate(subs) if not sub.operations]
        if empty:
            raise ValueError(
                f"sub-policies {empty} have an empty operations list; each needs at least one [name, p, m]"
            )
        return cls(subs, name=data.get("name", "custom"), source=data.get("source"))

    def save(self, path: str | Path) -> Path:
        """Write JSON, one sub-policy per line so that diffs stay readable; atomically, never through a link."""
        path = Path(path)
        body = self.to_dict()
        lines = ",\n".join("  " + json.dumps(s) for s in body.pop("sub_policies"))
        head = json.dumps(body, indent=1)[:-2]
        return write_atomic(path, f'{head},\n "sub_policies": [\n{lines}\n ]\n}}\n')

    @classmethod
    def load(cls, spec: str | Path) -> "Policy":
        """Load a shipped policy (``cifar10`` = ``dada-cifar10``, ``fastaa-svhn``) or a JSON file from ``save``."""
        shipped = _shipped(str(spec))
        if shipped is not None:
            return load_named(*shipped)
        path = Path(spec)
        if not path.is_file():
            names = [f"{family}-{name}" for family, names in SHIPPED_POLICIES.items() for name in names]
            raise FileNotFoundError(f"no policy file at {path}; shipped policies: {', '.join(names)}")
        document = read_json(path, "policy file", cap=POLICY_CAP)  # its errors name the file
        try:
            return cls.from_dict(document)
        except ValueError as error:
            raise ValueError(
                f"policy file {path} cannot be read as a policy: {error}. Give a JSON file written by "
                f"Policy.save or a search's policy.json, or a shipped name"
            ) from None

    @classmethod
    def from_json(cls, text: str) -> "Policy":
        """A policy from the text of a ``policy.json`` (what ``save`` writes and a search exports)."""
        return cls.from_dict(json.loads(text))

    def to_archive(self) -> list[list[list[Any]]]:
        """Fast AutoAugment's archive format: ``[[[name, prob, level], [name, prob, level]], ...]``."""
        return [[[op.name, op.probability, op.level] for op in s.operations] for s in self.sub_policies]

    @classmethod
    def from_archive(cls, archive: Sequence[Sequence[Sequence[Any]]], name: str = "archive") -> "Policy":
        return cls([SubPolicy(tuple(Operation(*op) for op in s)) for s in archive], name=name)

    @classmethod
    def random(cls, num_sub_policies: int, ops_per_sub_policy: int, seed: int) -> "Policy":
        """A baseline from the same search space: ops, probabilities and levels drawn uniformly, seeded."""
        generator = torch.Generator().manual_seed(seed)
        ops = torch.randint(len(OP_NAMES), (num_sub_policies, ops_per_sub_policy), generator=generator)
        values = torch.rand(num_sub_policies, ops_per_sub_policy, 2, generator=generator, dtype=torch.float64)
        subs = [
            SubPolicy(
                tuple(
                    Operation(OP_NAMES[o], round(float(p), 4), round(float(m), 4))
                    for o, (p, m) in zip(row_ops, row_values)
                )
            )
            for row_ops, row_values in zip(ops.tolist(), values)
        ]
        return cls(subs, name=f"random-{num_sub_policies}x{ops_per_sub_policy}-seed{seed}")

    def __len__(self) -> int:
        return len(self.sub_policies)

    def __repr__(self) -> str:
        shown = "\n".join(f"  {i:2d}: {s}" for i, s in enumerate(self.sub_policies[:5]))
        more = f"\n  ... {len(self) - 5} more" if len(self) > 5 else ""
        return f"Policy(name={self.name!r}, sub_policies={len(self)}\n{shown}{more})"


def load_named(name: str, family: str = "dada") -> Policy:
    """A released policy of ``family`` (a key of ``SHIPPED_POLICIES``: dada, fastaa) for data set ``name``."""
    if family not in SHIPPED_POLICIES:
        raise ValueError(f"unknown policy family {family!r}; valid: {', '.join(SHIPPED_POLICIES)}")
    if name not in SHIPPED_POLICIES[family]:
        raise ValueError(f"unknown shipped {family} policy {name!r}; valid: {', '.join(SHIPPED_POLICIES[family])}")
    text = resources.files("dada").joinpath("policies", f"{family}-{name}.json").read_text()
    return Policy.from_dict(json.loads(text))


def _shipped(spec: str) -> tuple[str, str] | None:
    """``(name, family)`` of a shipped policy's spec (``cifar10``, ``dada-cifar10``, ``dada:cifar10``), else None."""
    for family, names in SHIPPED_POLICIES.items():
        for separator in "-:":
            name = spec.removeprefix(family + separator)
            if name != spec and name in names:
                return name, family
    return (spec, "dada") if spec in SHIPPED_POLICIES["dada"] else None


def draw_indices(high: int, count: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """``count`` integers in [0, high) drawn by ``generator`` on its own device, returned on ``device``."""
    source = generator.device if generator is not None else torch.device(device)
    return torch.randint(high, (count,), generator=generator, device=source).to(device)
