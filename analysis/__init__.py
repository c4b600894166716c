"""Analysis of recorded runs: reads Parquet + manifest.json only, never the engine, so any run can be read.

`load(path)` gives stacked LazyFrames over one run or a sweep; the metric modules (`cooperation`,
`donations`, `opinions`) return one row per run and group; `stats.over_seeds` adds Student-t intervals
across seeds (`share_over_seeds`: Wilson intervals for yes/no outcomes); `missing` puts the share of
fallback decisions beside a rate; `plots` draws figures; `report` writes the HTML page (`socsim-report`).
"""

from analysis.errors import AnalysisError, MissingTableError
from analysis.load import RunSet, load
from analysis.missing import missing_share, with_missing_share, without_fallbacks
from analysis.stats import (
    IntervalWarning,
    bootstrap_ci,
    over_seeds,
    proportion_ci,
    share_over_seeds,
    t_ci,
)

__all__ = [
    "AnalysisError",
    "IntervalWarning",
    "MissingTableError",
    "RunSet",
    "bootstrap_ci",
    "load",
    "missing_share",
    "over_seeds",
    "proportion_ci",
    "share_over_seeds",
    "t_ci",
    "with_missing_share",
    "without_fallbacks",
]
