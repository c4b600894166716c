"""The only writer of a run directory.

    run_dir/manifest.json            what ran, with which versions, how it ended, totals
    run_dir/agents.parquet           one row per agent: id, policy, persona
    run_dir/graph.parquet            the social graph: one row per undirected edge (source < target)
    run_dir/<table>/part-NNNNN.parquet   interactions, states, ... streamed in parts
    run_dir/checkpoints/step-NNNNNNNN/   see sim/checkpoint.py

Rows are buffered per table and written once `flush_rows` accumulate, as parts of at most that many
rows, so memory stays flat however many steps run. Background writer threads write the parts (two at
once on a machine with a second core) and the checkpoints (each after every job before it), a few jobs
in flight at most, so compression and disk time overlap the next steps' computation. Every file is
written to a temporary name, fsynced and renamed into place, so a crash never leaves a half-written
part or manifest, and a failed write leaves no temporary file behind.

While the run executes, the manifest says `status: running` with the process's pid and host and a
`heartbeat_at` time that a background thread refreshes every `heartbeat_s` seconds (see sim/status.py).
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import shutil
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from agents.graph import SocialGraph
from scenarios.rows import Codes, Const, Rows
from sim import checkpoint
from sim.status import DEFAULT_HEARTBEAT_S, RUNNING, this_process
from sim.status import now_iso as heartbeat_time

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
    "stand_in": pl.String(),  # the scripted policy that answered instead (backend.on_failure=policy:<name>)
}
RUN_FILES = ("agents.parquet", "graph.parquet", "manifest.json")
MAX_IN_FLIGHT = 4  # writer jobs (parts, checkpoints) pending at once: memory bound vs. overlap with stepping
# writer threads: parts are files of their own, so two are encoded at once where a second core is free
# (encoding and compressing release the GIL); a checkpoint still waits for every job before it
WRITERS = 2 if (os.cpu_count() or 1) > 1 else 1
Position = dict[str, dict[str, int]]  # {"parts": {table: n}, "rows": {table: n}}


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


def _atomic_write(path: Path, write: Callable[[Path], Any], durable: bool = True) -> None:
    """Write through a temporary name, fsync (unless `durable=False`), rename; never leave the temp file.
    An I/O error polars reports in its own exception type is raised as the OSError it is."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        try:
            write(tmp)
        except pl.exceptions.PolarsError as exc:
            code = re.search(r"\(os error (\d+)\)", str(exc))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from exc
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def part_index(path: Path) -> int:
    return int(path.name.removeprefix("part-").removesuffix(".parquet"))


class RunDirError(ValueError):
    """The run directory cannot be used (already holds a run, is not a directory, cannot be written)."""


def check_run_dir(path: Path, overwrite: bool) -> None:
    """Refuse to mix two runs in one directory unless asked to replace the old one, and a directory
    this process cannot write (checked early, before any server or shard starts; nothing is left)."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run.dir {path} exists and is not a directory")
    if (path / "manifest.json").exists() and not overwrite:
        raise RunDirError(f"run.dir {path} already holds a run; choose another or set run.overwrite=true")
    check_writable(path)


def check_writable(path: Path) -> None:
    """Create (then remove) a probe file in `path`, or in its nearest existing parent."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    probe = existing / f".socsim-probe-{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunDirError(f"run.dir {path} cannot be written ({exc.strerror or exc})") from None


def clear_previous_run(path: Path) -> None:
    """Remove an earlier run's files (run.overwrite=true), only once the new run is about to start.

    Checkpoints and parts go first and the manifest last: a clear that is interrupted still leaves a
    directory that "holds a run", so stale parts can never mix with a new run's."""
    if not (path / "manifest.json").exists():
        return
    shutil.rmtree(path / checkpoint.FOLDER, ignore_errors=True)
    for folder in (child for child in path.iterdir() if child.is_dir()):
        for part in folder.glob("part-*.parquet"):
            part.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)


