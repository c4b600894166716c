"""Small helpers shared by the metric modules: accept eager or lazy frames, fail with one clear line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from analysis.errors import AnalysisError

Frame = pl.DataFrame | pl.LazyFrame


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
