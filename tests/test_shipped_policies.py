"""The shipped policies: every number is the released one, and the README's rounding would have changed ops."""

import json
from pathlib import Path

import pytest
import torch

from dada.ops import OP_NAMES, OPS, apply
from dada.policy import NAMED_POLICIES, SHIPPED_POLICIES, load_named

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def _reference(name: str) -> dict:
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"no reference file at {path} (shared/ beside the repository)")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", NAMED_POLICIES)
def test_dada_policies_are_the_official_genotypes_exactly(name):
    official = _reference("dada-official-policies.json")["policies"][name]
    policy = load_named(name)
    assert policy.to_archive() == official["policy"]  # float equality: no rounding anywhere
    assert official["genotype"] in policy.source and "MIT License" in policy.source


def _readme(level: float) -> float:
    """The official README's "Found Policy" prints every value with 2 decimals."""
    return round(level, 2)


def test_readme_rounding_changes_cifar10_posterize_bits_and_a_solarize_threshold():
    subs = load_named("cifar10").sub_policies
    posterize = {index: op.level for index, sub in enumerate(subs) for op in sub.operations if op.name == "Posterize"}
    bits = {
        index: (OPS["Posterize"].value(level), OPS["Posterize"].value(_readme(level)))
        for index, level in posterize.items()
    }
    assert bits == {10: (5.0, 6.0), 14: (5.0, 6.0)}  # released: 5 bits; the rounded 0.50 would keep 6

    grey = torch.arange(256, dtype=torch.uint8).expand(1, 3, 4, 256)
    changed = {}
    for index, sub in enumerate(subs):
        for op in sub.operations:
            if op.name == "Solarize":
                differs = apply(grey, "Solarize", op.level) != apply(grey, "Solarize", _readme(op.level))
                changed[index] = differs[0, 0, 0].nonzero().flatten().tolist()
    assert changed == {20: [107], 23: []}  # threshold 106.4 vs 107.5: grey level 107 is inverted only when exact


@pytest.mark.parametrize("name", SHIPPED_POLICIES["fastaa"])
def test_fastaa_policies_are_kakaobrains_archive_exactly(name):
    archive = _reference("fast-autoaugment-policies.json")["policies"][name]
    policy = load_named(name, "fastaa")
    assert len(policy) == len(archive) and policy.to_archive() == archive
    assert "kakaobrain/fast-autoaugment" in policy.source and "MIT License" in policy.source


def test_fastaa_archive_uses_only_ops_of_the_search_space():
    archives = _reference("fast-autoaugment-policies.json")["policies"]
    assert sorted(archives) == sorted(SHIPPED_POLICIES["fastaa"])
    used = {op[0] for archive in archives.values() for sub in archive for op in sub}
    assert used <= set(OP_NAMES), used - set(OP_NAMES)
