"""How many decisions behind a rate were fallbacks: the caveat every per-run rate carries.

When a model's reply cannot be used, the engine records the scenario's fallback action and names the
reason in the row's fallback column (null when the decision is the agent's own). A cooperation or
donation rate that counts those rows measures the fallback as much as the agent, so `missing_share`
reports, per run and group, the share of decision rows that were fallbacks (or have no value at all),
`with_missing_share` puts it beside any per-run metric, and `without_fallbacks` drops those rows before
a rate is computed. The column is `fallback` in today's records and `fallback_reason` in later ones;
both are read.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.errors import AnalysisError
from scenarios.tables import Frame, columns, keys, lazy, require

FALLBACK_COLUMNS = ("fallback_reason", "fallback")


def fallback_column(interactions: Frame) -> str:
    """The name of the interactions table's fallback column (the newer name first)."""
    have = set(columns(interactions))
    for name in FALLBACK_COLUMNS:
        if name in have:
            return name
    raise AnalysisError(
        f"interactions table has no fallback column ({' or '.join(FALLBACK_COLUMNS)}); has {', '.join(sorted(have))}"
    )


def _missing(interactions: Frame, value: str | None) -> pl.Expr:
    """True for a row whose decision was a fallback, or, given `value`, whose value is null. Null-safe: a
    null fallback reason means the agent's own decision."""
    missing = pl.col(fallback_column(interactions)).is_not_null()
    return missing | pl.col(value).is_null() if value is not None else missing


def missing_share(interactions: Frame, by: str | Sequence[str] = (), *, value: str | None = None) -> pl.DataFrame:
    """Share of decision rows per run and `by` group that were fallbacks (or, given `value`, have it null).

    Columns: run_id, *by, missing_share (0..1), n_decisions.
    """
    group = keys(by)
    require(interactions, [*group, *([value] if value else [])], "missing_share")
    return (
        lazy(interactions)
        .group_by(group)
        .agg(
            _missing(interactions, value).cast(pl.Float64).mean().alias("missing_share"),
            pl.len().cast(pl.Int64).alias("n_decisions"),
        )
        .sort(group)
        .collect()
    )


def with_missing_share(
    per_run: pl.DataFrame, interactions: Frame, by: str | Sequence[str] = (), *, value: str | None = None
) -> pl.DataFrame:
    """`per_run` (one row per run_id and `by`) with `missing_share` and `n_decisions` beside its metric.

    A group with no decision rows gets n_decisions 0 and a null missing_share (nothing to be missing)."""
    group = keys(by)
    require(per_run, group, "with_missing_share")
    shares = missing_share(interactions, by, value=value)
    # a metric that already reports its own missing_share (the scenarios' rates do) gets this one instead
    per_run = per_run.drop("missing_share", "n_decisions", strict=False)
    return per_run.join(shares, on=group, how="left", nulls_equal=True).with_columns(pl.col("n_decisions").fill_null(0))


def without_fallbacks(interactions: Frame) -> pl.LazyFrame:
    """The interactions whose decision was the agent's own (fallback rows removed), for rates that exclude them."""
    return lazy(interactions).filter(pl.col(fallback_column(interactions)).is_null())
