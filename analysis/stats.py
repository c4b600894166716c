"""Confidence intervals over seeds: the run, not the agent or round, is the independent unit.

Every metric in analysis/ returns one value per run (and per group such as round or policy);
`over_seeds` turns those into a mean with a percentile-bootstrap interval across runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from analysis.errors import AnalysisError
from scenarios.tables import hold_last, require

DEFAULT_RESAMPLES = 2000


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean, resampling the values with replacement.

    NaN values are dropped. With fewer than two values there is no spread to resample, so the
    bounds are NaN (an interval from one seed would be a false statement of certainty).
    """
    if not 0.0 < level < 1.0:
        raise AnalysisError(f"confidence level must be in (0, 1), got {level}")
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if len(x) < 2:
        return (mean, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return (mean, float(low), float(high))


def over_seeds(
    per_run: pl.DataFrame | pl.LazyFrame,
    value: str,
    by: Sequence[str] = (),
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pl.DataFrame:
    """Aggregate a per-run metric over runs: columns `by`, mean, low, high, n_runs.

    `per_run` holds at most one row per (run_id, *by). Each group is resampled with a generator
    seeded by `seed` alone, so a group's interval does not depend on which other groups exist.
    """
    df = per_run.collect() if isinstance(per_run, pl.LazyFrame) else per_run
    by = list(by)
    require(df, ["run_id", value, *by], "over_seeds")
    if df.select(["run_id", *by]).is_duplicated().any():
        raise AnalysisError(f"over_seeds: several rows per run for {['run_id', *by]}; aggregate per run first")
    groups = df.group_by(by, maintain_order=True) if by else [((), df)]
    rows = []
    for key, group in groups:
        mean, low, high = bootstrap_ci(
            group[value].cast(pl.Float64).to_numpy(), level=level, resamples=resamples, seed=seed
        )
        n = int(group[value].cast(pl.Float64).fill_nan(None).drop_nulls().len())
        rows.append({**dict(zip(by, key, strict=True)), "mean": mean, "low": low, "high": high, "n_runs": n})
    schema = {
        **{c: df.schema[c] for c in by},
        "mean": pl.Float64,
        "low": pl.Float64,
        "high": pl.Float64,
        "n_runs": pl.Int64,
    }
    out = pl.DataFrame(rows, schema=schema)
    return out.sort(by) if by else out

__all__ = ["bootstrap_ci", "hold_last", "over_seeds"]
