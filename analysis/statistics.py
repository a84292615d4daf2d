"""Seed statistics: mean, sample standard deviation and 95 % t confidence interval; paired t-tests on shared seeds;
and the tests of a pre-registered study: Holm's correction, an exact sign-flip permutation test, TOST equivalence,
and the power of a paired t-test.

summarize([1.0, 2.0, 3.0])                      # mean 2, sd 1, n 3, half_width t(0.975, 2) * 1 / sqrt(3)
paired({0: 5.0, 1: 7.0}, {0: 4.0, 1: 5.0})      # the differences on seeds 0 and 1, their CI and p-value
holm([0.01, 0.04, 0.03])                        # [0.03, 0.06, 0.06]
seeds_for_power(0.7, 0.733, alpha=0.05 / 3)     # 15 seeds for 80 % power
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import optimize, stats

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


# -- the tests of a pre-registered comparison ------------------------------------------------------------------------

EXACT_SIGN_FLIPS = 20  # up to this many differences the permutation test enumerates all 2^n sign flips


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order: the i-th smallest p times (m - i + 1), made
    non-decreasing in that order and capped at 1. Reject where adjusted p <= alpha: the family-wise error <= alpha."""
    m = len(p_values)
    adjusted, running = [math.nan] * m, 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def sign_flip_p(differences: Sequence[float]) -> float:
    """Two-sided p of the paired permutation test: the share of sign assignments of the differences whose mean is at
    least as far from 0 as the observed one (exact: all 2^n, the observed included). Distribution-free: it assumes
    only that a difference is as likely positive as negative under the null. NaN without differences."""
    values = np.asarray(differences, dtype=float)
    if len(values) == 0:
        return math.nan
    if len(values) > EXACT_SIGN_FLIPS:
        raise ValueError(f"{len(values)} differences: the exact test enumerates at most {EXACT_SIGN_FLIPS}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(values))))
    observed = abs(values.sum())
    tolerance = 1e-9 * max(1.0, np.abs(values).sum())  # the observed sum must count itself despite rounding
    return float(np.mean(np.abs(signs @ values) >= observed - tolerance))


def tost_p(difference: Summary, margin: float) -> float:
    """p of the two one-sided t-tests (TOST) that the mean difference lies inside (-margin, +margin): the larger of
    the two one-sided p-values. p <= alpha: equivalent within the margin at level alpha (the 1 - 2 alpha CI lies
    inside it). NaN below two values or without spread."""
    if difference.n < 2 or not difference.sd > 0:
        return math.nan
    error, df = difference.sd / math.sqrt(difference.n), difference.n - 1
    above_lower = stats.t.sf((difference.mean + margin) / error, df)  # H0: mean <= -margin
    below_upper = stats.t.cdf((difference.mean - margin) / error, df)  # H0: mean >= +margin
    return float(max(above_lower, below_upper))


def sd_from_half_width(half_width: float, n: int, confidence: float = CONFIDENCE) -> float:
    """The sample sd behind a t interval's half-width: ``half_width * sqrt(n) / t_{(1+confidence)/2, n-1}``."""
    return half_width / t_half_width(1.0, n, confidence)


def paired_t_power(n: int, difference: float, sd: float, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` with ``n`` pairs, when the differences have mean
    ``difference`` and sd ``sd``: both tails of the noncentral t (noncentrality difference / (sd / sqrt(n)))."""
    if n < 2:
        return math.nan
    df, noncentrality = n - 1, difference / (sd / math.sqrt(n))
    critical = stats.t.ppf(1 - alpha / 2, df)
    # the lower tail P(T < -c | nc) as P(T > c | -nc): scipy's cdf gives NaN far out in that tail
    return float(stats.nct.sf(critical, df, noncentrality) + stats.nct.sf(critical, df, -noncentrality))


def seeds_for_power(difference: float, sd: float, alpha: float = 0.05, power: float = 0.8, most: int = 10_000) -> int:
    """The fewest pairs (>= 2) whose paired t-test reaches ``power`` at ``difference``; ValueError past ``most``."""
    for n in range(2, most + 1):
        if paired_t_power(n, difference, sd, alpha) >= power:
            return n
    raise ValueError(f"no n <= {most} reaches power {power} at difference {difference}, sd {sd}, alpha {alpha}")


def detectable_difference(n: int, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The mean difference that a two-sided paired t-test with ``n`` pairs detects with ``power`` when the
    differences have sd ``sd``: NaN below two pairs or without spread."""
    if n < 2 or not sd > 0:
        return math.nan
    # start at a noncentrality 10 past the critical t, and widen while the power stays short (few pairs: heavy tails)
    ceiling = (stats.t.ppf(1 - alpha / 2, n - 1) + 10) * sd / math.sqrt(n)
    while paired_t_power(n, ceiling, sd, alpha) < power:
        ceiling *= 2
    return float(optimize.brentq(lambda difference: paired_t_power(n, difference, sd, alpha) - power, 0.0, ceiling))
