"""Donor game (Vallinder & Hughes 2024): donations per generation and their trend, inequality, reputation.

All functions return one row per run and group; `analysis.stats.over_seeds` aggregates over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.errors import AnalysisError
from analysis.frames import Frame, columns, gini, keys, lazy, ols_slope, require


def donation_fraction(interactions: Frame, by: str | Sequence[str] = ("generation",)) -> pl.DataFrame:
    """Mean fraction of their resources donors gave, per run and `by` group.

    Every donor decision counts; a punishment gives nothing, so it counts as 0 (the question is how
    generous the society is). Columns: run_id, *by, fraction, n.
    """
    group = keys(by)
    require(interactions, [*group, "action", "fraction"], "donation_fraction")
    given = pl.when(pl.col("action") == "donate").then(pl.col("fraction").cast(pl.Float64)).otherwise(0.0)
    return (
        lazy(interactions)
        .filter(pl.col("action").is_not_null())
        .group_by(group)
        .agg(given.mean().alias("fraction"), pl.len().alias("n"))
        .sort(group)
        .collect()
    )


def donation_trend(per_generation: pl.DataFrame, x: str = "generation", y: str = "fraction") -> pl.DataFrame:
    """Least-squares slope of the per-generation donation over generations, per run (change per generation).

    Takes `donation_fraction(...)`'s result. Columns: run_id, slope (null with a single generation).
    """
    require(per_generation, ["run_id", x, y], "donation_trend")
    return per_generation.group_by("run_id").agg(ols_slope(pl.col(x), pl.col(y)).alias("slope")).sort("run_id")


def resource_gini(
    states: Frame, by: str | Sequence[str] = ("generation", "round"), resources: str = "resources"
) -> pl.DataFrame:
    """Gini coefficient of agents' resources per run and `by` group (0 equal, (n-1)/n one holds all).

    Columns: run_id, *by, gini, n.
    """
    group = keys(_present(states, by))
    require(states, [*group, resources], "resource_gini")
    return (
        lazy(states)
        .group_by(group)
        .agg(gini(pl.col(resources)).alias("gini"), pl.col(resources).drop_nulls().len().alias("n"))
        .sort(group)
        .collect()
    )


def final_round(states: Frame, round_col: str = "round") -> pl.LazyFrame:
    """Only the rows of each generation's last round: resources there are the generation's scores."""
    group = [c for c in ("run_id", "generation") if c in columns(states)]
    require(states, [*group, round_col], "final_round")
    return lazy(states).filter(pl.col(round_col) == pl.col(round_col).max().over(group))


def reputation_columns(states: Frame) -> list[str]:
    """The binary standing columns the donor game records, one per assessment norm (good_<norm>)."""
    return [c for c in columns(states) if c.startswith("good_")]


def reputation_dynamics(
    states: Frame,
    by: str | Sequence[str] = ("generation", "round"),
    reputation: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """Share of agents in good standing per run and `by` group, under each assessment norm.

    `reputation`: the column(s) to average; default every `good_<norm>` column.
    Columns: run_id, *by, one per reputation column (0..1), n.
    """
    cols = (
        reputation_columns(states)
        if reputation is None
        else [reputation]
        if isinstance(reputation, str)
        else list(reputation)
    )
    if not cols:
        raise AnalysisError("reputation_dynamics: states have no good_<norm> (reputation) column")
    group = keys(_present(states, by))
    require(states, [*group, *cols], "reputation_dynamics")
    return (
        lazy(states)
        .group_by(group)
        .agg(*[pl.col(c).cast(pl.Float64).mean() for c in cols], pl.len().alias("n"))
        .sort(group)
        .collect()
    )


def strategy_labels(strategies: Frame) -> pl.LazyFrame:
    """Add `strategy_kind`: the scripted strategy's name, or "llm" for a language-model agent (whose
    `strategy` is free text, unique to each agent, so shares of it would mean nothing)."""
    require(strategies, ["policy", "strategy"], "strategy_labels")
    kind = pl.when(pl.col("policy") == "llm").then(pl.lit("llm")).otherwise(pl.col("strategy"))
    return lazy(strategies).with_columns(kind.alias("strategy_kind"))


def _present(frame: Frame, by: str | Sequence[str]) -> list[str]:
    """The `by` keys the table has (states of other scenarios have no generation); step otherwise."""
    wanted = [by] if isinstance(by, str) else list(by)
    have = set(columns(frame))
    return [b for b in wanted if b in have] or ["step"]
