"""The policy as the dashboards show it: summaries with known values, and a table of sub-policies named by op pair."""

import math

import pytest
import torch

from dada.schemas import policy_weight_metric
from dada.search.policy_metrics import PolicySummaries, numbered_metrics, state_table
from dada.search.space import SearchSpace


def test_summaries_of_the_initial_space_and_after_a_change():
    space = SearchSpace(2, False, 1e-3, 0.5, 0.5)
    summaries = PolicySummaries(top_k=25)
    first = summaries(space)
    assert first["policy_summary/alpha_entropy"] == pytest.approx(math.log(105))
    assert first["policy_summary/alpha_entropy_ratio"] == pytest.approx(1.0)
    assert first["policy_summary/mean_abs_probability_shift"] == 0.0
    assert "policy_summary/top25_turnover" not in first  # no previous epoch to compare with
    with torch.no_grad():
        space.alpha[:25] = -5.0  # the 25 first leave the top; the next 25 come in
        space.magnitude.fill_(0.75)
    second = summaries(space)
    assert second["policy_summary/alpha_entropy_ratio"] < 1.0
    assert second["policy_summary/mean_abs_magnitude_shift"] == pytest.approx(0.25)
    assert 0.0 < second["policy_summary/top25_turnover"] <= 1.0
    assert summaries(space)["policy_summary/top25_turnover"] == 0.0


def test_the_table_names_each_sub_policy_by_its_ops_and_ranks_them():
    space = SearchSpace(2, False, 1e-3, 0.5, 0.5)
    with torch.no_grad():
        space.alpha[7] = 1.0
    rows = state_table(space, epoch=3)
    names = [row["sub_policy"] for row in rows]
    assert len(rows) == 105 and len(set(names)) == 105 and all(name.count("+") == 1 for name in names)
    top = next(row for row in rows if row["rank"] == 1)
    assert top["sub_policy"] == space.sub_policy_name(7) and top["epoch"] == 3
    assert set(top) == {
        "epoch",
        "sub_policy",
        "rank",
        "weight",
        "probability_0",
        "probability_1",
        "magnitude_0",
        "magnitude_1",
    }
    assert len(numbered_metrics(space)) == 525 and policy_weight_metric(104) in numbered_metrics(space)
