"""Checkpoints: everything needed to continue a run exactly, as plain files beside its Parquet parts.

    run_dir/checkpoints/step-00000012/world.npz         the world's arrays (numpy, allow_pickle=False)
    run_dir/checkpoints/step-00000012/checkpoint.json   next step, world's other fields, run totals,
                                                        recorder position (parts and rows per table)

A checkpoint at step t holds the world *before* step t and the records of steps < t. No random state
is stored: every stream is derived from the root seed and the step (`seeding.rng(seed, "plan", t)`,
`seeding.rng(seed, "resolve", t)`, `seeding.decision_seeds(seed, t, n)`), so the step number is the
whole RNG state. The recorder's buffered rows are queued as parts first, then the checkpoint, on the
recorder's one writer thread: it is written into a temporary folder, fsynced, and renamed into place
after those parts are on disk, and never once one of them failed. So a checkpoint that exists is
complete and agrees with the records; parts written after it are removed on resume.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sim.status import now_iso

FOLDER = "checkpoints"
FORMAT = 1
_NAME = re.compile(r"^step-(\d{8})$")
# run.checkpoint_every=null (automatic) for scripted runs: a checkpoint once the stepping since the
# last one took at least OVERHEAD_FACTOR times what that checkpoint cost (so checkpoints cost at most
# 1/OVERHEAD_FACTOR = 5% of the run), and never more often than every AUTO_MIN_INTERVAL_S.
OVERHEAD_FACTOR = 20.0
AUTO_MIN_INTERVAL_S = 60.0


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (missing, from another run, unreadable): one line."""


@dataclass
class Checkpoint:
    step: int  # the next step to run
    run_id: str
    arrays: dict[str, np.ndarray]
    world: dict[str, Any]  # the world's JSON-able fields (World.state()[1])
    totals: dict[str, Any]
    recorder: dict[str, dict[str, int]]  # {"parts": {table: n}, "rows": {table: n}}
    wall_time_s: float = 0.0
    written_at: str = field(default_factory=now_iso)


