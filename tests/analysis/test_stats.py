"""Bootstrap intervals over seeds against distributions small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from analysis import AnalysisError, bootstrap_ci, over_seeds
from analysis.stats import hold_last


def test_bootstrap_of_0_0_0_1() -> None:
    """Resampling 4 values from {0,0,0,1}: the mean is k/4 with k ~ Binomial(4, 1/4).

    P(k<=0) = 0.316 > 0.025, so the 2.5% quantile is 0; P(k<=2) = 0.949 < 0.975 <= P(k<=3) = 0.996,
    so the 97.5% quantile is 3/4.
    """
    mean, low, high = bootstrap_ci([0, 0, 0, 1], resamples=20_000, seed=3)
    assert (mean, low, high) == (0.25, 0.0, 0.75)


def test_bootstrap_of_constant_values_has_no_width() -> None:
    assert bootstrap_ci([0.4, 0.4, 0.4]) == pytest.approx((0.4, 0.4, 0.4))


def test_one_seed_gives_no_interval() -> None:
    mean, low, high = bootstrap_ci([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)


def test_bootstrap_is_seeded() -> None:
    x = np.sqrt(np.arange(1, 30))  # irrational spacing: different resamples give different quantiles
    assert bootstrap_ci(x, resamples=200, seed=5) == bootstrap_ci(x, resamples=200, seed=5)
    assert bootstrap_ci(x, resamples=200, seed=5) != bootstrap_ci(x, resamples=200, seed=6)


def test_nan_values_are_dropped() -> None:
    assert bootstrap_ci([1.0, float("nan"), 1.0]) == (1.0, 1.0, 1.0)


def test_bad_level() -> None:
    with pytest.raises(AnalysisError, match="confidence level"):
        bootstrap_ci([1, 2], level=95)


def test_over_seeds_groups() -> None:
    per_run = pl.DataFrame(
        {
            "run_id": ["a", "b", "c", "d", "a", "b"],
            "round": [1, 1, 1, 1, 2, 2],
            "v": [0.0, 0.0, 0.0, 1.0, 2.0, 2.0],
        }
    )
    out = over_seeds(per_run, "v", by=["round"], resamples=20_000, seed=3)
    assert out.rows() == [(1, 0.25, 0.0, 0.75, 4), (2, 2.0, 2.0, 2.0, 2)]


def test_over_seeds_rejects_several_rows_per_run() -> None:
    per_run = pl.DataFrame({"run_id": ["a", "a"], "v": [1.0, 2.0]})
    with pytest.raises(AnalysisError, match="several rows per run"):
        over_seeds(per_run, "v")


def test_hold_last_extends_runs_that_stopped_early() -> None:
    per_run = pl.DataFrame(
        {"run_id": ["a", "a", "b", "b", "b"], "step": [0, 10, 0, 10, 20], "dimension": "x",
         "clusters": [5, 3, 6, 4, 2]}
    )  # fmt: skip
    held = hold_last(per_run, by=["dimension"])
    assert held.select("run_id", "step", "clusters").rows() == [
        ("a", 0, 5), ("a", 10, 3), ("a", 20, 3), ("b", 0, 6), ("b", 10, 4), ("b", 20, 2),
    ]  # fmt: skip
    assert over_seeds(held, "clusters", by=["step"]).filter(step=20)["mean"].item() == 2.5
