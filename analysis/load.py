"""Load one run or a sweep of runs from Parquet + manifest.json into stacked polars LazyFrames.

Analysis reads only what the recorder wrote, never the engine's objects, so any run directory,
from any version or machine, can be analysed. Each table comes back as one LazyFrame over all runs,
with the run's manifest fields (seed, scenario, model, key parameters) added as columns so that a
sweep stacks into one frame and every metric can group by them.

Only completed runs are loaded unless `include_incomplete=True` (a warning says how many were left
out); their `status` column then says `crashed` (a `running` manifest whose process is gone, see
sim/status.py), `interrupted`, `failed`, ... as they are. A fork (`socsim-fork`) loads beside its
parent, `load(parent, fork)`, with `forked_from` and `forked_at` saying where it branched.
"""

from __future__ import annotations

import json
import os
import socket
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analysis.errors import AnalysisError, MissingTableError

MANIFEST = "manifest.json"
COMPLETED = "completed"
# A `running` manifest's heartbeat older than this many of its intervals means the process is gone. The
# writer's side (and the same rule for socsim-resume) is sim/status.py; analysis never imports the
# engine, so the rule is restated here and tests/sim/test_status.py holds the two to agreement.
STALE_INTERVALS = 6
DEFAULT_HEARTBEAT_S = 5.0
GRAPH = "graph.parquet"
REQUIRED_MANIFEST_KEYS = ("run_id", "seed", "scenario", "config")
# Every recorded table carries these (the recorder adds them); a Parquet file without them is foreign.
ENGINE_COLUMNS = ("run_id", "step")
# Manifest fields joined onto every table, besides the flattened scenario parameters (`param_<key>`).
RUN_COLUMNS = (
    "run_id",
    "status",
    "seed",
    "scenario",
    "model",
    "backend_kind",
    "graph_kind",
    "population_size",
    "converged",
    "converged_at_step",
    "forked_from",
    "forked_at",
)
# Columns that say how a run went, not how it was set up: never what tells two conditions apart.
OUTCOME_COLUMNS = ("run_id", "seed", "status", "converged", "converged_at_step")


@dataclass(frozen=True)
class RunGraph:
    """A run's social graph as recorded: `nodes` agents, `edges` (source < target) or None when complete."""

    nodes: int
    edges: np.ndarray | None


@dataclass(frozen=True)
class Run:
    """One run directory: its manifest and the Parquet files of each table it recorded."""

    path: Path
    manifest: dict[str, Any]
    parts: dict[str, tuple[Path, ...]]

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def status(self) -> str:
        """What the manifest says, with a `running` run whose process is gone reported as `crashed`."""
        return effective_status(self.manifest)

    def graph(self) -> RunGraph | None:
        """The run's social graph from its graph.parquet (None when the run wrote none): the node
        count and the edges, or `edges=None` for a complete graph (stored as metadata, no rows)."""
        path = self.path / GRAPH
        if not path.is_file():
            return None
        try:
            with path.open("rb") as file:  # a file, not a path: polars reads [A,B] in a path as a glob
                meta = pl.read_parquet_metadata(file)
            nodes = int(meta["socsim.nodes"])
            if meta.get("socsim.graph") == "complete":
                return RunGraph(nodes, None)
            frame = pl.read_parquet(path, columns=["source", "target"], glob=False)
        except Exception as exc:  # a foreign or truncated file: one line naming it
            raise AnalysisError(f"{path}: not a socsim graph file ({type(exc).__name__}: {exc})") from None
        return RunGraph(nodes, frame.to_numpy().astype(np.int64).reshape(-1, 2))

    def meta(self) -> dict[str, Any]:
        """The manifest flattened to one row: RUN_COLUMNS plus `param_<key>` per scenario parameter."""
        config = self.manifest.get("config") or {}
        backend = config.get("backend") or {}
        graph = config.get("graph") or {}
        population = config.get("population") or {}
        parent = self.manifest.get("forked_from") if isinstance(self.manifest.get("forked_from"), dict) else {}
        row: dict[str, Any] = {
            "run_id": self.run_id,
            "status": self.status,
            "seed": self.manifest.get("seed"),
            "scenario": _scenario_name(self.manifest),
            "model": backend.get("model"),
            "backend_kind": backend.get("kind"),
            "graph_kind": graph.get("kind"),
            "population_size": population.get("size"),
            # how a dynamic ended (scenarios that converge say so): converged, or stopped by max_steps
            "converged": (self.manifest.get("outcome") or {}).get("converged"),
            "converged_at_step": (self.manifest.get("outcome") or {}).get("converged_at_step"),
            "forked_from": parent.get("run_id"),
            "forked_at": parent.get("step"),
        }
        params = config.get("scenario") if isinstance(config.get("scenario"), dict) else {}
        for key, value in _flatten(params).items():
            if key != "name":
                row[f"param_{key}"] = value
        return row


