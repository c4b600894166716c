"""The metrics each scenario registers, computed over loaded runs.

Analysis does not guess the game from column names: it reads which scenario ran from each run's
manifest and asks that scenario (found through `scenarios.registry`, so installed out-of-tree
scenarios work too) for its `metrics`. A scenario that is not installed where the analysis runs can
still be loaded and read table by table; only its registered metrics are unavailable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from scenarios.tables import AnalysisError

if TYPE_CHECKING:
    from analysis.load import RunSet
    from scenarios.base import Metric


def scenario_of(name: str) -> Any:
    """The scenario class a manifest names (AnalysisError when it is not installed here)."""
    from scenarios.registry import UnknownScenarioError, scenario_class

    try:
        return scenario_class(name)
    except UnknownScenarioError as exc:
        raise AnalysisError(f"{exc} (install it to compute its metrics; its tables can still be read)") from None


def registered(runs: RunSet) -> dict[str, tuple[Metric, ...]]:
    """Each loaded scenario's metrics, main one first."""
    return {name: tuple(scenario_of(name).metrics) for name in runs.scenarios}


def metric(runs: RunSet, name: str) -> pl.DataFrame:
    """Metric `name` for every loaded run whose scenario registers it, one row per run (and x, hue),
    with the run's manifest fields (seed, `param_*`, ...) joined so sweeps group by them."""
    parts = []
    for scenario, metrics in registered(runs).items():
        found = next((m for m in metrics if m.name == name), None)
        if found is None:
            continue
        subset = runs.subset(runs.runs.filter(pl.col("scenario") == scenario)["run_id"].to_list())
        parts.append(found.compute(subset))
    if not parts:
        known = sorted({m.name for ms in registered(runs).values() for m in ms})
        raise AnalysisError(f"no loaded scenario registers a metric {name!r} (registered: {', '.join(known)})")
    values = pl.concat(parts, how="diagonal_relaxed")
    return values.join(runs.runs, on="run_id", how="left")
