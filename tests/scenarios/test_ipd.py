"""The IPD / BoS scenario: contract, textbook match scores, noise and sampled matchings."""

from __future__ import annotations

import polars as pl
import pytest

from tests.contract import ScenarioContract, read_table, run_with

MIX = "population.mix={tit_for_tat:4,always_defect:4,grim_trigger:4,win_stay_lose_shift:4,random:4}"


class TestIPDContract(ScenarioContract):
    overrides = ["scenario=ipd", "population.size=20", MIX, "scenario.rounds=6"]
    llm_overrides = ["population.size=6", "population.mix={llm:3,tit_for_tat:3}", "scenario.rounds=2"]
    invalid = [
        ("scenario.rounds=0", "scenario.rounds"),
        ("scenario.noise=1.5", "scenario.noise"),
        ("scenario.game=chess", "scenario.game"),
        ("population.size=21", "population.size is 21"),
    ]


def _scores(run_dir) -> pl.DataFrame:
    """Total points per (policy, opponent policy), one row per ordered pair of policies."""
    rows = read_table(run_dir, "interactions")
    agents = pl.read_parquet(run_dir / "agents.parquet").select("agent_id", opponent="policy")
    per_match = (
        rows.group_by("match_id", "actor_id", "target_id", "policy")
        .agg(pl.col("payoff_actor").sum().alias("score"), pl.col("action").sort_by("round").str.join("").alias("moves"))
        .join(agents, left_on="target_id", right_on="agent_id")
    )
    return per_match.group_by("policy", "opponent").agg(pl.col("score").unique(), pl.col("moves").unique())


@pytest.fixture(scope="module")
def tournament(tmp_path_factory):
    mix = (
        "population.mix={tit_for_tat:2,always_defect:2,defect_once:2,grim_trigger:2,alternate:2,"
        "suspicious_tit_for_tat:2}"
    )
    return _scores(run_with(["scenario=ipd", "population.size=12", mix, "seed=3"], tmp_path_factory.mktemp("t")))


def _pair(scores: pl.DataFrame, me: str, other: str) -> tuple[list[float], list[str]]:
    row = scores.filter(policy=me, opponent=other).row(0, named=True)
    return row["score"], row["moves"]


def test_tit_for_tat_vs_always_defect_scores_45_to_55(tournament):
    assert _pair(tournament, "tit_for_tat", "always_defect") == ([45.0], ["JFFFFFFFFF"])
    assert _pair(tournament, "always_defect", "tit_for_tat") == ([55.0], ["FFFFFFFFFF"])


def test_tit_for_tat_forgives_defect_once(tournament):
    # TFT copies the single defection once, then both cooperate: 8*8 + 0 + 10 = 74 for TFT.
    assert _pair(tournament, "tit_for_tat", "defect_once") == ([74.0], ["JFJJJJJJJJ"])
    assert _pair(tournament, "defect_once", "tit_for_tat") == ([74.0], ["FJJJJJJJJJ"])


def test_grim_trigger_never_forgives_alternate(tournament):
    score, moves = _pair(tournament, "grim_trigger", "alternate")
    assert moves == ["JJFFFFFFFF"]
    # J/J 8, J/F 0, then F against J,F,J,F... : 10, 5, 10, 5, 10, 5, 10, 5
    assert score == [8 + 0 + 4 * 10 + 4 * 5]


def test_suspicious_tit_for_tat_locks_tit_for_tat_into_echo(tournament):
    assert _pair(tournament, "tit_for_tat", "suspicious_tit_for_tat")[1] == ["JFJFJFJFJF"]


def test_battle_of_the_sexes_payoffs_by_side(tmp_path):
    rows = read_table(
        run_with(["scenario=ipd", "scenario.game=bos", "population.size=2", "population.mix={always_cooperate:2}",
                  "scenario.rounds=3", "seed=1"], tmp_path),
        "interactions",
    )  # fmt: skip
    # Both always play J: the row player (lower id) gets 10, the column player 7.
    row = rows.filter(pl.col("actor_id") < pl.col("target_id"))
    col = rows.filter(pl.col("actor_id") > pl.col("target_id"))
    assert row["payoff_actor"].to_list() == [10.0] * 3 and col["payoff_actor"].to_list() == [7.0] * 3


def test_noise_flips_about_the_configured_share(tmp_path):
    rows = read_table(
        run_with(["scenario=ipd", "scenario.noise=0.2", "population.size=40", "population.mix={always_cooperate:40}",
                  "seed=2"], tmp_path),
        "interactions",
    )  # fmt: skip
    share = rows["flipped"].mean()
    assert 0.18 < share < 0.22
    assert (rows.filter("flipped")["action"] == "F").all() and (rows.filter(~pl.col("flipped"))["action"] == "J").all()


def test_matches_per_agent_bounds_each_agents_matches(tmp_path):
    rows = read_table(
        run_with(["scenario=ipd", "scenario.matches_per_agent=3", "population.size=30", "scenario.rounds=2", "seed=5"],
                 tmp_path),
        "interactions",
    )  # fmt: skip
    per_agent = rows.group_by("actor_id").agg(pl.col("match_id").n_unique())
    assert per_agent["match_id"].to_list() == [3] * 30  # complete graph, even size: exactly k each
    pairs = rows.select(
        lo=pl.min_horizontal("actor_id", "target_id"), hi=pl.max_horizontal("actor_id", "target_id")
    ).unique()
    assert pairs.height == rows["match_id"].n_unique()  # no pair plays twice
