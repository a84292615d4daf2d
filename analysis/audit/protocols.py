"""The published search protocols of Table 1(a) (``analysis/search_protocols.yaml``), as phases of passes.

A phase is ``runs`` independent passes of ``epochs`` over ``images`` images at ``batch`` images a step; its steps
are ``runs * epochs * ceil(images / batch)``. Every protocol number must carry a source: a citation, or a text
starting ``assumption:``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PROTOCOLS = Path(__file__).resolve().parent.parent / "search_protocols.yaml"
KINDS = ("train", "forward", "dada")
NUMBERS = ("network", "input_size", "classes", "images", "epochs", "runs", "batch")
ASSUMPTION = "assumption:"


@dataclass(frozen=True)
class Phase:
    """``runs`` x ``epochs`` passes over ``images`` images of ``network``; ``kind`` train, forward or dada."""

    kind: str
    network: str = ""
    input_size: int = 0
    classes: int = 0
    images: int = 0
    epochs: int = 0
    runs: int = 1
    batch: int = 1
    experiment: str = ""  # kind dada: the conf/experiment to compose at scale=paper
    sources: dict = field(default_factory=dict, compare=False)

    @property
    def steps(self) -> int:
        """Steps of the whole phase: runs x epochs x ceil(images / batch)."""
        return self.runs * self.epochs * math.ceil(self.images / self.batch)

    @property
    def images_processed(self) -> int:
        return self.runs * self.epochs * self.images

    @property
    def assumed(self) -> list[str]:
        """The protocol numbers whose source is an assumption."""
        return [name for name, text in self.sources.items() if str(text).startswith(ASSUMPTION)]


@dataclass(frozen=True)
class Claim:
    """One non-empty cell of Table 1(a): a method's search on a data set, on a device, as phases."""

    dataset: str
    method: str
    device: str
    device_source: str
    phases: tuple[Phase, ...]
    note: str = ""


def _phase(entry: dict, where: str) -> Phase:
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    phase = Phase(**entry)
    required = ("protocol",) if kind == "dada" else NUMBERS
    missing = [name for name in required if name not in phase.sources]
    if missing:
        raise ValueError(f"{where}: no source (citation or 'assumption: ...') for {', '.join(missing)}")
    return phase


def load_claims(path: str | Path = PROTOCOLS) -> list[Claim]:
    """Every claim of the protocol file, in its order, each phase checked for a kind and a source per number."""
    spec = yaml.safe_load(Path(path).read_text())
    claims = []
    for entry in spec["claims"]:
        dataset, method = entry["dataset"], entry["method"]
        try:
            phases = spec[method][dataset]
        except KeyError:
            raise ValueError(f"{path}: claim {method} / {dataset} has no protocol under {method}: {dataset}") from None
        where = f"{path}: {method} / {dataset}"
        claims.append(
            Claim(
                dataset,
                method,
                entry["device"],
                spec["device_sources"][method],
                tuple(_phase(phase, f"{where} phase {i + 1}") for i, phase in enumerate(phases)),
                entry.get("note", ""),
            )
        )
    return claims


def load_verdicts(path: str | Path = PROTOCOLS) -> dict:
    """The utilisation thresholds and their reasoning."""
    return yaml.safe_load(Path(path).read_text())["verdicts"]
