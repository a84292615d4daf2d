"""The hypergradient estimator study: its statistics on known draws, and the app and the figure at a tiny size."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from analysis.hypergradients import main as plot_main
from dada.search.hypergradients import ESTIMATORS, PARAMETERS, statistics
from dada.search.hypergradients import main as measure_main

TINY = ["scale.search_epochs=1", "scale.search_images=64", "scale.model=wrn10_1"]


def _draws(mean: float, count: int, dimension: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        parameter: mean + torch.randn(count, dimension, generator=generator, dtype=torch.float64)
        for parameter in PARAMETERS
    }


def test_noise_floor_snr_and_resolution_on_known_draws():
    count, dimension = 400, 100
    rows = statistics(
        {
            "relax": _draws(0.0, count, dimension, 0),
            "reinforce": _draws(0.0, count, dimension, 1),
            "gumbel": _draws(1.0, count, dimension, 2),
        }
    )
    frame = pd.DataFrame(rows).set_index(["estimator", "parameter"])
    floor = math.sqrt(dimension / count)  # sqrt(D·var/N) with unit variance
    # pure noise: the mean's norm is its floor, up to the chi distribution's spread (relative sd ~ 1/sqrt(2D))
    for key in ("relax", "reinforce"):
        assert frame.loc[(key, "alpha"), "mean_noise_floor"] == pytest.approx(floor, rel=4 / math.sqrt(2 * count))
        assert frame.loc[(key, "alpha"), "mean_norm"] == pytest.approx(floor, rel=4 / math.sqrt(2 * dimension))
        assert not frame.loc[(key, "alpha"), "mean_resolved"]
        assert frame.loc[(key, "alpha"), "coords_resolved"] < 0.05 + 4 * math.sqrt(0.05 * 0.95 / dimension)
    # a mean of one sd per coordinate: SNR 1, every coordinate resolved, the bias too
    gumbel = frame.loc[("gumbel", "alpha")]
    assert gumbel["snr_median"] == pytest.approx(1.0, abs=4 / math.sqrt(count))
    assert gumbel["coords_resolved"] == 1.0
    assert gumbel["mean_resolved"] and gumbel["bias_resolved"]
    assert "x210" in gumbel["note"] and "noise floor" in frame.loc[("gumbel", "probability"), "note"]


@pytest.mark.slow
def test_hypergradient_app_and_figure(tmp_path):
    overrides = [argument for override in TINY for argument in ("--override", override)]
    csv = tmp_path / "run" / "hypergradients.csv"
    measure_main(["--scale", "smoke", "--out", str(csv), "--draws", "5", "--batch-size", "8", *overrides])
    frame = pd.read_csv(csv)
    keys = set(zip(frame["search"], frame["state"], frame["estimator"], frame["parameter"]))
    assert keys == {
        (search, state, key, parameter)
        for search, names in ESTIMATORS.items()
        for state in ("start", "quarter", "end")
        for key in names
        for parameter in PARAMETERS
    }
    assert len(frame) == len(keys)
    assert dict(zip(frame["state"], frame["epoch"])) == {"start": 0, "quarter": 1, "end": 1}
    numbers = frame[["variance", "snr_median", "mean_norm", "mean_noise_floor", "distance", "noise_floor"]]
    assert all(math.isfinite(value) for value in numbers.to_numpy().ravel())
    # ζ: the paper search scales its hypergradient by the network's lr, the official one does not
    assert (frame.loc[frame["search"] == "official", "zeta"] == 1).all()
    assert (frame.loc[frame["search"] == "paper", "zeta"] < 1).all()
    # Under the official variant RELAX's c_phi and REINFORCE's baseline cancel: on paired draws both are the
    # score-function form (L+ - L-)/(2 eps) grad log p, so their statistics agree up to float rounding.
    official = frame[frame["search"] == "official"].set_index(["state", "estimator", "parameter"]).sort_index()
    for column in ("variance", "mean_norm"):
        relax, reinforce = (official.xs(key, level="estimator")[column].to_numpy() for key in ("relax", "reinforce"))
        assert relax == pytest.approx(reinforce, rel=1e-3)
    plot_main(["--csv", str(csv), "--out", str(tmp_path)])
    assert pd.read_csv(tmp_path / "estimator_hypergradient_smoke.csv").equals(frame)
    for extension in ("png", "pdf"):
        assert (tmp_path / f"estimator_hypergradient_smoke.{extension}").stat().st_size > 0
