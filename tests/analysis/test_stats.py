"""Intervals over seeds: hand-worked cases, published Student-t and Wilson values, and coverage by simulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest

from analysis import AnalysisError, bootstrap_ci, over_seeds, proportion_ci, share_over_seeds, t_ci
from analysis.stats import (
    SERIES_MAX_DF,
    IntervalWarning,
    _cornish_fisher,
    _t_quantile_by_series,
    hold_last,
    t_central_probability,
    t_quantile,
)

# Most tests here aggregate a handful of runs on purpose; the tests of the warnings catch them explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::analysis.stats.IntervalWarning")


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


def test_over_seeds_groups_with_the_bootstrap_by_name() -> None:
    """Round 1 is test_bootstrap_of_0_0_0_1 again. Round 2's runs all agree: before the Student-t default
    this gave (2.0, 2.0, 2.0), a zero-width interval; now the bounds are NaN for every method."""
    per_run = pl.DataFrame(
        {
            "run_id": ["a", "b", "c", "d", "a", "b"],
            "round": [1, 1, 1, 1, 2, 2],
            "v": [0.0, 0.0, 0.0, 1.0, 2.0, 2.0],
        }
    )
    out = over_seeds(per_run, "v", by=["round"], method="bootstrap", resamples=20_000, seed=3)
    assert out.row(0) == (1, 0.25, 0.0, 0.75, 4)
    round_, mean, low, high, n = out.row(1)
    assert (round_, mean, n) == (2, 2.0, 2) and math.isnan(low) and math.isnan(high)


def test_over_seeds_defaults_to_student_t() -> None:
    """{0, 0, 0, 1}: mean 1/4, s = 1/2, standard error 1/4, t(3) = 3.182446 -> 0.25 ± 0.795612."""
    per_run = pl.DataFrame({"run_id": ["a", "b", "c", "d"], "v": [0.0, 0.0, 0.0, 1.0]})
    ((mean, low, high, n),) = over_seeds(per_run, "v").rows()
    assert n == 4 and mean == 0.25
    assert (low, high) == pytest.approx((0.25 - 0.795612, 0.25 + 0.795612), abs=1e-6)
    assert (mean, low, high) == pytest.approx(t_ci([0, 0, 0, 1]))


def test_over_seeds_rejects_an_unknown_method() -> None:
    per_run = pl.DataFrame({"run_id": ["a", "b"], "v": [1.0, 2.0]})
    with pytest.raises(AnalysisError, match="method must be one of"):
        over_seeds(per_run, "v", method="bca")  # type: ignore[arg-type]


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


# --- Student's t -------------------------------------------------------------------------------------

# Two-sided critical values t such that P(|T| <= t) = level, as printed in standard tables
# (e.g. the NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.2), to six decimals.
PUBLISHED_T = [
    (0.95, 1, 12.706205),
    (0.95, 2, 4.302653),
    (0.95, 3, 3.182446),
    (0.95, 4, 2.776445),
    (0.95, 9, 2.262157),
    (0.95, 29, 2.045230),
    (0.95, 100, 1.983972),
    (0.99, 2, 9.924843),
    (0.99, 4, 4.604095),
    (0.90, 4, 2.131847),
]


@pytest.mark.parametrize(("level", "df", "published"), PUBLISHED_T)
def test_t_quantile_matches_published_tables(level: float, df: int, published: float) -> None:
    assert t_quantile(level, df) == pytest.approx(published, abs=1e-6)


@pytest.mark.parametrize("df", [1, 2, 3, 6, 17])
def test_t_central_probability_integrates_the_density(df: int) -> None:
    """P(|T| <= 1.7) from the series against the trapezoid rule on Student's density itself."""
    x = np.linspace(-1.7, 1.7, 200_001)
    scale = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    density = scale * (1 + x * x / df) ** (-(df + 1) / 2)
    assert t_central_probability(1.7, df) == pytest.approx(np.trapezoid(density, x), abs=1e-9)


