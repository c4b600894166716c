"""Confidence intervals over seeds: the run, not the agent or round, is the independent unit.

Every metric in analysis/ returns one value per run (and per group such as round or policy);
`over_seeds` turns those into a mean with an interval across runs, and `share_over_seeds` turns a
yes/no outcome per run (reached consensus, defectors took over) into a share with an interval.

Which interval, and why:
- Means get the Student-t interval, mean ± t(n-1) · s/√n. Experiments run few seeds (3 to 20), and
  at those sizes the percentile bootstrap is too narrow: it uses the plug-in spread and normal-like
  tails, so with 3 seeds it covers the true mean about 75% of the time at a nominal 95% (see
  Hesterberg 2015, "What teachers should know about the bootstrap", The American Statistician 69:
  percentile and BCa intervals share this small-sample narrowness, which is why BCa is not offered).
  The t interval is exact for normal per-run values, and a per-run metric averaged over many agents or
  rounds is close to normal. `bootstrap_ci` stays, by name or `method="bootstrap"`, for skewed metrics
  over many runs.
- The t quantile is computed here, not taken from scipy (not a dependency of socsim: one function does
  not justify it): for an integer number of degrees of freedom Student's distribution function has an
  exact finite-series form (Abramowitz & Stegun 1964, 26.7.3–26.7.4), inverted by bisection; beyond
  1,000 degrees of freedom the Cornish–Fisher expansion (26.7.5) is exact to better than 1e-9.
- Shares get the Wilson score interval (Wilson 1927, JASA 22; recommended by Brown, Cai & DasGupta
  2001, Statistical Science 16): it stays inside [0, 1] and is not degenerate at 0 of n or n of n.
- When every run of a group gives the same value, the sample has no spread to build an interval from,
  and a zero-width interval would claim certainty that three agreeing seeds do not give: `over_seeds`
  reports the mean with NaN bounds (as it does for a single run) and warns. If the outcome truly does
  not depend on the seed the mean is exact; if it is a yes/no event, `share_over_seeds` says how sure
  one can be that it always happens (3 of 3 runs: Wilson 95% interval [0.44, 1]).
- Fewer than `MIN_RUNS` runs in a group gives a warning: the interval is honest about a wide
  uncertainty only as far as the per-run values are near normal.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist
from typing import Literal

import numpy as np
import polars as pl

from analysis.errors import AnalysisError
from scenarios.tables import hold_last, require

DEFAULT_RESAMPLES = 2000
MIN_RUNS = 10  # below this many runs over_seeds warns
SERIES_MAX_DF = 1000  # above, the Cornish-Fisher expansion replaces the exact series

Method = Literal["t", "bootstrap"]
METHODS: tuple[Method, ...] = ("t", "bootstrap")


class IntervalWarning(UserWarning):
    """An interval over seeds that needs a caveat: few runs, no spread between runs, or runs left out."""


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise AnalysisError(f"confidence level must be in (0, 1), got {level}")


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[~np.isnan(x)]


# --- Student's t quantile ----------------------------------------------------------------------------


def t_central_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with an integer number of degrees of freedom.

    Abramowitz & Stegun (1964) 26.7.3 (odd df) and 26.7.4 (even df), with θ = atan(t/√df): finite sums
    of positive terms, so exact up to rounding.
    """
    if df < 1:
        raise AnalysisError(f"degrees of freedom must be >= 1, got {df}")
    if t <= 0.0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    sin, cos = math.sin(theta), math.cos(theta)
    c2 = cos * cos
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(df // 2 - 1):  # 1 + (1/2)c² + (1·3)/(2·4)c⁴ + ... up to c^(df-2)
            term *= c2 * (2 * k + 1) / (2 * k + 2)
            total += term
        return sin * total
    if df == 1:
        return 2.0 * theta / math.pi
    term, total = cos, cos
    for k in range((df - 1) // 2 - 1):  # cos + (2/3)cos³ + (2·4)/(3·5)cos⁵ + ... up to cos^(df-2)
        term *= c2 * (2 * k + 2) / (2 * k + 3)
        total += term
    return 2.0 / math.pi * (theta + sin * total)


def _cornish_fisher(level: float, df: int) -> float:
    """Abramowitz & Stegun 26.7.5: the t quantile as a series in 1/df around the normal quantile."""
    x = NormalDist().inv_cdf(0.5 + level / 2.0)
    g1 = (x**3 + x) / 4.0
    g2 = (5 * x**5 + 16 * x**3 + 3 * x) / 96.0
    g3 = (3 * x**7 + 19 * x**5 + 17 * x**3 - 15 * x) / 384.0
    g4 = (79 * x**9 + 776 * x**7 + 1482 * x**5 - 1920 * x**3 - 945 * x) / 92160.0
    return x + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


@lru_cache(maxsize=256)
def t_quantile(level: float, df: int) -> float:
    """The q with P(|T| <= q) = level for Student's t with `df` degrees of freedom (the two-sided
    critical value: 12.706 for level 0.95 and 1 df, 2.262 for 9 df)."""
    _check_level(level)
    if df < 1:
        raise AnalysisError(f"degrees of freedom must be >= 1, got {df}")
    return _cornish_fisher(level, df) if df > SERIES_MAX_DF else _t_quantile_by_series(level, df)


def _t_quantile_by_series(level: float, df: int) -> float:
    """Bisection on the exact distribution function, to adjacent floats."""
    low, high = 0.0, 1.0
    while t_central_probability(high, df) < level:
        low, high = high, 2.0 * high
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        if t_central_probability(mid, df) < level:
            low = mid
        else:
            high = mid
    return high


# --- intervals of one sample ---------------------------------------------------------------------------


def t_ci(values: Sequence[float] | np.ndarray, *, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval for the mean, mean ± t(n-1)·s/√n.

    NaN values are dropped; fewer than two values give NaN bounds. Equal values give a zero-width
    interval here (the arithmetic); `over_seeds` refuses that claim of certainty (see the module note).
    """
    _check_level(level)
    x = _finite(values)
    if len(x) == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if len(x) < 2:
        return (mean, np.nan, np.nan)
    half = t_quantile(level, len(x) - 1) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return (mean, mean - half, mean + half)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the mean, resampling the values with replacement.

    NaN values are dropped. With fewer than two values there is no spread to resample, so the
    bounds are NaN (an interval from one seed would be a false statement of certainty). Too narrow
    below about 20 values (see the module note); prefer `t_ci` there.
    """
    _check_level(level)
    x = _finite(values)
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


def proportion_ci(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float, float]:
    """(share, low, high): Wilson score interval for a share of `successes` out of `n` trials.

    Never zero width for n >= 1: 0 of 10 gives [0, 0.278], 10 of 10 gives [0.722, 1]. n = 0 gives NaN.
    """
    _check_level(level)
    if n < 0 or not 0 <= successes <= n:
        raise AnalysisError(f"proportion_ci: need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (np.nan, np.nan, np.nan)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    p = successes / n
    shrink = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends: no rounding crumbs at 0 of n, n of n
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (p, low, high)


# --- over seeds ----------------------------------------------------------------------------------------


def _per_run(per_run: pl.DataFrame | pl.LazyFrame, value: str, by: list[str], what: str) -> pl.DataFrame:
    df = per_run.collect() if isinstance(per_run, pl.LazyFrame) else per_run
    require(df, ["run_id", value, *by], what)
    if df.select(["run_id", *by]).is_duplicated().any():
        raise AnalysisError(f"{what}: several rows per run for {['run_id', *by]}; aggregate per run first")
    return df


def over_seeds(
    per_run: pl.DataFrame | pl.LazyFrame,
    value: str,
    by: Sequence[str] = (),
    *,
    level: float = 0.95,
    method: Method = "t",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pl.DataFrame:
    """Aggregate a per-run metric over runs: columns `by`, mean, low, high, n_runs.

    `per_run` holds at most one row per (run_id, *by). `method` is "t" (Student-t, the default) or
    "bootstrap" (percentile; each group resampled with a generator seeded by `seed` alone, so a group's
    interval does not depend on which other groups exist; `resamples` applies to it only).
    Runs whose value is null or NaN are left out of n_runs, with a warning; a group whose runs all
    agree gets NaN bounds, with a warning; fewer than MIN_RUNS runs in any group, a warning.
    """
    _check_level(level)
    if method not in METHODS:
        raise AnalysisError(f"over_seeds: method must be one of {list(METHODS)}, got {method!r}")
    by = list(by)
    df = _per_run(per_run, value, by, "over_seeds")
    x = pl.col(value).cast(pl.Float64).fill_nan(None)
    aggregates = [
        x.mean().fill_null(np.nan).alias("mean"),
        x.std(ddof=1).alias("_sd"),
        x.count().cast(pl.Int64).alias("n_runs"),
        pl.len().alias("_rows"),
        (x.min() == x.max()).fill_null(False).alias("_agree"),
    ]
    if method == "bootstrap":
        aggregates.append(x.drop_nulls().alias("_values"))
    summary = df.group_by(by, maintain_order=True).agg(aggregates) if by else df.select(aggregates)
    n = summary["n_runs"].to_numpy()
    if method == "t":
        critical = np.array([t_quantile(level, int(k) - 1) if k >= 2 else np.nan for k in n])
        half = critical * summary["_sd"].fill_null(np.nan).to_numpy() / np.sqrt(np.maximum(n, 1))
        mean = summary["mean"].to_numpy()
        low, high = mean - half, mean + half
    else:
        bounds = [
            bootstrap_ci(values.to_numpy(), level=level, resamples=resamples, seed=seed)[1:]
            for values in summary["_values"]
        ]
        low, high = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])
    agree = summary["_agree"].to_numpy() & (n >= 2)
    low, high = np.where(agree, np.nan, low), np.where(agree, np.nan, high)
    _warn_over_seeds(
        value,
        fewest=int(n[n > 0].min()) if (n > 0).any() else None,
        left_out=int(summary["_rows"].sum() - n.sum()),
        runs=int(summary["_rows"].sum()),
        agreeing=int(agree.sum()),
        groups=summary.height,
    )
    out = summary.select(*by, "mean").with_columns(
        pl.Series("low", low, dtype=pl.Float64), pl.Series("high", high, dtype=pl.Float64), summary["n_runs"]
    )
    return out.sort(by) if by else out


def _warn_over_seeds(value: str, fewest: int | None, left_out: int, runs: int, agreeing: int, groups: int) -> None:
    """At most one line per kind of caveat and call, pointing at the caller."""
    if left_out:
        warnings.warn(
            f"over_seeds({value}): {left_out} of {runs} run rows have no value (null or NaN) and are left out "
            "of the mean and n_runs",
            IntervalWarning,
            stacklevel=3,
        )
    if fewest is not None and fewest < MIN_RUNS:
        warnings.warn(
            f"over_seeds({value}): a mean over {fewest} run{'' if fewest == 1 else 's'} (fewer than {MIN_RUNS}): "
            "the interval is wide (none from one run) and holds only as far as per-run values are near normal",
            IntervalWarning,
            stacklevel=3,
        )
    if agreeing:
        warnings.warn(
            f"over_seeds({value}): all runs agree in {agreeing} of {groups} groups, which gives no spread to "
            "estimate from: low/high are NaN (for a yes/no outcome use share_over_seeds)",
            IntervalWarning,
            stacklevel=3,
        )


def share_over_seeds(
    per_run: pl.DataFrame | pl.LazyFrame, value: str, by: Sequence[str] = (), *, level: float = 0.95
) -> pl.DataFrame:
    """Share of runs where a yes/no outcome holds, with its Wilson interval: columns `by`, share, low,
    high, successes, n_runs.

    `value` is a Boolean column with one row per (run_id, *by); null rows (no outcome) are left out
    of n_runs.
    """
    by = list(by)
    df = _per_run(per_run, value, by, "share_over_seeds")
    if df.schema[value] != pl.Boolean:
        raise AnalysisError(
            f"share_over_seeds: column {value!r} must be Boolean (yes/no per run), got {df.schema[value]}"
        )
    outcome = pl.col(value).drop_nulls()
    aggregates = [outcome.sum().cast(pl.Int64).alias("successes"), outcome.count().cast(pl.Int64).alias("n_runs")]
    counts = df.group_by(by, maintain_order=True).agg(aggregates) if by else df.select(aggregates)
    bounds = [proportion_ci(k, m, level=level) for k, m in counts.select("successes", "n_runs").iter_rows()]
    out = counts.select(
        *by,
        pl.Series("share", [b[0] for b in bounds], dtype=pl.Float64),
        pl.Series("low", [b[1] for b in bounds], dtype=pl.Float64),
        pl.Series("high", [b[2] for b in bounds], dtype=pl.Float64),
        "successes",
        "n_runs",
    )
    return out.sort(by) if by else out


__all__ = [
    "IntervalWarning",
    "bootstrap_ci",
    "hold_last",
    "over_seeds",
    "proportion_ci",
    "share_over_seeds",
    "t_central_probability",
    "t_ci",
    "t_quantile",
]
