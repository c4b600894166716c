"""The fallback share beside a rate, on tables small enough to count by hand."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analysis import AnalysisError, load
from analysis.cooperation import cooperation_rate
from analysis.missing import missing_share, with_missing_share, without_fallbacks


def _decisions(fallback_name: str = "fallback") -> pl.DataFrame:
    """Run a, round 1: 4 decisions, 1 fallback; round 2: 2 decisions, both fallbacks. Run b, round 1:
    2 decisions, none a fallback but one without an action."""
    return pl.DataFrame(
        {
            "run_id": ["a"] * 6 + ["b"] * 2,
            "scenario": "ipd",  # as analysis.load adds it: cooperation_rate asks the scenario what cooperating is
            "round": [1, 1, 1, 1, 2, 2, 1, 1],
            "action": ["J", "F", "J", "J", "J", "J", "F", None],
            fallback_name: [None, None, "timeout", None, "invalid_json", "timeout", None, None],
        }
    )


@pytest.mark.parametrize("name", ["fallback", "fallback_reason"])
def test_missing_share_reads_either_column_name(name: str) -> None:
    shares = missing_share(_decisions(name), by="round")
    assert shares.rows() == [("a", 1, 0.25, 4), ("a", 2, 1.0, 2), ("b", 1, 0.0, 2)]


def test_a_null_value_counts_as_missing_when_asked() -> None:
    shares = missing_share(_decisions(), by="round", value="action")
    assert shares.filter(run_id="b")["missing_share"].item() == 0.5


def test_an_all_null_fallback_column_means_no_fallbacks() -> None:
    """Scripted runs write the column with no value at all (dtype Null once read back)."""
    table = _decisions().with_columns(pl.lit(None).alias("fallback"))
    assert missing_share(table)["missing_share"].to_list() == [0.0, 0.0]


def test_beside_a_rate_and_without_fallbacks() -> None:
    table = _decisions()
    rates = with_missing_share(cooperation_rate(table), table, by="round")
    assert rates.select("run_id", "round", "cooperation", "missing_share").rows() == [
        ("a", 1, 0.75, 0.25),
        ("a", 2, 1.0, 1.0),
        ("b", 1, 0.0, 0.0),
    ]
    own = cooperation_rate(without_fallbacks(table))
    assert own.select("run_id", "round", "cooperation", "n").rows() == [("a", 1, 2 / 3, 3), ("b", 1, 0.0, 1)]


def test_a_group_without_decisions_is_kept() -> None:
    per_run = pl.DataFrame({"run_id": ["a", "c"], "score": [1.0, 2.0]})
    out = with_missing_share(per_run, _decisions())
    assert out.rows() == [("a", 1.0, 0.5, 6), ("c", 2.0, None, 0)]


def test_no_fallback_column() -> None:
    with pytest.raises(AnalysisError, match="no fallback column"):
        missing_share(pl.DataFrame({"run_id": ["a"], "action": ["J"]}))


def test_on_a_recorded_run(ipd_run: Path) -> None:
    """The tiny IPD run has no fallbacks: six decisions per round, none missing."""
    shares = missing_share(load(ipd_run).interactions, by="round")
    assert shares.select("round", "missing_share", "n_decisions").rows() == [(1, 0.0, 6), (2, 0.0, 6)]
