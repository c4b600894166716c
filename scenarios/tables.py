"""Reading recorded tables: the small polars helpers the metrics of every scenario share.

Metrics are declared by scenarios (`BaseScenario.metrics`) and computed by analysis from Parquet
alone; both sides use these helpers, which need nothing but polars. Every metric returns one row per
run and group (`run_id` first); `analysis.stats.over_seeds` turns those into intervals across seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

Frame = pl.DataFrame | pl.LazyFrame


class AnalysisError(Exception):
    """Bad input to analysis or to a metric: a missing or foreign file, a column a metric needs but
    the table lacks. One line, naming what is wrong."""


def lazy(frame: Frame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def columns(frame: Frame) -> list[str]:
    return frame.columns if isinstance(frame, pl.DataFrame) else frame.collect_schema().names()


def require(frame: Frame, needed: Iterable[str], what: str) -> None:
    """Raise AnalysisError naming the metric and the columns it needs but the table lacks."""
    have = set(columns(frame))
    missing = [c for c in needed if c not in have]
    if missing:
        raise AnalysisError(f"{what}: table lacks column(s) {', '.join(missing)} (has {', '.join(sorted(have))})")


def keys(by: str | Sequence[str]) -> list[str]:
    """Group keys always start with run_id: metrics are per run, `over_seeds` aggregates them."""
    by = [by] if isinstance(by, str) else list(by)
    return ["run_id", *[b for b in by if b != "run_id"]]


def gini(x: pl.Expr) -> pl.Expr:
    """Gini coefficient of a non-negative column inside a group: 0 = equal, (n-1)/n = one holds all.

    Uses the sorted-rank form G = 2·Σ i·x_(i) / (n·Σx) − (n+1)/n; an all-zero group counts as equal (0).
    """
    xs = x.cast(pl.Float64).drop_nulls().sort()
    n = xs.len().cast(pl.Float64)
    total = xs.sum()
    ranked = (xs * pl.int_range(1, xs.len() + 1, dtype=pl.Int64).cast(pl.Float64)).sum()
    return pl.when(total > 0).then(2.0 * ranked / (n * total) - (n + 1.0) / n).otherwise(0.0)


def ols_slope(x: pl.Expr, y: pl.Expr) -> pl.Expr:
    """Least-squares slope of y on x inside a group (null when x does not vary)."""
    dx = x.cast(pl.Float64) - x.cast(pl.Float64).mean()
    dy = y.cast(pl.Float64) - y.cast(pl.Float64).mean()
    var = (dx * dx).sum()
    return pl.when(var > 0).then((dx * dy).sum() / var).otherwise(None)


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


FALLBACK_COLUMNS = ("fallback_reason", "fallback")  # the engine's name for it, newer first


def fallback_column(frame: Frame) -> str | None:
    """The interactions' column naming why a decision is not the agent's own (None: the table has none)."""
    have = set(columns(frame))
    return next((c for c in FALLBACK_COLUMNS if c in have), None)


def missing_decision(frame: Frame, value: pl.Expr) -> pl.Expr:
    """True for a row whose decision was missing or a fallback: the fallback column names a reason, or
    `value` (what the metric reads) is null."""
    column = fallback_column(frame)
    flag = value.is_null()
    return flag | pl.col(column).is_not_null() if column else flag


def rate(
    frame: Frame, expr: pl.Expr, by: str | Sequence[str], name: str, what: str, *, exclude_missing: bool = False
) -> pl.DataFrame:
    """Mean of a boolean expression per run and `by` group, ignoring rows where it is null (a missing
    decision), with the caveat beside it: `missing_share`, the share of the group's decisions that were
    missing or fallbacks (`missing_decision`). Fallback rows count in the rate unless `exclude_missing`;
    a group whose every decision is missing keeps its row (rate null, n 0, missing_share 1).
    Columns: run_id, *by, <name> (0..1), n (rows counted), missing_share."""
    group = keys(by)
    require(frame, group, what)
    value = expr.cast(pl.Float64)
    missing = missing_decision(frame, value)
    counted = value.is_not_null() & (~missing if exclude_missing else pl.lit(True))
    return (
        lazy(frame)
        .with_columns(value.alias("_value"), missing.alias("_missing"), counted.alias("_counted"))
        .group_by(group)
        .agg(
            pl.col("_value").filter(pl.col("_counted")).mean().alias(name),
            pl.col("_counted").sum().cast(pl.UInt32).alias("n"),
            pl.col("_missing").cast(pl.Float64).mean().alias("missing_share"),
        )
        .sort(group)
        .collect()
    )


def hold_last(per_run: pl.DataFrame, x: str = "step", by: Sequence[str] = ()) -> pl.DataFrame:
    """Extend each run that stopped early to the last `x` any run reached, holding its final row.

    Rule-driven dynamics stop once nothing can change any more, so a converged run's state after its
    last step is its last recorded state; without this, a mean over seeds at late steps would only
    average the slow runs. Only use it for states (positions, counts), not for per-step events.
    """
    keys = ["run_id", *by]
    require(per_run, [*keys, x], "hold_last")
    grid = per_run.select(pl.col(x).unique().alias("_x"))
    last = per_run.filter(pl.col(x) == pl.col(x).max().over(keys))
    tail = (
        last.join(grid, how="cross")
        .filter(pl.col("_x") > pl.col(x))
        .with_columns(pl.col("_x").cast(per_run.schema[x]).alias(x))
        .drop("_x")
    )
    return pl.concat([per_run, tail.select(per_run.columns)]).sort([*keys, x])
