"""Cooperation and donation metrics carry their caveat (issue 13.9): the share of decisions that were
missing or fallbacks, read from the interactions' fallback column under either of its names, and an
option to leave them out (worked out by hand; under a second)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analysis import load
from analysis.cooperation import cooperation_rate
from scenarios.donor_game import donation_fraction
from scenarios.ipd import cooperated
from scenarios.tables import rate
from tests.analysis.tiny_runs import write_run


def ipd_rows(column: str) -> pl.DataFrame:
    """Round 1: J, J (a fallback), F, and a decision that never came (null action); round 2: J, F."""
    return pl.DataFrame(
        {
            "run_id": "r",
            "step": [1, 1, 1, 1, 2, 2],
            "round": [1, 1, 1, 1, 2, 2],
            "policy": "llm",
            "action": ["J", "J", "F", None, "J", "F"],
            column: [None, "invalid_reply", None, "timeout", None, None],
        }
    )


@pytest.mark.parametrize("column", ["fallback", "fallback_reason"])
def test_rate_reports_the_missing_share_and_can_leave_it_out(column):
    rows = ipd_rows(column)
    kept = rate(rows, cooperated(rows), "round", "cooperation", "test")
    # round 1: the null action never counts; the fallback J does: 2 of 3. Missing: 2 of 4 decisions.
    assert kept.select("round", "cooperation", "n", "missing_share").rows() == [
        (1, pytest.approx(2 / 3), 3, 0.5),
        (2, 0.5, 2, 0.0),
    ]
    mine = rate(rows, cooperated(rows), "round", "cooperation", "test", exclude_missing=True)
    assert mine.select("round", "cooperation", "n", "missing_share").rows() == [(1, 0.5, 2, 0.5), (2, 0.5, 2, 0.0)]


def test_a_group_with_no_decision_of_its_own_keeps_its_row():
    rows = ipd_rows("fallback").with_columns(pl.lit("invalid_reply").alias("fallback"))
    mine = rate(rows, cooperated(rows), "round", "cooperation", "test", exclude_missing=True)
    assert mine.select("round", "cooperation", "n", "missing_share").rows() == [(1, None, 0, 1.0), (2, None, 0, 1.0)]


def test_without_a_fallback_column_only_null_values_are_missing():
    rows = ipd_rows("fallback").drop("fallback")
    got = rate(rows, cooperated(rows), "round", "cooperation", "test")
    assert got["missing_share"].to_list() == [0.25, 0.0]


def test_donation_fraction_reports_the_missing_share():
    rows = pl.DataFrame(
        {
            "run_id": "r",
            "generation": 1,
            "action": ["donate", "donate", "punish", "donate"],
            "fraction": [0.5, 0.0, 0.2, 0.3],
            "fallback_reason": [None, "timeout", None, None],
        }
    )
    kept = donation_fraction(rows)
    assert kept.select("fraction", "n", "missing_share").row(0) == (pytest.approx(0.8 / 4), 4, 0.25)
    mine = donation_fraction(rows, exclude_missing=True)
    assert mine.select("fraction", "n", "missing_share").row(0) == (pytest.approx(0.8 / 3), 3, 0.25)


def test_registered_and_analysis_metrics_carry_it(tmp_path: Path):
    rows = ipd_rows("fallback").with_columns(
        pl.Series("step", [1, 1, 1, 1, 2, 2], pl.Int64), pl.Series("round", [1, 1, 1, 1, 2, 2], pl.Int32)
    )
    run_dir = write_run(tmp_path / "run", run_id="r", seed=1, scenario={"name": "ipd", "game": "pd"},
                        tables={"interactions": [rows]})  # fmt: skip
    runs = load(run_dir)
    registered = runs.metric("cooperation")
    assert registered.select("round", "missing_share").rows() == [(1, 0.5), (2, 0.0)]
    mine = cooperation_rate(runs.interactions, by="round", exclude_missing=True)
    assert mine.select("round", "cooperation", "n").rows() == [(1, 0.5, 2), (2, 0.5, 2)]
