"""Cooperation across scenarios, and the repeated games' tournament measures.

`cooperation_rate` asks each run's scenario (from its manifest: the `scenario` column `load` adds)
what cooperating means in its records (`BaseScenario.cooperated`): playing J in the prisoner's
dilemma, a positive donation in the donor game. The IPD measures are the ipd scenario's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from analysis.metrics import scenario_of
from scenarios.ipd import match_scores, mean_payoff_by_strategy, tournament_ranking
from scenarios.tables import AnalysisError, Frame, columns, lazy, rate, strategy_shares


def cooperation_rate(
    interactions: Frame, by: str | Sequence[str] = ("round",), *, exclude_missing: bool = False
) -> pl.DataFrame:
    """Share of cooperative decisions per run and `by` group (e.g. round, generation, policy).

    Beside it, `missing_share`: the share of the group's decisions that were missing or fallbacks (the
    fallback column names a reason). Missing decisions never count; fallbacks count unless
    `exclude_missing`. Columns: run_id, *by, cooperation (0..1), n (decisions counted), missing_share.
    """
    if "scenario" not in columns(interactions):
        raise AnalysisError("cooperation_rate: the table has no 'scenario' column (load runs with analysis.load)")
    frame = lazy(interactions)
    parts = []
    for name in frame.select(pl.col("scenario").unique().sort()).collect()["scenario"].to_list():
        part = frame.filter(pl.col("scenario") == name)
        cooperated = scenario_of(name).cooperated(part)
        parts.append(rate(part, cooperated, by, "cooperation", "cooperation_rate", exclude_missing=exclude_missing))
    return pl.concat(parts) if parts else rate(frame, pl.lit(None, pl.Boolean), by, "cooperation", "cooperation_rate")


__all__ = ["cooperation_rate", "match_scores", "mean_payoff_by_strategy", "strategy_shares", "tournament_ranking"]
