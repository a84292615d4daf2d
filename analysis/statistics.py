"""Seed statistics: mean, sample standard deviation and 95 % t confidence interval; paired t-tests on shared seeds.

summarize([1.0, 2.0, 3.0])                      # mean 2, sd 1, n 3, half_width t(0.975, 2) * 1 / sqrt(3)
paired({0: 5.0, 1: 7.0}, {0: 4.0, 1: 5.0})      # the differences on seeds 0 and 1, their CI and p-value
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation, count and the half-width of the 95 % t interval (NaN below two values)."""

    mean: float
    sd: float
    n: int
    half_width: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


@dataclass(frozen=True)
class Paired:
    """The differences (value - reference) on the shared seeds: their `Summary`, the seeds and the two-sided p."""

    difference: Summary
    seeds: tuple[int, ...]
    p_value: float


def t_half_width(sd: float, n: int, confidence: float = CONFIDENCE) -> float:
    """``t_{(1+confidence)/2, n-1} * sd / sqrt(n)``; NaN for fewer than two values."""
    if n < 2:
        return math.nan
    return float(stats.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)


def summarize(values: Iterable[float]) -> Summary:
    """Mean, sample sd (ddof 1) and 95 % t interval of ``values`` (NaN values dropped)."""
    kept = [float(value) for value in values if not math.isnan(value)]
    n = len(kept)
    mean = math.fsum(kept) / n if n else math.nan
    sd = math.sqrt(math.fsum((value - mean) ** 2 for value in kept) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, sd, n, t_half_width(sd, n))


def t_test_p(summary: Summary) -> float:
    """Two-sided p of the one-sample t-test of mean 0; NaN below two values or when the values do not vary."""
    if summary.n < 2 or summary.sd == 0:
        return math.nan
    t = summary.mean / (summary.sd / math.sqrt(summary.n))
    return float(2 * stats.t.sf(abs(t), summary.n - 1))


def paired(values: Mapping[int, float], reference: Mapping[int, float]) -> Paired:
    """Paired t-test of ``values`` against ``reference`` (each seed -> value) on the seeds both have."""
    seeds = tuple(
        sorted(
            seed
            for seed in set(values) & set(reference)
            if not (math.isnan(values[seed]) or math.isnan(reference[seed]))
        )
    )
    difference = summarize(values[seed] - reference[seed] for seed in seeds)
    return Paired(difference, seeds, t_test_p(difference))


def mean_pairwise_overlap(overlaps: Mapping[str, Mapping[str, float]]) -> tuple[float, int]:
    """Mean top-k overlap over the unordered pairs of seeds, and the number of pairs.

    ``overlaps`` maps each seed folder (``seed0``) to its ``top_overlap_with_other_seeds``; only pairs whose two
    seeds are both keys count, and a pair reported from both sides counts once (the mean of its two values).
    """
    pairs: dict[frozenset, list[float]] = {}
    for seed, others in overlaps.items():
        for other, fraction in others.items():
            if other in overlaps and other != seed:
                pairs.setdefault(frozenset((seed, other)), []).append(float(fraction))
    if not pairs:
        return math.nan, 0
    return math.fsum(sum(values) / len(values) for values in pairs.values()) / len(pairs), len(pairs)