@dataclass
class RunSet:
    """The runs found under one path; tables are LazyFrames stacked over runs (see `table`)."""

    runs_by_id: dict[str, Run]
    root: Path
    _meta: pl.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._meta = pl.DataFrame([run.meta() for run in self.runs_by_id.values()], infer_schema_length=None).sort(
            "run_id"
        )

    # -- run metadata -------------------------------------------------------------------------
    @property
    def runs(self) -> pl.DataFrame:
        """One row per run: RUN_COLUMNS and the `param_*` columns."""
        return self._meta

    @property
    def run_ids(self) -> list[str]:
        return self._meta["run_id"].to_list()

    @property
    def scenarios(self) -> list[str]:
        return sorted({str(s) for s in self._meta["scenario"].to_list()})

    def manifest(self, run_id: str | None = None) -> dict[str, Any]:
        """The manifest of `run_id` (or of the only run)."""
        if run_id is None:
            if len(self.runs_by_id) != 1:
                raise AnalysisError(f"{len(self.runs_by_id)} runs loaded from {self.root}; name a run_id")
            return next(iter(self.runs_by_id.values())).manifest
        try:
            return self.runs_by_id[run_id].manifest
        except KeyError:
            raise AnalysisError(f"no run {run_id!r} under {self.root}") from None

    def subset(self, run_ids: list[str]) -> RunSet:
        """The same loader restricted to some runs (e.g. one condition of a sweep)."""
        unknown = [r for r in run_ids if r not in self.runs_by_id]
        if unknown:
            raise AnalysisError(f"no run {unknown[0]!r} under {self.root}")
        return RunSet(runs_by_id={r: self.runs_by_id[r] for r in run_ids}, root=self.root)

    def conditions(self) -> list[tuple[str, list[str]]]:
        """(label, run_ids) per experimental condition: runs of one scenario that differ only in seed (and
        in how they went: status, whether and when they converged).

        The label names what distinguishes the condition, e.g. "value_diffusion: epsilon=0.1"; a
        single condition of one scenario gets just the scenario name.
        """
        out = []
        for scenario in sorted(self._meta["scenario"].unique().to_list()):
            meta = self._meta.filter(pl.col("scenario") == scenario)
            meta = meta.select(c for c in meta.columns if meta[c].null_count() < meta.height)
            varying = [
                c for c in meta.columns
                if c not in OUTCOME_COLUMNS and meta[c].cast(pl.String).n_unique() > 1
            ]  # fmt: skip
            groups = meta.group_by(varying, maintain_order=True) if varying else [((), meta)]
            for key, group in groups:
                label = ", ".join(f"{c.removeprefix('param_')}={v}" for c, v in zip(varying, key, strict=True))
                out.append((f"{scenario}: {label}" if label else scenario, group["run_id"].sort().to_list()))
        return sorted(out)

    def __len__(self) -> int:
        return len(self.runs_by_id)

    def graphs(self) -> dict[str, RunGraph | None]:
        """Each run's social graph (graph.parquet), by run_id; None for a run that recorded none. What
        topology-aware measures (opinion clusters) need besides the tables."""
        return {run.run_id: run.graph() for run in self}

    def metric(self, name: str) -> pl.DataFrame:
        """A metric the runs' scenario registers (see `analysis.metrics`), one row per run (and x, hue)."""
        from analysis.metrics import metric

        return metric(self, name)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs_by_id[r] for r in self.run_ids)

    # -- tables -------------------------------------------------------------------------------
    @property
    def tables(self) -> list[str]:
        """Names of the tables at least one run recorded (`agents` included)."""
        return sorted({name for run in self.runs_by_id.values() for name in run.parts})

    def has(self, name: str) -> bool:
        return name in self.tables

    def table(self, name: str) -> pl.LazyFrame:
        """Table `name` of every run that recorded it, stacked, with the run's metadata as columns.

        Raises MissingTableError when no run recorded it (rather than an empty frame, whose missing
        columns would surface later as a confusing error inside a metric). Columns the table already
        has win over the manifest's (e.g. the per-row `model` of interactions), except `run_id`, which
        always comes from the manifest so that a copied run directory stacks as a run of its own.
        """
        frames = []
        meta = self._meta.rows_by_key("run_id", named=True, unique=True, include_key=True)
        for run in self:
            files = run.parts.get(name)
            if not files:
                continue
            # glob=False: a sweep cell's directory may hold brackets (scenario.labels=[J,F],seed=1)
            frame = pl.scan_parquet([str(f) for f in files], glob=False)
            have = set(frame.collect_schema().names())
            extra = [
                pl.lit(value, dtype=self._meta.schema[key]).alias(key)
                for key, value in meta[run.run_id].items()
                if key not in have or key == "run_id"
            ]
            frames.append(frame.with_columns(extra))
        if not frames:
            have = ", ".join(self.tables) or "none"
            raise MissingTableError(f"no run under {self.root} recorded a {name!r} table (have: {have})")
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")

    @property
    def interactions(self) -> pl.LazyFrame:
        return self.table("interactions")

    @property
    def states(self) -> pl.LazyFrame:
        return self.table("states")

    @property
    def agents(self) -> pl.LazyFrame:
        return self.table("agents")

    @property
    def strategies(self) -> pl.LazyFrame:
        return self.table("strategies")

    @property
    def transcripts(self) -> pl.LazyFrame:
        """Every language-model call (messages as sent, raw reply, parsed action, attempts, why it failed)."""
        return self.table("transcripts")