def remove_temporaries(path: Path) -> None:
    """Remove temporary files a killed process left (`.<name>.tmp` beside parts and the manifest)."""
    if not path.is_dir():
        return
    for folder in (path, *(child for child in path.iterdir() if child.is_dir())):
        for tmp in folder.glob(".*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
    checkpoint.prune(path, "all")  # unfinished checkpoint folders only


class Recorder:
    def __init__(self, run_dir: Path, schemas: dict[str, pl.Schema], flush_rows: int) -> None:
        self.run_dir = run_dir
        self.schemas = schemas
        self.flush_rows = flush_rows
        self.buffers: dict[str, list[pl.DataFrame | Rows]] = {name: [] for name in schemas}
        self.buffered: dict[str, int] = dict.fromkeys(schemas, 0)
        self.parts: dict[str, int] = dict.fromkeys(schemas, 0)
        self.rows: dict[str, int] = dict.fromkeys(schemas, 0)
        self.manifest: dict[str, Any] = {}
        self._texts: dict[str, dict[str, bool]] = {}
        self._writer = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="socsim-recorder")
        self._pending: deque[Future] = deque()  # the writer's jobs, oldest first
        # the writer imports what it writes parts with (pyarrow) while the run sets up and steps
        self._pending.append(self._writer.submit(importlib.import_module, "sim.parts"))
        self._writer_failed = False  # set on the writer thread
        self._manifest_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        self._stop_beating = threading.Event()
        self._background_error: BaseException | None = None
        self.finishing = False  # finish() was called (it runs once)
        self.closed = False  # the manifest records how the run ended

    # ---- opening a run directory --------------------------------------------------------------------
    def start(
        self,
        manifest: dict[str, Any],
        agents: pl.DataFrame,
        graph: SocialGraph,
        heartbeat_s: float,
        position: Position | None = None,
    ) -> None:
        """Write the manifest (status running), the agents and the graph: one row per edge, or for a
        complete graph no rows and the file's metadata saying `socsim.graph: complete` (n²/2 rows of
        nothing but every pair would cost more than the run). `position`: parts already in place (a
        fork's copy of its parent's records)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if position:
            self._truncate(position)
        self.manifest = {**manifest, "started_at": now_iso()}
        self._mark_running(heartbeat_s)
        # written by the writer threads while the run steps (a million personas and edges take ~1 s):
        # every checkpoint comes after them, and a failure surfaces at the next step like a part's
        self.submit(_atomic_write, self.run_dir / "agents.parquet", agents.write_parquet, ordered=False)
        edges = graph.edges
        table = pl.DataFrame(
            {"source": edges[:, 0], "target": edges[:, 1]}, schema={"source": pl.Int64, "target": pl.Int64}
        )
        if graph.weights is not None:
            table = table.with_columns(pl.Series("weight", graph.weights, dtype=pl.Float64))
        meta = {"socsim.graph": "complete" if graph.complete else "edges", "socsim.nodes": str(graph.n)}
        self.submit(
            _atomic_write, self.run_dir / "graph.parquet",
            lambda p: table.write_parquet(p, compression="zstd", metadata=meta), ordered=False,
        )  # fmt: skip

    def reopen(self, manifest: dict[str, Any], position: Position, heartbeat_s: float) -> None:
        """Continue a run directory from a recorder position (a resume): parts past it are removed."""
        remove_temporaries(self.run_dir)
        self._truncate(position)
        self.manifest = dict(manifest)
        self._mark_running(heartbeat_s)

    def _mark_running(self, heartbeat_s: float) -> None:
        for stale in ("ended_at", "error", "totals"):
            self.manifest.pop(stale, None)
        self.manifest.update(status=RUNNING, **this_process(), heartbeat_s=heartbeat_s, heartbeat_at=heartbeat_time())
        self._write_manifest()

    def _truncate(self, position: Position) -> None:
        """Counters at `position`, and no part on disk past it."""
        self.parts = {t: int(position.get("parts", {}).get(t, 0)) for t in self.schemas}
        self.rows = {t: int(position.get("rows", {}).get(t, 0)) for t in self.schemas}
        for table in self.schemas:
            folder = self.run_dir / table
            if not folder.is_dir():
                continue
            for part in folder.glob("part-*.parquet"):
                if part_index(part) >= self.parts[table]:
                    part.unlink()
            missing = [i for i in range(self.parts[table]) if not (folder / part_name(i)).is_file()]
            if missing:
                raise checkpoint.CheckpointError(f"{folder}: {part_name(missing[0])} is missing; the run cannot resume")

    def rewind(self, position: Position) -> None:
        """Forget every row past `position` (buffered or written): the run replays from a checkpoint."""
        self.drain()
        self.buffers = {name: [] for name in self.schemas}
        self.buffered = dict.fromkeys(self.schemas, 0)
        self._truncate(position)

    # ---- heartbeat ------------------------------------------------------------------------------
    def start_heartbeat(self) -> None:
        """Refresh `heartbeat_at` every `heartbeat_s` from a daemon thread until `finish`."""
        interval = float(self.manifest.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)

        def beat() -> None:
            while not self._stop_beating.wait(interval):
                try:
                    self.beat()
                except OSError as exc:  # surfaced to the run loop by check(); keep trying
                    self._background_error = exc

        self._stop_beating.clear()
        self._heartbeat = threading.Thread(target=beat, name="socsim-heartbeat", daemon=True)
        self._heartbeat.start()

    def beat(self, **fields: Any) -> None:
        """Refresh the heartbeat (and set `fields`) in the manifest."""
        with self._manifest_lock:
            if self.manifest.get("status") != RUNNING:
                return
            self.manifest.update(fields, heartbeat_at=heartbeat_time())
            self._write_manifest_locked(durable=bool(fields))

    def check(self) -> None:
        """Raise an I/O error a background thread met (a failed part or checkpoint write, a heartbeat)."""
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        if self._background_error is not None:
            error, self._background_error = self._background_error, None
            raise error

    def _stop_heartbeat(self) -> None:
        self._stop_beating.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None

    # ---- rows -----------------------------------------------------------------------------------
    def records(self, table: str) -> bool:
        return table in self.schemas

    def records_decisions(self, table: str) -> bool:
        """Rows of this table carry the decision columns (policy, model, accounting)."""
        return table in self.schemas and all(c in self.schemas[table] for c in DECISION_COLUMNS)

    def _text_columns(self, table: str) -> dict[str, bool]:
        """Which of the table's columns are declared text (worked out once a table, not once a step)."""
        text = self._texts.get(table)
        if text is None:
            text = self._texts[table] = {name: dtype == pl.String for name, dtype in self.schemas[table].items()}
        return text

    def add(self, table: str, frame: pl.DataFrame | Rows) -> None:
        """Buffer a step's rows of `table` (a DataFrame, or plain columns: see scenarios.rows)."""
        if table not in self.schemas:
            raise RuntimeError(f"table {table!r} is not declared in the scenario's tables")
        frame = _conform(table, frame, self.schemas[table], self._text_columns(table))
        if frame.height == 0:
            return
        self.buffers[table].append(frame)
        self.buffered[table] += frame.height
        if self.buffered[table] >= self.flush_rows:
            self._flush(table)

    def _flush(self, table: str) -> None:
        """Hand the buffered rows to the writers as parts of at most `flush_rows` rows, of equal size:
        a step larger than that (a million moves) is written by both writer threads at once, and the
        run's last step does not wait for one thread to encode it alone."""
        if not self.buffers[table]:
            return
        chunks, schema = self.buffers[table], self.schemas[table]
        folder = self.run_dir / table
        folder.mkdir(exist_ok=True)
        stacked: Rows | pl.DataFrame
        if all(isinstance(chunk, Rows) for chunk in chunks):
            # stacked here, built and written on the writer thread: stacking thousands of small steps
            # is Python work, which on the writer thread would take turns with the next steps for the
            # GIL and slow them down more than it costs here (encoding and compressing release the GIL)
            stacked = Rows.concat(chunks)
            write = lambda path, piece: _write_rows(path, [piece], schema)  # noqa: E731
        else:
            stacked = pl.concat([c.frame(schema) if isinstance(c, Rows) else c for c in chunks], rechunk=False)
            write = lambda path, piece: piece.write_parquet(path, compression="zstd", statistics=True)  # noqa: E731
        for start, stop in _pieces(stacked.height, self.flush_rows):
            piece = stacked.slice(start, stop - start)
            self.submit(_atomic_write, folder / part_name(self.parts[table]), lambda p, piece=piece: write(p, piece),
                        ordered=False)  # fmt: skip
            self.parts[table] += 1
        self.rows[table] += self.buffered[table]
        self.buffers[table], self.buffered[table] = [], 0

    def submit(self, job: Callable[..., Any], *args: Any, ordered: bool = True) -> None:
        """Run `job(*args)` on a writer thread, once every job before it is done (`ordered`: e.g. a
        checkpoint, which counts the parts before it) or beside them (a part: a file of its own);
        waits while MAX_IN_FLIGHT jobs are pending (memory stays bounded) and surfaces a failed one."""
        while len(self._pending) >= MAX_IN_FLIGHT:
            self._pending.popleft().result()
        earlier = list(self._pending) if ordered else []
        self._pending.append(self._writer.submit(self._in_order, earlier, job, *args))

    def _in_order(self, earlier: list[Future], job: Callable[..., Any], *args: Any) -> Any:
        """On a writer thread: after the `earlier` jobs (handed out before this one, so running or done:
        waiting cannot deadlock); once a job failed, the later ones are skipped, so a checkpoint is
        never written after a part it counts failed to be."""
        for future in earlier:
            future.exception()  # waits; a failed job has set `_writer_failed`
        if self._writer_failed:
            return None
        try:
            return job(*args)
        except BaseException:
            self._writer_failed = True
            raise

    def drain(self) -> None:
        """Wait until every job handed to the writer is done (raising the first that failed)."""
        while self._pending:
            self._pending.popleft().result()

    def position(self) -> Position:
        """Parts and rows handed to the writer so far, per table."""
        return {"parts": dict(self.parts), "rows": dict(self.rows)}

    def flush(self) -> Position:
        """Hand every buffered row to the writer as a part: what a checkpoint queued after them counts."""
        for table in self.schemas:
            self._flush(table)
        return self.position()

    def fsync_tables(self) -> None:
        """Make the parts' names durable (the parts themselves are fsynced as they are written)."""
        for table in self.schemas:
            if (self.run_dir / table).is_dir():
                checkpoint.fsync_dir(self.run_dir / table)

    def sync(self) -> Position:
        """Write every buffered row as a part, wait for the writer, and make the parts durable."""
        position = self.flush()
        self.drain()
        self.fsync_tables()
        return position

    # ---- closing --------------------------------------------------------------------------------
    def finish(
        self,
        status: str,
        totals: dict[str, Any],
        error: str | None = None,
        flush: bool = True,
        extra: dict[str, Any] | None = None,
        late_totals: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Flush every table (unless `flush=False`: a run that failed writing), wait for the writes, and
        close the manifest with how the run ended (and `extra` fields; `late_totals()`: totals known once
        the writer is done). A failed flush still closes the manifest, as failed, then raises."""
        self.finishing = True
        self._stop_heartbeat()
        failure: BaseException | None = None
        try:
            if flush:
                self.sync()
            else:
                self.drain()
        except OSError as exc:
            failure = exc
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self._writer.shutdown(wait=True)
        with self._manifest_lock:
            self.manifest.update(
                extra or {},
                status=status,
                ended_at=now_iso(),
                totals={**totals, **(late_totals() if late_totals else {}), "rows": dict(self.rows),
                        "parts": dict(self.parts)},
            )  # fmt: skip
            if error:
                self.manifest["error"] = error
            self._write_manifest_locked(durable=True)
            self.closed = True
        if failure is not None:
            raise failure

    def abandon(self) -> None:
        """Stop the background threads without writing anything (the directory cannot be written)."""
        self._stop_heartbeat()
        try:
            self.drain()
        except OSError:
            pass
        finally:
            self._writer.shutdown(wait=True)

    def _write_manifest(self) -> None:
        with self._manifest_lock:
            self._write_manifest_locked(durable=True)

    def _write_manifest_locked(self, durable: bool) -> None:
        text = json.dumps(self.manifest, indent=2, default=str)
        _atomic_write(self.run_dir / "manifest.json", lambda p: p.write_text(text + "\n"), durable=durable)


def _pieces(height: int, most: int) -> list[tuple[int, int]]:
    """`height` rows cut into the fewest runs of at most `most` rows, as equal as can be: (start, stop)."""
    count = max(1, -(-height // most))
    bounds = [height * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def _write_rows(path: Path, chunks: list[Rows], schema: pl.Schema) -> None:
    from sim.parts import write_rows  # imported on the writer thread (see Recorder.__init__)

    write_rows(path, chunks, schema)


def _conform(
    table: str, frame: pl.DataFrame | Rows, schema: pl.Schema, declared_text: dict[str, bool]
) -> pl.DataFrame | Rows:
    """Columns in schema order with schema types; a missing or extra column is a scenario bug. Rows
    given as columns are checked here and cast when their part is built."""
    if not (isinstance(frame, Rows) and frame.columns.keys() == declared_text.keys()):
        missing = [c for c in schema if c not in frame.columns]
        extra = [c for c in frame.columns if c not in schema]
        if missing or extra:
            raise RuntimeError(f"table {table!r}: missing columns {missing}, undeclared columns {extra}")
    if isinstance(frame, Rows):
        for name, column in frame.columns.items():
            if type(column) is Const:
                continue
            text = type(column) is Codes or getattr(getattr(column, "dtype", None), "kind", "") == "O"
            if text != declared_text[name]:
                raise RuntimeError(f"table {table!r}: column {name!r} is declared {schema[name]} but holds "
                                   f"{'text' if text else column.dtype}")  # fmt: skip
        return frame
    return frame.select(pl.col(name).cast(dtype, strict=True) for name, dtype in schema.items())
