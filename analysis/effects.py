"""Effect tables: a metric by the level of each factor a sweep varied, with intervals over seeds.

A robustness check asks whether a result moves when something that should not matter changes: the
prompt's wording (`scenario.prompt_variant`), the options' names (`scenario.labels`) or order
(`scenario.option_order`), what the persona shows (`population.persona_fields`), a system prompt
file (`scenario.prompts.<spec>`), or any other swept parameter. `effect_table(runs, metric)` gives,
for each such factor and each of its levels, the metric's mean with a confidence interval over seeds;
`analysis.plots.plot_effects` draws it.

How a run becomes one number (per hue group, e.g. per policy, which is kept as a column):
- a metric with no x (tournament score, final clusters) is already one value per run;
- a metric over x (round, generation, step) is reduced by `reduce`: "mean" averages the run's values
  over its x values, each x weighted equally (a rate per round becomes the run's mean rate per round);
  "final" takes the value at the run's last recorded x. "auto" (the default) takes "final" for
  metrics the scenario marks `hold` (states such as cluster counts or variance, where the end state
  is the outcome) and "mean" for the others (rates and amounts per round or generation).

How the levels of one factor are compared when other factors vary too (a grid of labels x order x
seeds): within each seed, the runs at a level are averaged over the other factors' cells, each run
weighted equally; the seed is the unit, so the interval (Student-t by default, `analysis.stats`) is
over seeds, and `n_seeds` says how many. In a full grid run with the same seeds in every cell, this
is the main effect of the factor averaged over the others; cells that failed leave their seed's mean
over the cells that remain (`n_runs` counts the runs behind each level).

Which factors: by default the parameters the sweep varied (`swept` in each sweep's sweep.json, less
`seed`), else every config key (scenario, population, graph, backend; not `seed` or `run.*`) whose
value differs between the loaded runs. A factor is named by its config path (`scenario.labels`) or
by a `runs.runs` column (`param_labels`, `model`); its levels are shown as on the command line
(`[J,F]`, `0.1`, `null`).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from analysis.errors import AnalysisError
from analysis.load import RunSet
from analysis.metrics import registered
from analysis.stats import Method, over_seeds

Reduce = Literal["auto", "mean", "final"]
REDUCTIONS: tuple[Reduce, ...] = ("auto", "mean", "final")
SWEEP_MANIFEST = "sweep.json"
COMPLETED = "completed"
# config sections that never name an experimental condition (execution options), and the replication unit
NOT_FACTORS = ("seed", "run", "hydra")


# ---- factors ---------------------------------------------------------------------------------------------


def text(value: Any) -> str:
    """A config value as one writes it on the command line: `[J,F]`, `{a:1}`, `0.1`, `true`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{text(v)}" for k, v in value.items()) + "}"
    return str(value)


def sweep_manifests(runs: RunSet) -> dict[Path, dict[str, Any]]:
    """The sweep.json beside each loaded run (a cell's directory is a child of its sweep's root), by root."""
    found: dict[Path, dict[str, Any]] = {}
    for root in {run.path.parent for run in runs} | {runs.root}:
        path = root / SWEEP_MANIFEST
        if root in found or not path.is_file():
            continue
        try:
            sweep = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AnalysisError(f"{path}: not a readable sweep manifest ({exc})") from None
        if not isinstance(sweep, dict) or not isinstance(sweep.get("cells", []), list):
            raise AnalysisError(f"{path}: not a socsim sweep manifest (no list of cells)")
        found[root] = sweep
    return found