def load(*paths: str | Path, include_incomplete: bool = False) -> RunSet:
    """Load run directories, or every run below a directory (a sweep), searched recursively; several
    paths stack into one RunSet (`load(parent, fork)`).

    Runs that did not complete (crashed, interrupted, failed, still running) are left out, with a
    warning saying how many, unless `include_incomplete=True`. Raises AnalysisError, with one line
    naming the file, for a missing path, a directory holding no manifest.json, a manifest that is not
    a socsim manifest, a Parquet file that cannot be read or lacks the engine's columns, two runs with
    the same run_id, or no completed run at all.
    """
    if not paths:
        raise AnalysisError("load: give a run directory (or several)")
    roots = [_root(Path(p)) for p in paths]
    runs: dict[str, Run] = {}
    left_out: Counter[str] = Counter()
    for root in roots:
        manifests = [root / MANIFEST] if (root / MANIFEST).is_file() else sorted(root.rglob(MANIFEST))
        if not manifests:
            raise AnalysisError(f"{root}: no {MANIFEST} found (not a socsim run directory or sweep)")
        for manifest_path in manifests:
            run = _read_run(manifest_path.parent)
            if run.run_id in runs:
                raise AnalysisError(f"run_id {run.run_id!r} appears twice: {runs[run.run_id].path} and {run.path}")
            if run.status != COMPLETED and not include_incomplete:
                left_out[run.status] += 1
                continue
            runs[run.run_id] = run
    where = roots[0] if len(roots) == 1 else Path(*_common_parts(roots))
    if left_out:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(left_out.items()))
        message = f"left out {sum(left_out.values())} run(s) under {where} that did not complete ({counts})"
        if not runs:
            raise AnalysisError(f"{message}; no completed run remains (pass include_incomplete=True to load them)")
        warnings.warn(f"{message}; pass include_incomplete=True to load them", stacklevel=2)
    return RunSet(runs_by_id=runs, root=where)


