"""Opinion metrics against the positions worked out by hand in conftest.vd_run."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from analysis import load
from analysis.opinions import cluster_counts, polarization, time_to_consensus


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
