"""analysis.hypergradients at a tiny size: every estimator x state x parameter row, finite, and the figure."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from analysis.hypergradients import ESTIMATORS, PARAMETERS, main

TINY = ["scale.search_epochs=1", "scale.search_images=64", "scale.model=wrn10_1"]


@pytest.mark.slow
def test_hypergradient_table_and_figure(tmp_path):
    overrides = [argument for override in TINY for argument in ("--override", override)]
    main(["--scale", "smoke", "--out", str(tmp_path), "--draws", "10", "--batch-size", "8", *overrides])
    frame = pd.read_csv(tmp_path / "estimator_hypergradient_smoke.csv")
    keys = set(zip(frame["state"], frame["estimator"], frame["parameter"]))
    assert keys == {
        (state, key, parameter)
        for state in ("start", "quarter", "end")
        for key in ESTIMATORS
        for parameter in PARAMETERS
    }
    assert len(frame) == len(keys)
    assert dict(zip(frame["state"], frame["epoch"])) == {"start": 0, "quarter": 1, "end": 1}
    numbers = frame[["variance", "distance", "distance_se", "noise_floor", "mean_norm"]]
    assert all(math.isfinite(value) for value in numbers.to_numpy().ravel())
    assert (frame["draws"] == 10).all()
    # Under the official variant RELAX's c_phi and REINFORCE's baseline cancel: on paired draws both are the
    # score-function form (L+ - L-)/(2 eps) grad log p, so their statistics agree up to float rounding.
    official = frame[frame["estimator"] == "relax-official"].set_index(["state", "parameter"])
    reinforce = frame[frame["estimator"] == "reinforce"].set_index(["state", "parameter"])
    for column in ("variance", "mean_norm", "distance"):
        assert official[column].to_numpy() == pytest.approx(reinforce[column].to_numpy(), rel=1e-3)
    for extension in ("png", "pdf"):
        assert (tmp_path / f"estimator_hypergradient_smoke.{extension}").stat().st_size > 0
