"""IPD metrics against the numbers worked out by hand in conftest.ipd_run."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from analysis import AnalysisError, load
from analysis.cooperation import (
    cooperation_rate,
    match_scores,
    mean_payoff_by_strategy,
    strategy_shares,
    tournament_ranking,
)


def test_cooperation_rate_by_round(ipd_run: Path) -> None:
    rate = cooperation_rate(load(ipd_run).interactions, by="round")
    assert rate.select("round", "cooperation", "n").rows() == [(1, pytest.approx(4 / 6), 6), (2, 0.5, 6)]
    assert rate["run_id"].to_list() == ["ipd-1", "ipd-1"]


def test_cooperation_rate_by_policy(ipd_run: Path) -> None:
    rate = cooperation_rate(load(ipd_run).interactions, by="policy")
    assert dict(rate.select("policy", "cooperation").rows()) == {
        "always_cooperate": 1.0,
        "always_defect": 0.0,
        "tit_for_tat": 0.75,
    }


def test_cooperation_undefined_in_battle_of_the_sexes(ipd_run: Path) -> None:
    inter = load(ipd_run).interactions.with_columns(pl.lit("bos").alias("param_game"))
    with pytest.raises(AnalysisError, match="battle-of-the-sexes"):
        cooperation_rate(inter)


def test_mean_payoff_by_strategy(ipd_run: Path) -> None:
    pay = mean_payoff_by_strategy(load(ipd_run).interactions)
    assert dict(pay.select("policy", "payoff").rows()) == {
        "always_cooperate": 4.0,
        "always_defect": 8.75,
        "tit_for_tat": 5.25,
    }


def test_match_scores_pair_each_player_with_opponent(ipd_run: Path) -> None:
    scores = match_scores(load(ipd_run).interactions)
    assert scores.select("match_id", "actor_id", "score", "opponent_score", "rounds").rows() == [
        (0, 0, 5.0, 15.0, 2),
        (0, 1, 15.0, 5.0, 2),
        (1, 0, 16.0, 16.0, 2),
        (1, 2, 16.0, 16.0, 2),
        (2, 1, 20.0, 0.0, 2),
        (2, 2, 0.0, 20.0, 2),
    ]


def test_tournament_ranking(ipd_run: Path) -> None:
    ranking = tournament_ranking(load(ipd_run).interactions)
    assert ranking.select("policy", "score", "win_rate", "draw_rate", "matches", "rank").rows() == [
        ("always_defect", 17.5, 1.0, 0.0, 2, 1),
        ("tit_for_tat", 10.5, 0.0, 0.5, 2, 2),
        ("always_cooperate", 8.0, 0.0, 0.5, 2, 3),
    ]


def test_missing_column_names_metric_and_column() -> None:
    frame = pl.DataFrame({"run_id": ["a"], "round": [1], "scenario": ["ipd"]})
    with pytest.raises(AnalysisError, match=r"cooperation: table lacks column.*action"):
        cooperation_rate(frame)
    with pytest.raises(AnalysisError, match="no 'scenario' column"):
        cooperation_rate(frame.drop("scenario"))


def test_strategy_shares() -> None:
    frame = pl.DataFrame({"run_id": ["a"] * 5, "generation": [0, 0, 0, 0, 1], "policy": ["x", "x", "x", "y", "y"]})
    shares = strategy_shares(frame, by="generation")
    assert shares.select("generation", "policy", "share", "n").rows() == [
        (0, "x", 0.75, 3),
        (0, "y", 0.25, 1),
        (1, "y", 1.0, 1),
    ]
