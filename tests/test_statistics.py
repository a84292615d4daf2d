"""Seed statistics against hand-computed values: mean, sd, 95 % t interval, paired t-test, top-k overlap."""

import math

import pytest

from analysis.statistics import mean_pairwise_overlap, paired, summarize, t_half_width

T_975_DF2 = 4.302652729749462  # t_{0.975, 2}, as printed in t tables (4.303)


def test_summary_of_one_two_three():
    summary = summarize([1.0, 2.0, 3.0])
    assert (summary.mean, summary.sd, summary.n) == (2.0, 1.0, 3)
    assert summary.half_width == pytest.approx(T_975_DF2 / math.sqrt(3))  # 2.484
    assert (summary.low, summary.high) == pytest.approx((2 - 2.4841, 2 + 2.4841), abs=1e-4)


@pytest.mark.parametrize("df, quantile", [(1, 12.706), (4, 2.776), (9, 2.262), (29, 2.045)])
def test_t_quantiles_match_the_table(df, quantile):
    assert t_half_width(1.0, df + 1) * math.sqrt(df + 1) == pytest.approx(quantile, abs=1e-3)


def test_one_value_has_no_spread_or_interval():
    summary = summarize([4.0, math.nan])
    assert (summary.mean, summary.n) == (4.0, 1)
    assert math.isnan(summary.sd) and math.isnan(summary.half_width)
    assert math.isnan(summarize([]).mean)


def test_paired_t_test_of_differences_one_two_three():
    # differences 1, 2, 3: t = 2 / (1 / sqrt 3) = 2 sqrt 3 on 2 degrees of freedom, where the two-sided
    # p = 1 - t / sqrt(t^2 + 2) in closed form: 0.0742
    result = paired({0: 2.0, 1: 4.0, 2: 6.0, 5: 1.0}, {0: 1.0, 1: 2.0, 2: 3.0, 7: 0.0})
    assert result.seeds == (0, 1, 2)  # seeds 5 and 7 have no partner
    assert (result.difference.mean, result.difference.sd, result.difference.n) == (2.0, 1.0, 3)
    assert result.difference.half_width == pytest.approx(T_975_DF2 / math.sqrt(3))
    t = 2 * math.sqrt(3)
    assert result.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2))
    assert result.p_value == pytest.approx(0.0742, abs=1e-4)


def test_paired_without_spread_or_pairs_has_no_p():
    assert math.isnan(paired({0: 3.0, 1: 4.0}, {0: 1.0, 1: 2.0}).p_value)  # Δ = 2 on every seed
    lonely = paired({0: 3.0}, {0: 1.0, 1: 2.0})
    assert lonely.difference.n == 1 and math.isnan(lonely.p_value)


def test_mean_pairwise_overlap_counts_each_pair_once():
    overlaps = {"seed0": {}, "seed1": {"seed0": 0.4}, "seed2": {"seed0": 0.2, "seed1": 0.6, "seed9": 1.0}}
    assert mean_pairwise_overlap(overlaps) == (pytest.approx(0.4), 3)  # seed9 is not among the seeds
    both_sides = {"seed0": {"seed1": 0.4}, "seed1": {"seed0": 0.6}}
    assert mean_pairwise_overlap(both_sides) == (pytest.approx(0.5), 1)
    value, pairs = mean_pairwise_overlap({"seed0": {"seed1": 0.4}})
    assert math.isnan(value) and pairs == 0
