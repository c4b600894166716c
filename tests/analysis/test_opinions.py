"""Opinion metrics against the positions worked out by hand in conftest.vd_run."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import polars as pl
import pytest

from analysis import IntervalWarning, load
from analysis.opinions import cluster_counts, consensus_summary, polarization, time_to_consensus


def test_cluster_counts(vd_run: Path) -> None:
    counts = cluster_counts(load(vd_run).states)
    got = {(d, s): c for d, s, c in counts.select("dimension", "step", "clusters").rows()}
    assert got == {
        ("a", 0): 4,
        ("a", 1): 2,
        ("a", 2): 1,
        ("b", 0): 1,
        ("b", 1): 2,
        ("b", 2): 1,
        ("c", 0): 2,
        ("c", 1): 2,
        ("c", 2): 2,
    }


def test_small_groups_do_not_count() -> None:
    """200 agents: 150 at 0.2, 49 at 0.8, 1 at 0.5 -> the lone agent is 0.5% < 1%: two clusters."""
    values = [0.2] * 150 + [0.8] * 49 + [0.5]
    states = pl.DataFrame({"run_id": "r", "step": 0, "agent_id": range(200), "value": values})
    assert cluster_counts(states)["clusters"].to_list() == [2]
    assert cluster_counts(states, min_share=0.0)["clusters"].to_list() == [3]


def test_polarization(vd_run: Path) -> None:
    pol = polarization(load(vd_run).states)
    got = {(d, s): (v, b) for d, s, v, b in pol.select("dimension", "step", "variance", "bimodality").rows()}
    assert got[("a", 0)] == pytest.approx((0.17, 0.0289 / 0.0353))
    assert got[("a", 1)] == pytest.approx((0.16, 1.0))
    assert got[("b", 2)][0] == 0.0 and math.isnan(got[("b", 2)][1])


def test_bimodality_of_uniform_grid_is_two_thirds() -> None:
    """Positions 0, 0.5, 1: m2 = 1/6, m3 = 0, m4 = 1/24 -> (1/36) / (1/24) = 2/3."""
    states = pl.DataFrame({"run_id": "r", "step": 0, "agent_id": [0, 1, 2], "value": [0.0, 0.5, 1.0]})
    assert polarization(states)["bimodality"].item() == pytest.approx(2 / 3)


def test_time_to_consensus(vd_run: Path) -> None:
    ttc = time_to_consensus(load(vd_run).states)
    assert ttc.select("dimension", "steps_to_consensus", "reached").rows() == [
        ("a", 2, True),
        ("b", 2, True),
        ("c", None, False),
    ]


def _ttc(steps: list[int | None], **columns: list) -> pl.DataFrame:  # type: ignore[type-arg]
    """A time_to_consensus table for runs r0, r1, ...: None means the run never converged."""
    return pl.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(len(steps))],
            **columns,
            "steps_to_consensus": pl.Series(steps, dtype=pl.Int64),
            "reached": [s is not None for s in steps],
        }
    )


def test_consensus_summary_counts_runs_that_never_converged() -> None:
    """12 runs, 3 never converge: share 9/12 with Wilson [0.4677, 0.9111]; steps over the 9 converged runs
    10, 20, ..., 90: mean 50, s = sqrt(750) = 27.3861, t(8) = 2.306004 -> 50 ± 9.128709 · 2.306004 = 50 ± 21.050841."""
    ttc = _ttc([10, None, 20, 30, None, 40, 50, 60, None, 70, 80, 90])
    with pytest.warns(IntervalWarning, match="a mean over 9 runs"):
        row = consensus_summary(ttc).row(0, named=True)
    assert (row["n_runs"], row["n_reached"], row["share_reached"]) == (12, 9, 0.75)
    assert (row["share_low"], row["share_high"]) == pytest.approx((0.467695, 0.911058), abs=1e-6)
    assert row["steps_mean"] == 50.0
    assert (row["steps_low"], row["steps_high"]) == pytest.approx((50 - 21.050841, 50 + 21.050841), abs=1e-5)


def test_consensus_summary_when_no_run_converges() -> None:
    """A condition where no seed converged is a row with 0 reached (Wilson upper bound 0.7076 at 2 runs)
    and null steps, not a missing row."""
    ttc = _ttc([None, None, 5, 7], epsilon=[0.05, 0.05, 0.3, 0.3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntervalWarning)  # two runs per condition, on purpose
        out = consensus_summary(ttc, by=["epsilon"])
    assert out.select("epsilon", "n_runs", "n_reached", "steps_mean").rows() == [(0.05, 2, 0, None), (0.3, 2, 2, 6.0)]
    assert out["share_high"][0] == pytest.approx(0.657620, abs=1e-6)
    assert out["share_low"][1] == pytest.approx(0.342380, abs=1e-6)


def test_consensus_summary_groups_by_dimension(vd_run: Path) -> None:
    """vd_run: dimensions a and b converge at step 2, c never: one run each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IntervalWarning)
        out = consensus_summary(time_to_consensus(load(vd_run).states))
    assert out.select("dimension", "n_runs", "n_reached", "steps_mean").rows() == [
        ("a", 1, 1, 2.0),
        ("b", 1, 1, 2.0),
        ("c", 1, 0, None),
    ]
