"""Donor-game metrics against the numbers worked out by hand in conftest.donor_run."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import AnalysisError, load
from analysis.cooperation import cooperation_rate, strategy_shares
from analysis.donations import (
    donation_fraction,
    donation_trend,
    final_round,
    reputation_dynamics,
    resource_gini,
    strategy_labels,
)


def test_donation_fraction_per_generation(donor_run: Path) -> None:
    frac = donation_fraction(load(donor_run).interactions)
    assert frac.select("generation", "fraction", "n").rows() == [(1, 0.1875, 4), (2, 0.5, 4)]


def test_donation_trend(donor_run: Path) -> None:
    trend = donation_trend(donation_fraction(load(donor_run).interactions))
    assert trend.rows() == [("donor-1", pytest.approx(0.3125))]


def test_trend_of_one_generation_is_null(donor_run: Path) -> None:
    one = donation_fraction(load(donor_run).interactions).filter(generation=1)
    assert donation_trend(one)["slope"].to_list() == [None]


def test_cooperation_rate_per_generation_counts_positive_donations(donor_run: Path) -> None:
    rate = cooperation_rate(load(donor_run).interactions, by="generation")
    assert rate.select("generation", "cooperation").rows() == [(1, 0.5), (2, 0.75)]


def test_gini_of_resources(donor_run: Path) -> None:
    gini = resource_gini(load(donor_run).states)
    assert gini.select("generation", "round", "gini").rows() == [
        (1, 1, 0.0), (1, 2, 0.75), (2, 1, pytest.approx(0.25)), (2, 2, 0.0),
    ]  # fmt: skip


def test_gini_of_final_round_per_generation(donor_run: Path) -> None:
    gini = resource_gini(final_round(load(donor_run).states), by="generation")
    assert gini.select("generation", "gini").rows() == [(1, 0.75), (2, 0.0)]


def test_reputation_dynamics(donor_run: Path) -> None:
    rep = reputation_dynamics(load(donor_run).states)
    assert rep.select("generation", "round", "good_image_scoring", "good_standing").rows() == [
        (1, 1, 0.75, 1.0), (1, 2, 0.5, 1.0), (2, 1, 1.0, 1.0), (2, 2, 0.75, 1.0),
    ]  # fmt: skip


def test_reputation_needs_a_standing_column(vd_run: Path) -> None:
    with pytest.raises(AnalysisError, match="no good_<norm>"):
        reputation_dynamics(load(vd_run).states)


def test_strategy_shares_per_generation(donor_run: Path) -> None:
    shares = strategy_shares(strategy_labels(load(donor_run).strategies), column="strategy_kind")
    assert shares.select("generation", "strategy_kind", "share").rows() == [
        (1, "always_defect", 0.25), (1, "fixed_fraction", 0.5), (1, "llm", 0.25),
        (2, "fixed_fraction", 0.75), (2, "llm", 0.25),
    ]  # fmt: skip