def _swept(sweeps: dict[Path, dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for sweep in sweeps.values():
        for name in sweep.get("swept") or []:
            key = str(name).lstrip("+~")
            if key not in names and key.split(".")[0] not in NOT_FACTORS:
                names.append(key)
    return names


def _cell_params(runs: RunSet, sweeps: dict[Path, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """run_id -> the overrides of its sweep cell (what the user typed), for runs found in a sweep.json."""
    params: dict[str, dict[str, Any]] = {}
    for run in runs:
        sweep = sweeps.get(run.path.parent)
        for cell in (sweep or {}).get("cells", []):
            if cell.get("run_id") == run.run_id or cell.get("run_dir") == run.path.name:
                params[run.run_id] = {str(k).lstrip("+~"): v for k, v in (cell.get("params") or {}).items()}
                break
    return params


_MISSING = object()


def _at(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _varying_leaves(configs: list[Any], prefix: str = "") -> list[str]:
    """Config paths whose values differ between runs. Dicts with the same keys in every run are walked
    into (`scenario.pd.T`); a dict whose keys differ between runs (a population mix of other policies)
    is one value."""
    if all(isinstance(c, dict) for c in configs) and len({tuple(sorted(c)) for c in configs}) == 1:
        out: list[str] = []
        for key in sorted(configs[0]):
            if not prefix and key in NOT_FACTORS:
                continue
            out.extend(_varying_leaves([c[key] for c in configs], f"{prefix}{key}."))
        return out
    return [prefix.rstrip(".")] if len({text(c) for c in configs}) > 1 else []


def factor_levels(runs: RunSet, factors: Sequence[str] | None = None) -> tuple[list[str], pl.DataFrame]:
    """The factors (given, or the default described in the module note) and each run's level of each.

    Returns (factors, frame): one row per run with run_id, seed, status and one String column per
    factor (the level as on the command line; null where a run does not have the key).
    """
    sweeps = sweep_manifests(runs)
    cells = _cell_params(runs, sweeps)
    if factors is None:
        swept = [f for f in _swept(sweeps) if f != "scenario"]
        factors = swept or _varying_leaves([r.manifest.get("config") or {} for r in runs])
    factors = list(factors)
    for name in factors:
        if name.split(".")[0] in NOT_FACTORS:
            raise AnalysisError(f"effect_table: {name!r} is not a factor (seeds are the replicates; run.* options "
                                "do not change results)")  # fmt: skip
    rows = runs.runs.rows_by_key("run_id", named=True, unique=True, include_key=True)
    columns: dict[str, list[str | None]] = {f: [] for f in factors}
    for run in runs:
        for name in factors:
            config = run.manifest.get("config") or {}
            columns[name].append(_level(config, rows[run.run_id], cells.get(run.run_id, {}), name))
    frame = pl.DataFrame(
        {
            "run_id": [r.run_id for r in runs],
            "seed": pl.Series([rows[r.run_id]["seed"] for r in runs], dtype=pl.Int64),
            "status": pl.Series([rows[r.run_id]["status"] for r in runs], dtype=pl.String),
            **{name: pl.Series(name, values, dtype=pl.String) for name, values in columns.items()},
        }
    )
    return factors, frame


def _level(config: dict[str, Any], meta_row: dict[str, Any], cell: dict[str, Any], name: str) -> str | None:
    """A run's level of factor `name`: a runs.runs column, else the config value at the path (unless it is
    a whole config group such as `graph`, named by its override), else its sweep cell's override."""
    if name in meta_row and "." not in name:
        value = meta_row[name]
        return None if value is None else text(value)
    value = _at(config, name)
    if value is not _MISSING and not (isinstance(value, dict) and name in cell):
        return text(value)
    if name in cell:
        return text(cell[name])
    return None


# ---- one number per run ------------------------------------------------------------------------------------


def per_run(
    values: pl.DataFrame, name: str, x: str | None, hue: str | None, hold: bool, reduce: Reduce
) -> pl.DataFrame:
    """A metric's rows reduced to one value per run (and hue group): see the module note.

    Columns: run_id, [hue], `name`.
    """
    if reduce not in REDUCTIONS:
        raise AnalysisError(f"effect_table: reduce must be one of {list(REDUCTIONS)}, got {reduce!r}")
    keys = ["run_id", *([hue] if hue and hue in values.columns else [])]
    value = pl.col(name).cast(pl.Float64).fill_nan(None)
    if x and x in values.columns:
        how = ("final" if hold else "mean") if reduce == "auto" else reduce
        if how == "final":
            values = values.filter(pl.col(x) == pl.col(x).max().over("run_id"))
        values = values.group_by(keys, maintain_order=True).agg(value.mean().alias(name))
    if values.select(keys).is_duplicated().any():
        raise AnalysisError(f"effect_table: metric {name!r} has several rows per {keys}; it cannot be one value "
                            "per run")  # fmt: skip
    return values.select(*keys, value.alias(name)).sort(keys)


def reduction(x: str | None, hold: bool, reduce: Reduce) -> str:
    """How `per_run` reduced the metric, in words for a figure's axis."""
    if not x:
        return "per run"
    how = ("final" if hold else "mean") if reduce == "auto" else reduce
    return f"final {x}" if how == "final" else f"mean over {x}s"


# ---- the table -----------------------------------------------------------------------------------------------


def effect_table(
    runs: RunSet,
    metric: str,
    factors: Sequence[str] | None = None,
    *,
    reduce: Reduce = "auto",
    level: float = 0.95,
    method: Method = "t",
    completed_only: bool = True,
) -> pl.DataFrame:
    """Metric `metric` by level of each factor, with intervals over seeds (see the module note).

    Columns: scenario, metric, factor, level, [the metric's hue], mean, low, high, n_seeds, n_runs, reduced
    (how each run became one number), interval (which interval low and high bound, e.g. "95% Student-t").
    Rows per factor in the order given, levels in numeric order when they are all numbers, else in text
    order. Runs whose status is not "completed" are left out (with a warning) unless `completed_only=False`.
    """
    found = [(scenario, m) for scenario, ms in registered(runs).items() for m in ms if m.name == metric]
    if not found:
        known = sorted({m.name for ms in registered(runs).values() for m in ms})
        raise AnalysisError(f"no loaded scenario registers a metric {metric!r} (registered: {', '.join(known)})")
    parts = []
    for scenario, spec in found:
        subset = runs.subset(runs.runs.filter(pl.col("scenario") == scenario)["run_id"].to_list())
        subset = _completed(subset) if completed_only else subset
        if subset is None:
            continue
        names, levels = factor_levels(subset, factors)
        if not names:
            raise AnalysisError(f"effect_table: no factor varies across the {len(subset)} loaded {scenario} runs "
                                "(name one with factors=[...])")  # fmt: skip
        values = per_run(spec.compute(subset), metric, spec.x, spec.hue, spec.hold, reduce)
        hue = spec.hue if spec.hue in values.columns else None
        table = _by_level(values.join(levels, on="run_id"), metric, names, hue, level, method)
        interval = f"{level:.0%} {'Student-t' if method == 't' else 'bootstrap'}"
        parts.append(table.select(pl.lit(scenario).alias("scenario"), pl.lit(metric).alias("metric"), pl.all(),
                                  pl.lit(reduction(spec.x, spec.hold, reduce)).alias("reduced"),
                                  pl.lit(interval).alias("interval")))  # fmt: skip
    if not parts:
        raise AnalysisError(f"effect_table: no completed run under {runs.root} (pass completed_only=False)")
    return pl.concat(parts, how="diagonal_relaxed")


def _completed(runs: RunSet) -> RunSet | None:
    ids = runs.runs.filter(pl.col("status") == COMPLETED)["run_id"].to_list()
    if len(ids) < len(runs):
        warnings.warn(f"effect_table: left out {len(runs) - len(ids)} of {len(runs)} runs that did not complete",
                      stacklevel=3)  # fmt: skip
    return runs.subset(ids) if ids else None


def _by_level(
    frame: pl.DataFrame, value: str, factors: list[str], hue: str | None, level: float, method: Method
) -> pl.DataFrame:
    frame = frame.with_columns(pl.coalesce(pl.col("seed").cast(pl.String), pl.col("run_id")).alias("_seed"))
    hues = [hue] if hue else []
    out = []
    for factor in factors:
        at = frame.filter(pl.col(factor).is_not_null()).rename({factor: "level"})
        # within a seed, the mean over the other factors' cells: one value per (level, hue, seed)
        per_seed = at.group_by(["level", *hues, "_seed"], maintain_order=True).agg(
            pl.col(value).mean(), pl.len().alias("_runs")
        )
        summary = over_seeds(per_seed.rename({"_seed": "run_id"}), value, by=["level", *hues], level=level,
                             method=method).rename({"n_runs": "n_seeds"})  # fmt: skip
        runs_at = per_seed.group_by(["level", *hues]).agg(pl.col("_runs").sum().cast(pl.Int64).alias("n_runs"))
        summary = summary.join(runs_at, on=["level", *hues], how="left", nulls_equal=True)
        order = _level_order(summary["level"].unique().to_list())
        summary = summary.with_columns(pl.col("level").replace_strict(order, return_dtype=pl.Int64).alias("_order"))
        out.append(summary.sort(["_order", *hues]).drop("_order").select(pl.lit(factor).alias("factor"), pl.all()))
    return pl.concat(out, how="vertical_relaxed")


def _level_order(levels: list[str]) -> dict[str, int]:
    """Levels in numeric order when every one is a number (0.05 before 0.1), else in text order."""
    numbers = numeric_levels(levels)
    ranked = sorted(levels) if numbers is None else [s for _, s in sorted(zip(numbers, levels, strict=True))]
    return {s: i for i, s in enumerate(ranked)}


def numeric_levels(levels: Sequence[str]) -> list[float] | None:
    """The levels as numbers when every one is one (so a figure can put them on a numeric axis)."""
    out = []
    for s in levels:
        try:
            x = float(s)
        except ValueError:
            return None
        if not math.isfinite(x) or s in ("true", "false"):
            return None
        out.append(x)
    return out


__all__ = ["effect_table", "factor_levels", "per_run", "reduction", "sweep_manifests", "text"]
