"""Cooperation and payoffs in the repeated games (IPD) and, for the cooperation rate, the donor game.

All functions return one row per run and group (`run_id` first); pass the result to
`analysis.stats.over_seeds` for a mean and bootstrap interval across seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.errors import AnalysisError
from analysis.frames import Frame, columns, keys, lazy, require

# In the PD the options are labelled J (cooperate) and F (defect), as in Akata et al. (2023).
IPD_COOPERATE = "J"


def cooperated(frame: Frame) -> pl.Expr:
    """Boolean expression: did the actor cooperate in this row?

    Donor game (has `amount`): a donation of a positive amount. Repeated games: action J. Rows with no
    action (null) stay null and so do not count in rates.
    """
    have = set(columns(frame))
    if "amount" in have and "action" in have:
        return (pl.col("action") == "donate") & (pl.col("amount").cast(pl.Float64) > 0)
    if "action" in have:
        return pl.col("action") == IPD_COOPERATE
    raise AnalysisError("cooperation: interactions table has no 'action' column")


def cooperation_rate(interactions: Frame, by: str | Sequence[str] = ("round",)) -> pl.DataFrame:
    """Share of cooperative decisions per run and `by` group (e.g. round, generation, policy).

    Columns: run_id, *by, cooperation (0..1), n (decisions counted).
    """
    group = keys(by)
    require(interactions, [*group, "action"], "cooperation_rate")
    _reject_bos(interactions)
    return (
        lazy(interactions)
        .with_columns(cooperated(interactions).cast(pl.Float64).alias("_coop"))
        .filter(pl.col("_coop").is_not_null())
        .group_by(group)
        .agg(pl.col("_coop").mean().alias("cooperation"), pl.len().alias("n"))
        .sort(group)
        .collect()
    )


def mean_payoff_by_strategy(interactions: Frame) -> pl.DataFrame:
    """Mean payoff per decision (one player, one round) of each policy, per run.

    Columns: run_id, policy, payoff, n.
    """
    group = keys("policy")
    require(interactions, [*group, "payoff_actor"], "mean_payoff_by_strategy")
    return (
        lazy(interactions)
        .group_by(group)
        .agg(pl.col("payoff_actor").cast(pl.Float64).mean().alias("payoff"), pl.len().alias("n"))
        .sort(group)
        .collect()
    )


def match_scores(interactions: Frame) -> pl.DataFrame:
    """Each player's total over each match, with the opponent's total: the unit a tournament ranks.

    Columns: run_id, match_id, actor_id, policy, score, opponent_score, rounds.
    """
    require(interactions, ["run_id", "match_id", "actor_id", "policy", "payoff_actor"], "match_scores")
    per_player = (
        lazy(interactions)
        .group_by(["run_id", "match_id", "actor_id", "policy"])
        .agg(pl.col("payoff_actor").cast(pl.Float64).sum().alias("score"), pl.len().alias("rounds"))
    )
    # Two players per match: the opponent's total is the match total minus one's own.
    return (
        per_player.with_columns(
            (pl.col("score").sum().over(["run_id", "match_id"]) - pl.col("score")).alias("opponent_score"),
            pl.len().over(["run_id", "match_id"]).alias("_players"),
        )
        .filter(pl.col("_players") == 2)
        .drop("_players")
        .sort(["run_id", "match_id", "actor_id"])
        .collect()
    )


def tournament_ranking(interactions: Frame) -> pl.DataFrame:
    """Axelrod-style ranking of policies per run by mean match score (total payoff over a match).

    Columns: run_id, policy, score (mean match total), win_rate, draw_rate, matches, rank (1 = best;
    ties share the better rank).
    """
    scores = match_scores(interactions)
    return (
        scores.group_by(["run_id", "policy"])
        .agg(
            pl.col("score").mean(),
            (pl.col("score") > pl.col("opponent_score")).mean().alias("win_rate"),
            (pl.col("score") == pl.col("opponent_score")).mean().alias("draw_rate"),
            pl.len().alias("matches"),
        )
        .with_columns(pl.col("score").rank(method="min", descending=True).over("run_id").cast(pl.Int64).alias("rank"))
        .sort(["run_id", "rank", "policy"])
    )


def strategy_shares(frame: Frame, by: str | Sequence[str] = ("generation",), column: str = "policy") -> pl.DataFrame:
    """Share of agents (rows) holding each strategy per run and `by` group.

    Columns: run_id, *by, <column>, share, n.
    """
    group = keys(by)
    require(frame, [*group, column], "strategy_shares")
    return (
        lazy(frame)
        .group_by([*group, column])
        .agg(pl.len().alias("n"))
        .with_columns((pl.col("n") / pl.col("n").sum().over(group)).alias("share"))
        .select([*group, column, "share", "n"])
        .sort([*group, column])
        .collect()
    )


def _reject_bos(interactions: Frame) -> None:
    """Battle of the sexes has no cooperative option: a J-rate there would be mislabelled."""
    if "param_game" not in columns(interactions):
        return
    games = lazy(interactions).select(pl.col("param_game").unique()).collect()["param_game"].to_list()
    if any(str(g).lower() in {"bos", "battle_of_the_sexes"} for g in games):
        raise AnalysisError("cooperation_rate: battle-of-the-sexes runs have no cooperative action")