@pytest.mark.parametrize("df", [SERIES_MAX_DF + 1, 3000])
def test_cornish_fisher_agrees_with_the_series_beyond_the_switch(df: int) -> None:
    for level in (0.9, 0.95, 0.99):
        assert _cornish_fisher(level, df) == pytest.approx(_t_quantile_by_series(level, df), abs=1e-9)


def test_t_interval_hand_worked() -> None:
    """{1, 2, 3, 4}: mean 2.5, s = sqrt(5/3), t(3) = 3.182446: half width 3.182446 · 0.645497 = 2.054260."""
    mean, low, high = t_ci([1.0, 2.0, float("nan"), 3.0, 4.0])
    assert mean == 2.5
    assert (low, high) == pytest.approx((2.5 - 2.054260, 2.5 + 2.054260), abs=1e-6)


def test_t_interval_of_one_value_has_no_bounds() -> None:
    mean, low, high = t_ci([0.7])
    assert mean == 0.7 and math.isnan(low) and math.isnan(high)


# --- coverage by simulation ---------------------------------------------------------------------------

REPLICATIONS = 40_000  # Monte Carlo standard error of a 95% coverage: sqrt(.95·.05/40000) = 0.11 points


def _coverage(draw, truth: float, runs: int, method: str = "t", replications: int = REPLICATIONS) -> float:  # type: ignore[no-untyped-def]
    """Share of `replications` simulated experiments of `runs` seeds whose over_seeds interval holds `truth`.

    Every experiment is a group of one over_seeds call, so the public function is what is measured. A
    NaN interval (all runs agreed) counts as a miss."""
    values = draw((replications, runs)).astype(np.float64)
    per_run = pl.DataFrame(
        {
            "experiment": np.repeat(np.arange(replications), runs),
            "run_id": np.tile(np.arange(runs), replications).astype(str),
            "v": values.ravel(),
        }
    )
    out = over_seeds(per_run, "v", by=["experiment"], method=method, resamples=1000)  # type: ignore[arg-type]
    return float(((out["low"] <= truth) & (out["high"] >= truth)).mean())


def _distributions(rng: np.random.Generator) -> dict[str, tuple]:  # type: ignore[type-arg]
    """Per-run metrics of the kinds socsim reports: a continuous score, a share over 50 agents, a count."""
    return {
        "normal score": (lambda shape: rng.normal(0.3, 0.1, shape), 0.3),
        "share of 50 agents": (lambda shape: rng.binomial(50, 0.3, shape) / 50, 0.3),
        "count (Poisson 3)": (lambda shape: rng.poisson(3.0, shape), 3.0),
    }


@pytest.mark.parametrize("runs", [3, 5, 10])
def test_student_t_covers_within_two_points_of_nominal(runs: int) -> None:
    """Coverage of the default interval at 3, 5 and 10 seeds, within 2 points of 95%.

    With 40,000 simulated experiments per case the Monte Carlo error is 0.11 points, so a correct
    interval cannot fail by chance; the whole test takes about a second. Heavily skewed per-run values
    (exponential) are outside this guarantee: the t interval covers about 88% there at 3 to 5 seeds."""
    rng = np.random.default_rng(np.random.SeedSequence(20_250_513, spawn_key=(runs,)))
    for name, (draw, truth) in _distributions(rng).items():
        coverage = _coverage(draw, truth, runs)
        assert abs(coverage - 0.95) <= 0.02, f"{name} at {runs} runs: coverage {coverage:.4f}"


def test_coverage_check_catches_the_percentile_bootstrap() -> None:
    """The same check fails an interval known to undercover: the percentile bootstrap at 3 seeds
    (about 76%; 2,000 experiments give a Monte Carlo error under 1 point)."""
    rng = np.random.default_rng(np.random.SeedSequence(20_250_513, spawn_key=(0,)))
    coverage = _coverage(lambda shape: rng.normal(0.3, 0.1, shape), 0.3, 3, method="bootstrap", replications=2000)
    assert coverage < 0.85


# --- warnings and runs that agree --------------------------------------------------------------------


