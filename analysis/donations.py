"""Donor game (Vallinder & Hughes 2024): donations per generation and their trend, inequality, reputation.

All functions return one row per run and group; `analysis.stats.over_seeds` aggregates over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

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
    return (
        per_generation.group_by("run_id").agg(ols_slope(pl.col(x), pl.col(y)).alias("slope")).sort("run_id")
    )


def resource_gini(
    states: Frame, by: str | Sequence[str] = ("generation", "round"), resources: str = "resources"
) -> pl.DataFrame:
    """Gini coefficient of agents' resources per run and `by` group (0 equal, (n-1)/n one holds all).

    Columns: run_id, *by, gini, n.
    """
    group = keys([b for b in ([by] if isinstance(by, str) else by) if b in columns(states)] or ["step"])
    require(states, [*group, resources], "resource_gini")
    return (
        lazy(states)
        .group_by(group)
        .agg(gini(pl.col(resources)).alias("gini"), pl.col(resources).drop_nulls().len().alias("n"))
        .sort(group)
        .collect()
    )


def reputation_dynamics(
    states: Frame,
    by: str | Sequence[str] = ("generation", "round"),
    reputation: str | Sequence[str] = "reputation",
) -> pl.DataFrame:
    """Mean reputation (share in good standing, for binary reputations) per run and `by` group.

    `reputation` may name several columns (e.g. one per assessment norm); each gets its mean.
    Columns: run_id, *by, <each reputation column>, n.
    """
    cols = [reputation] if isinstance(reputation, str) else list(reputation)
    group = keys([b for b in ([by] if isinstance(by, str) else by) if b in columns(states)] or ["step"])
    require(states, [*group, *cols], "reputation_dynamics")
    return (
        lazy(states)
        .group_by(group)
        .agg(*[pl.col(c).cast(pl.Float64).mean() for c in cols], pl.len().alias("n"))
        .sort(group)
        .collect()
    )
