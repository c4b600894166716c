"""The only writer of a run directory.

    run_dir/manifest.json            what ran, with which versions, how it ended, totals
    run_dir/agents.parquet           one row per agent: id, policy, persona
    run_dir/graph.parquet            the social graph: one row per undirected edge (source < target)
    run_dir/<table>/part-NNNNN.parquet   interactions, states, ... streamed in parts

Rows are buffered per table and written as a part once `flush_rows` accumulate, so memory stays
flat however many steps run. One background thread writes the parts (in order, at most one part in
flight), so compression overlaps the next steps' computation. Every file is written to a temporary
name and renamed into place, so a crash never leaves a half-written part or manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from agents.graph import SocialGraph

ENGINE_FRONT = {"run_id": pl.String(), "step": pl.Int64()}
DECISION_COLUMNS = {
    "policy": pl.String(),
    "backend": pl.String(),
    "model": pl.String(),
    "latency_ms": pl.Float64(),
    "prompt_tokens": pl.Int32(),
    "completion_tokens": pl.Int32(),
    "cached": pl.Boolean(),
    "fallback_reason": pl.String(),  # null: the agent's own answer; else why there is none (the action is null)
}


def full_schemas(scenario_schemas: Mapping[str, Mapping[str, pl.DataType]]) -> dict[str, pl.Schema]:
    """The recorded schema of every table: engine columns around the scenario's own."""
    out = {}
    for name, columns in scenario_schemas.items():
        cols = {**ENGINE_FRONT, **{k: v for k, v in columns.items() if k not in ENGINE_FRONT}}
        if name == "interactions":
            cols.update(DECISION_COLUMNS)
        out[name] = pl.Schema(cols)
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _atomic_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


class RunDirError(ValueError):
    """The run directory cannot be used (already holds a run, or is not a directory)."""


def check_run_dir(path: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one directory unless asked to replace the old one (checked early,
    before any server or shard starts)."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run.dir {path} exists and is not a directory")
    if (path / "manifest.json").exists() and not overwrite:
        raise RunDirError(f"run.dir {path} already holds a run; choose another or set run.overwrite=true")


def clear_previous_run(path: Path) -> None:
    """Remove an earlier run's files (run.overwrite=true), only once the new run is about to start.

    Parts go first and the manifest last: a clear that is interrupted still leaves a directory that
    "holds a run", so stale parts can never mix with a new run's."""
    if not (path / "manifest.json").exists():
        return
    for folder in (child for child in path.iterdir() if child.is_dir()):
        for part in folder.glob("part-*.parquet"):
            part.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()
    for name in ("agents.parquet", "graph.parquet", "manifest.json"):
        (path / name).unlink(missing_ok=True)


class Recorder:
    def __init__(self, run_dir: Path, schemas: dict[str, pl.Schema], flush_rows: int) -> None:
        self.run_dir = run_dir
        self.schemas = schemas
        self.flush_rows = flush_rows
        self.buffers: dict[str, list[pl.DataFrame]] = {name: [] for name in schemas}
        self.buffered: dict[str, int] = dict.fromkeys(schemas, 0)
        self.parts: dict[str, int] = dict.fromkeys(schemas, 0)
        self.rows: dict[str, int] = dict.fromkeys(schemas, 0)
        self.manifest: dict[str, Any] = {}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socsim-recorder")
        self._pending: Future | None = None

    def start(self, manifest: dict[str, Any], agents: pl.DataFrame, graph: SocialGraph) -> None:
        """Write the manifest (status running), the agents and the graph: one row per edge, or for a
        complete graph no rows and the file's metadata saying `socsim.graph: complete` (n²/2 rows of
        nothing but every pair would cost more than the run)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.manifest = {**manifest, "status": "running", "started_at": now_iso()}
        self._write_manifest()
        _atomic_write(self.run_dir / "agents.parquet", agents.write_parquet)
        edges = graph.edges
        table = pl.DataFrame(
            {"source": edges[:, 0], "target": edges[:, 1]}, schema={"source": pl.Int64, "target": pl.Int64}
        )
        if graph.weights is not None:
            table = table.with_columns(pl.Series("weight", graph.weights, dtype=pl.Float64))
        meta = {"socsim.graph": "complete" if graph.complete else "edges", "socsim.nodes": str(graph.n)}
        _atomic_write(
            self.run_dir / "graph.parquet", lambda p: table.write_parquet(p, compression="zstd", metadata=meta)
        )

    def records_decisions(self, table: str) -> bool:
        """Rows of this table carry the decision columns (policy, model, accounting)."""
        return table in self.schemas and all(c in self.schemas[table] for c in DECISION_COLUMNS)

    def add(self, table: str, frame: pl.DataFrame) -> None:
        if table not in self.schemas:
            raise RuntimeError(f"table {table!r} is not declared in the scenario's tables")
        frame = _conform(table, frame, self.schemas[table])
        if frame.height == 0:
            return
        self.buffers[table].append(frame)
        self.buffered[table] += frame.height
        if self.buffered[table] >= self.flush_rows:
            self._flush(table)

    def _flush(self, table: str) -> None:
        if not self.buffers[table]:
            return
        frame = pl.concat(self.buffers[table], how="vertical", rechunk=False)
        folder = self.run_dir / table
        folder.mkdir(exist_ok=True)
        path = folder / f"part-{self.parts[table]:05d}.parquet"
        self._wait()  # bounds memory to one part in flight, and surfaces a failed write
        self._pending = self._writer.submit(
            _atomic_write, path, lambda p: frame.write_parquet(p, compression="zstd", statistics=True)
        )
        self.parts[table] += 1
        self.rows[table] += frame.height
        self.buffers[table], self.buffered[table] = [], 0

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def finish(self, status: str, totals: dict[str, Any], error: str | None = None) -> None:
        """Flush every table, wait for the writes, and close the manifest with how the run ended."""
        try:
            for table in self.schemas:
                self._flush(table)
            self._wait()
        finally:
            self._writer.shutdown(wait=True)
        self.manifest.update(
            status=status,
            ended_at=now_iso(),
            totals={**totals, "rows": dict(self.rows), "parts": dict(self.parts)},
        )
        if error:
            self.manifest["error"] = error
        self._write_manifest()

    def _write_manifest(self) -> None:
        text = json.dumps(self.manifest, indent=2, default=str)
        _atomic_write(self.run_dir / "manifest.json", lambda p: p.write_text(text + "\n"))


def _conform(table: str, frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Columns in schema order with schema types; a missing or extra column is a scenario bug."""
    missing = [c for c in schema if c not in frame.columns]
    extra = [c for c in frame.columns if c not in schema]
    if missing or extra:
        raise RuntimeError(f"table {table!r}: missing columns {missing}, undeclared columns {extra}")
    return frame.select(pl.col(name).cast(dtype, strict=True) for name, dtype in schema.items())