def folder_of(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / FOLDER / f"step-{step:08d}"


def steps(run_dir: Path) -> list[int]:
    """Steps of the complete checkpoints in a run directory, ascending."""
    root = Path(run_dir) / FOLDER
    if not root.is_dir():
        return []
    found = (_NAME.match(p.name) for p in root.iterdir() if (p / "checkpoint.json").is_file())
    return sorted(int(m.group(1)) for m in found if m)


def encode(checkpoint: Checkpoint) -> tuple[dict[str, np.ndarray], str]:
    """The arrays and the JSON text a checkpoint is written as (the text fixes the world's other fields
    now, however they change later)."""
    pickled = [name for name, array in checkpoint.arrays.items() if array.dtype.hasobject]
    if pickled:  # np.savez would pickle them; World.state() puts text in the JSON part instead
        raise CheckpointError(f"world field {pickled[0]!r}: an object array cannot be checkpointed without pickling")
    meta = {
        "format": FORMAT,
        "run_id": checkpoint.run_id,
        "step": checkpoint.step,
        "written_at": checkpoint.written_at,
        "wall_time_s": checkpoint.wall_time_s,
        "totals": checkpoint.totals,
        "recorder": checkpoint.recorder,
        "world": checkpoint.world,
    }
    return checkpoint.arrays, json.dumps(meta, separators=(",", ":"), default=json_default)


def write(run_dir: Path, checkpoint: Checkpoint) -> Path:
    """Write atomically (temp folder, fsync, rename); a checkpoint already at this step is kept."""
    arrays, text = encode(checkpoint)
    return commit(run_dir, checkpoint.step, arrays, text)


def commit(run_dir: Path, step: int, arrays: dict[str, np.ndarray], text: str) -> Path:
    """The writing itself: a temporary folder, both files fsynced, renamed into place."""
    final = folder_of(run_dir, step)
    if (final / "checkpoint.json").is_file():
        return final
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        with open(tmp / "world.npz", "wb") as f:
            np.savez(f, **arrays)  # uncompressed: the fastest to write and to read back
            _sync(f)
        with open(tmp / "checkpoint.json", "w") as f:
            f.write(text)
            _sync(f)
        fsync_dir(tmp)
        if final.exists():  # an incomplete leftover of an earlier attempt
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def json_default(value: Any) -> Any:
    """numpy scalars (a World may hold them) as plain numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def read(run_dir: Path, step: int, run_id: str | None = None) -> Checkpoint:
    folder = folder_of(run_dir, step)
    try:
        meta = json.loads((folder / "checkpoint.json").read_text())
        with np.load(folder / "world.npz", allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: no checkpoint at step {step} (have: {available(run_dir)})") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: unreadable checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{folder}: checkpoint format {meta.get('format')!r}, this socsim reads {FORMAT}")
    if run_id is not None and meta.get("run_id") != run_id:
        raise CheckpointError(f"{folder}: checkpoint of run {meta.get('run_id')!r}, not {run_id!r}")
    return Checkpoint(
        step=int(meta["step"]),
        run_id=str(meta["run_id"]),
        arrays=arrays,
        world=meta["world"],
        totals=meta["totals"],
        recorder=meta["recorder"],
        wall_time_s=float(meta.get("wall_time_s", 0.0)),
        written_at=str(meta.get("written_at")),
    )


def latest(run_dir: Path, run_id: str | None = None) -> Checkpoint | None:
    found = steps(run_dir)
    return read(run_dir, found[-1], run_id) if found else None


def prune(run_dir: Path, keep: Literal["last", "all"]) -> None:
    """Remove what no resume needs: unfinished temp folders, and with keep=last every older checkpoint."""
    root = Path(run_dir) / FOLDER
    if not root.is_dir():
        return
    for tmp in root.glob(".step-*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
    if keep == "last":
        for step in steps(run_dir)[:-1]:
            shutil.rmtree(folder_of(run_dir, step))


def available(run_dir: Path) -> str:
    """The checkpointed steps, for messages ("0, 5, 10" or "none")."""
    return ", ".join(map(str, steps(run_dir))) or "none"


def _sync(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (POSIX needs the directory itself synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Cadence:
    """When to checkpoint: every `every` steps, or (every=None) automatically: every step for runs with
    LLM agents (a step is expensive to redo), else once the stepping since the last checkpoint took
    OVERHEAD_FACTOR times that checkpoint's cost and at least AUTO_MIN_INTERVAL_S. every=0: only when
    the run is stopped."""

    def __init__(self, every: int | None, has_llm: bool) -> None:
        self.every = 1 if every is None and has_llm else every
        self.last_cost_s = 0.0
        self.since_s = 0.0

    def due(self, step: int, stepped_s: float) -> bool:
        """After a step (`step` = the next step to run), which took `stepped_s`."""
        self.since_s += stepped_s
        if self.every is None:
            return self.since_s >= max(AUTO_MIN_INTERVAL_S, OVERHEAD_FACTOR * self.last_cost_s)
        return self.every > 0 and step % self.every == 0

    def written(self, cost_s: float) -> None:
        self.last_cost_s, self.since_s = cost_s, 0.0


class Checkpointer:
    """Writes a run's checkpoints at its cadence and brings the run back to the last one.

    `save` is called at a step boundary only (the world between two steps). It queues the recorder's
    buffered rows as parts, snapshots the world (arrays copied, the rest encoded as JSON at once, since
    the next step changes the world in place) and hands the writing to the recorder's writer thread,
    after those parts: the disk work overlaps the next steps, and a checkpoint is never on disk before
    the parts it counts. `restore` waits for the writes, rewinds the recorder to the last checkpoint's
    position and returns (next step, world, totals state); with no checkpoint yet, the run restarts from
    its initial world, which `init` rebuilds from the seed."""

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        scenario: Any,
        seed: int,
        recorder: Any,
        cadence: Cadence,
        keep: Literal["last", "all"],
        wall_offset_s: float = 0.0,
    ) -> None:
        self.run_dir, self.run_id, self.scenario, self.seed = Path(run_dir), run_id, scenario, seed
        self.recorder, self.cadence, self.keep = recorder, cadence, keep
        self.wall_offset_s = wall_offset_s
        self.started = time.perf_counter()
        self.saved: int | None = None  # the step of the last checkpoint handed to the writer
        self.stepping_cost_s = 0.0  # what checkpoints cost the step loop (snapshots, waits)
        self.written: list[tuple[int, float, int]] = []  # (step, writing seconds, bytes), by the writer thread

    def start_clock(self) -> None:
        """The run's wall time counts from here (the stepping, not the set-up before it)."""
        self.started = time.perf_counter()

    def wall_time_s(self) -> float:
        """Run time so far, over every execution of this run (resumes add up)."""
        return self.wall_offset_s + time.perf_counter() - self.started

    def after_step(self, step: int, world: Any, totals: Any, stepped_s: float) -> None:
        if self.cadence.due(step, stepped_s):
            self.save(step, world, totals)

    def save(self, step: int, world: Any, totals: Any, wait: bool = False) -> None:
        """Checkpoint the world before `step` with the records of the steps before it; `wait`: until it
        is on disk (a run about to stop)."""
        began = time.perf_counter()
        if self.saved != step and not (folder_of(self.run_dir, step) / "checkpoint.json").is_file():
            position = self.recorder.flush()
            arrays, data = world.state()
            snapshot = Checkpoint(step, self.run_id, {name: a.copy() for name, a in arrays.items()}, data,
                                  totals.state(), position, round(self.wall_time_s(), 3))  # fmt: skip
            arrays, text = encode(snapshot)
            self.recorder.submit(self._commit, step, arrays, text)
            self.saved = step
        if wait:
            self.recorder.drain()
        cost = time.perf_counter() - began
        self.stepping_cost_s += cost
        self.cadence.written(cost)

    def _commit(self, step: int, arrays: dict[str, np.ndarray], text: str) -> None:
        """In the writer thread, after the parts the checkpoint counts."""
        began = time.perf_counter()
        self.recorder.fsync_tables()
        folder = commit(self.run_dir, step, arrays, text)
        prune(self.run_dir, self.keep)
        self.recorder.beat(last_checkpoint=step)
        self.written.append((step, time.perf_counter() - began, sum(f.stat().st_size for f in folder.iterdir())))

    def restore(self) -> tuple[int, Any, dict[str, Any] | None]:
        """Back to the last checkpoint: (next step, world, totals state or None for a fresh start)."""
        from sim import seeding

        self.recorder.drain()
        last = latest(self.run_dir, self.run_id)
        self.saved = None
        if last is None:
            self.recorder.rewind({})
            return 0, self.scenario.init(seeding.rng(self.seed, "init")), None
        self.recorder.rewind(last.recorder)
        return last.step, self.scenario.restore(last.arrays, last.world), last.totals