def test_few_runs_warn_once_in_one_line() -> None:
    per_run = pl.DataFrame({"run_id": list("abcde") * 2, "g": [1] * 5 + [2] * 5, "v": np.arange(10.0)})
    with pytest.warns(IntervalWarning) as caught:
        over_seeds(per_run, "v", by=["g"])
    messages = [str(w.message) for w in caught]
    assert messages == ["over_seeds(v): a mean over 5 runs (fewer than 10): the interval is wide (none from one "
                        "run) and holds only as far as per-run values are near normal"]  # fmt: skip


def test_ten_runs_do_not_warn() -> None:
    per_run = pl.DataFrame({"run_id": list("abcdefghij"), "v": np.arange(10.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        over_seeds(per_run, "v")


def test_runs_that_all_agree_get_no_interval() -> None:
    """Twelve seeds that all end with 2 clusters: no zero-width interval, a warning that says why."""
    per_run = pl.DataFrame({"run_id": [str(i) for i in range(12)], "clusters": [2] * 12})
    with pytest.warns(IntervalWarning, match="all runs agree in 1 of 1 groups"):
        ((mean, low, high, n),) = over_seeds(per_run, "clusters").rows()
    assert (mean, n) == (2.0, 12) and math.isnan(low) and math.isnan(high)


def test_runs_without_a_value_are_counted_out_loud() -> None:
    per_run = pl.DataFrame({"run_id": [str(i) for i in range(12)], "v": [1.0, None, float("nan")] + [2.0] * 9})
    with pytest.warns(IntervalWarning, match=r"2 of 12 run rows have no value"):
        out = over_seeds(per_run, "v")
    assert out["n_runs"].item() == 10


# --- Wilson intervals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        # z = 1.959964: centre (p + z²/2n)/(1 + z²/n), half width z/(1 + z²/n)·sqrt(p(1-p)/n + z²/4n²)
        (0, 10, (0.0, 0.0, 0.277533)),
        (10, 10, (1.0, 0.722467, 1.0)),
        (5, 10, (0.5, 0.236593, 0.763407)),
        (3, 3, (1.0, 0.438503, 1.0)),
        (1, 20, (0.05, 0.008881, 0.236131)),
    ],
)
def test_wilson_interval(successes: int, n: int, expected: tuple[float, float, float]) -> None:
    assert proportion_ci(successes, n) == pytest.approx(expected, abs=1e-6)


def test_wilson_is_symmetric_and_never_zero_width() -> None:
    for n in (1, 3, 7, 40):
        for k in range(n + 1):
            p, low, high = proportion_ci(k, n)
            q, low_q, high_q = proportion_ci(n - k, n)
            assert (p, low, high) == pytest.approx((1 - q, 1 - high_q, 1 - low_q))
            assert 0.0 <= low < high <= 1.0


def test_wilson_rejects_impossible_counts() -> None:
    with pytest.raises(AnalysisError, match="successes <= n"):
        proportion_ci(4, 3)
    p, low, high = proportion_ci(0, 0)
    assert math.isnan(p) and math.isnan(low) and math.isnan(high)


def test_share_over_seeds() -> None:
    per_run = pl.DataFrame(
        {
            "run_id": ["a", "b", "c", "a", "b", "c", "d"],
            "epsilon": [0.1, 0.1, 0.1, 0.3, 0.3, 0.3, 0.3],
            "reached": [False, False, None, True, True, True, True],
        }
    )
    out = share_over_seeds(per_run, "reached", by=["epsilon"])
    assert out.select("epsilon", "successes", "n_runs").rows() == [(0.1, 0, 2), (0.3, 4, 4)]
    assert out.select("share", "low", "high").row(0) == pytest.approx(proportion_ci(0, 2))
    assert out.select("share", "low", "high").row(1) == pytest.approx(proportion_ci(4, 4))


def test_share_over_seeds_wants_yes_or_no() -> None:
    per_run = pl.DataFrame({"run_id": ["a", "b"], "reached": [1, 0]})
    with pytest.raises(AnalysisError, match="must be Boolean"):
        share_over_seeds(per_run, "reached")
