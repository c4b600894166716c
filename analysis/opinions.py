"""Opinion dynamics measures (deffuant, hegselmann_krause, value_debate): clusters (topology-aware by
default, the value-space rule by name), polarization and time to consensus. They are declared with those
scenarios; here for notebooks and the report (pass `graphs=runs.graphs()` for runs on sparse graphs),
with `consensus_summary`, which summarises time to consensus over seeds without dropping the runs that
never converged."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.stats import over_seeds, share_over_seeds
from scenarios.opinion_dynamics import (
    GAP,
    MIN_SHARE,
    ClusterRule,
    as_graph,
    cluster_counts,
    polarization,
    time_to_consensus,
)
from scenarios.tables import columns, require

__all__ = [
    "GAP",
    "MIN_SHARE",
    "ClusterRule",
    "as_graph",
    "cluster_counts",
    "consensus_summary",
    "polarization",
    "time_to_consensus",
]


def consensus_summary(
    ttc: pl.DataFrame, by: Sequence[str] = (), *, dimension: str = "dimension", level: float = 0.95
) -> pl.DataFrame:
    """Over seeds, from `time_to_consensus`: how many runs reached consensus, and how fast those did.

    Every run counts: `n_runs` is all of them, `n_reached` those that converged, and `share_reached`
    has a Wilson interval (share_low, share_high), honest even when all or none converged. The steps
    (`steps_mean`, Student-t `steps_low`/`steps_high`) are a mean over the converged runs only: read
    them with the share beside them. Groups by `by` (and the dimension, when the table has one).
    Columns: *by, [dimension], n_runs, n_reached, share_reached, share_low, share_high, steps_mean,
    steps_low, steps_high.
    """
    group = [b for b in by if b != "run_id"]
    if dimension in columns(ttc) and dimension not in group:
        group.append(dimension)
    require(ttc, ["run_id", *group, "steps_to_consensus", "reached"], "consensus_summary")
    shares = share_over_seeds(ttc, "reached", by=group, level=level).rename(
        {"share": "share_reached", "low": "share_low", "high": "share_high", "successes": "n_reached"}
    )
    converged = ttc.filter(pl.col("reached")).with_columns(pl.col("steps_to_consensus").cast(pl.Float64))
    steps = (
        over_seeds(converged, "steps_to_consensus", by=group, level=level)
        .rename({"mean": "steps_mean", "low": "steps_low", "high": "steps_high"})
        .drop("n_runs")
    )
    if group:
        joined = shares.join(steps, on=group, how="left", nulls_equal=True)
    else:
        joined = pl.concat([shares, steps], how="horizontal")
    steps_columns = ["steps_mean", "steps_low", "steps_high"]
    out = joined.select(
        *group, "n_runs", "n_reached", "share_reached", "share_low", "share_high",
        # no converged run, no steps: null whether or not the group had any row to average
        *[pl.when(pl.col("n_reached") > 0).then(pl.col(c)).alias(c) for c in steps_columns],
    )  # fmt: skip
    return out.sort(group) if group else out