def _root(root: Path) -> Path:
    if not root.exists():
        raise AnalysisError(f"{root}: no such file or directory")
    if root.is_file():
        if root.name != MANIFEST:
            raise AnalysisError(f"{root}: expected a run directory or its {MANIFEST}")
        root = root.parent
    return root


def _common_parts(roots: list[Path]) -> tuple[str, ...]:
    """The longest common leading path of several roots (what a message names as 'where')."""
    parts = [r.resolve().parts for r in roots]
    common = []
    for column in zip(*parts, strict=False):
        if len(set(column)) != 1:
            break
        common.append(column[0])
    return tuple(common) or ("/",)


def _read_run(run_dir: Path) -> Run:
    manifest = _read_manifest(run_dir / MANIFEST)
    parts: dict[str, tuple[Path, ...]] = {}
    agents = run_dir / "agents.parquet"
    if agents.is_file():
        _check_parquet(agents, required=("agent_id",))
        parts["agents"] = (agents,)
    for table_dir in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        files = tuple(sorted(table_dir.glob("part-*.parquet")))
        for f in files:
            _check_parquet(f, required=ENGINE_COLUMNS)
        if files:
            parts[table_dir.name] = files
    return Run(path=run_dir, manifest=manifest, parts=parts)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnalysisError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise AnalysisError(f"{path}: manifest is not a JSON object")
    missing = [k for k in REQUIRED_MANIFEST_KEYS if k not in manifest]
    if missing:
        raise AnalysisError(f"{path}: not a socsim manifest (missing {', '.join(missing)})")
    if not isinstance(manifest["config"], dict):
        raise AnalysisError(f"{path}: 'config' is not an object")
    return manifest


def _check_parquet(path: Path, required: tuple[str, ...]) -> None:
    """Read the footer only: cheap, and turns a foreign or truncated file into a one-line error."""
    try:
        with path.open("rb") as file:  # not the path: polars would read brackets in it as a glob
            names = pl.read_parquet_schema(file).keys()
    except Exception as exc:  # polars raises several kinds for a non-Parquet file
        raise AnalysisError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    missing = [c for c in required if c not in names]
    if missing:
        raise AnalysisError(f"{path}: not a socsim table (missing column {', '.join(missing)})")


def effective_status(manifest: dict[str, Any], now: datetime | None = None) -> str:
    """The manifest's status, with a `running` run whose process is gone reported as `crashed`: on
    this host a dead (or zombie) pid, anywhere a heartbeat older than STALE_INTERVALS intervals."""
    status = str(manifest.get("status") or "unknown")
    if status != "running":
        return status
    pid = manifest.get("pid")
    if isinstance(pid, int) and manifest.get("host") == socket.gethostname() and not _pid_alive(pid):
        return "crashed"
    try:
        beat = datetime.fromisoformat(str(manifest.get("heartbeat_at")))
    except ValueError:
        return "crashed"
    interval = float(manifest.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)
    stale = ((now or datetime.now(UTC)) - beat).total_seconds() > STALE_INTERVALS * interval
    return "crashed" if stale else "running"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _scenario_name(manifest: dict[str, Any]) -> str:
    scenario = manifest["scenario"]
    if isinstance(scenario, dict):  # tolerate a manifest that stores the scenario config itself
        scenario = scenario.get("name")
    return str(scenario)


def _flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become `a_b` keys; lists become JSON text so that every value is a scalar."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix=f"{name}_"))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat
