"""Opinion dynamics (value diffusion): clusters, polarization and time to consensus.

Input is a long table of positions: run_id, step, agent, (dimension,) value. The cluster rule is the
one the bounded-confidence scenario uses (sorted positions split where neighbours are more than
`gap` apart; groups holding at least `min_share` of the agents count), re-implemented here because
analysis reads only recorded data. All functions return one row per run and group.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.frames import Frame, columns, keys, lazy, require

GAP = 0.01
MIN_SHARE = 0.01  # SCIENCE.md counts clusters holding >= 1% of agents


def _groups(frame: Frame, by: Sequence[str], dimension: str) -> list[str]:
    group = keys(by)
    if dimension in columns(frame) and dimension not in group:
        group.append(dimension)
    return group


def cluster_counts(
    states: Frame,
    by: Sequence[str] = ("step",),
    *,
    value: str = "value",
    dimension: str = "dimension",
    gap: float = GAP,
    min_share: float = MIN_SHARE,
) -> pl.DataFrame:
    """Number of opinion clusters per run, `by` group (and dimension when the table has one).

    Columns: run_id, *by, [dimension], clusters, n (agents).
    """
    group = _groups(states, by, dimension)
    require(states, [*group, value], "cluster_counts")
    sizes = (
        lazy(states)
        .filter(pl.col(value).is_not_null())
        .sort([*group, value])
        .with_columns((pl.col(value).diff().over(group) > gap).fill_null(False).cum_sum().over(group).alias("_cluster"))
        .group_by([*group, "_cluster"])
        .agg(pl.len().alias("size"))
        .with_columns(pl.col("size").sum().over(group).alias("n"))
    )
    return (
        sizes.group_by(group)
        .agg(
            (pl.col("size") >= min_share * pl.col("n")).sum().cast(pl.Int64).alias("clusters"),
            pl.col("n").first().cast(pl.Int64),
        )
        .sort(group)
        .collect()
    )


def polarization(
    states: Frame, by: Sequence[str] = ("step",), *, value: str = "value", dimension: str = "dimension"
) -> pl.DataFrame:
    """Spread and bimodality of positions per run, `by` group (and dimension).

    variance: population variance (ddof 0: the agents are the whole population, not a sample).
    bimodality: Sarle's coefficient from population moments, (m2³ + m3²) / (m2·m4) = (skew² + 1) /
    kurtosis: 1 for any two-point split, 5/9 for a uniform spread, 1/3 for a normal; NaN when all agree.
    Columns: run_id, *by, [dimension], variance, bimodality, n.
    """
    group = _groups(states, by, dimension)
    require(states, [*group, value], "polarization")
    x = pl.col(value).cast(pl.Float64)
    dev = x - x.mean()
    m2, m3, m4 = (dev**2).mean(), (dev**3).mean(), (dev**4).mean()
    return (
        lazy(states)
        .filter(pl.col(value).is_not_null())
        .group_by(group)
        .agg(
            m2.alias("variance"),
            pl.when(m4 > 0).then((m2**3 + m3**2) / (m2 * m4)).otherwise(float("nan")).alias("bimodality"),
            pl.len().cast(pl.Int64).alias("n"),
        )
        .sort(group)
        .collect()
    )


def time_to_consensus(
    states: Frame,
    *,
    step: str = "step",
    value: str = "value",
    dimension: str = "dimension",
    gap: float = GAP,
    min_share: float = MIN_SHARE,
) -> pl.DataFrame:
    """First step from which a run holds one cluster and keeps holding one at every later step.

    Per run (and dimension). `steps_to_consensus` is null when the run never settles into consensus,
    so such runs drop out of `over_seeds`; `reached` says which did.
    Columns: run_id, [dimension], steps_to_consensus, reached.
    """
    counts = cluster_counts(states, by=(step,), value=value, dimension=dimension, gap=gap, min_share=min_share)
    group = [c for c in ("run_id", dimension) if c in counts.columns]
    # Scan from the last step backwards: consensus holds from s on iff every count at >= s is 1.
    return (
        counts.sort([*group, step])
        .with_columns((pl.col("clusters") == 1).reverse().cum_min().reverse().over(group).alias("_settled"))
        .group_by(group)
        .agg(pl.col(step).filter(pl.col("_settled")).min().alias("steps_to_consensus"))
        .with_columns(pl.col("steps_to_consensus").is_not_null().alias("reached"))
        .sort(group)
    )
