"""Sweeps (`socsim -m ...`): where each cell writes, and the sweep manifest `sweep.json`.

Layout: the sweep directory is `run.dir` when given, else `multirun/<date>/<time>`; each cell writes into
a subdirectory named from its overrides (Hydra's `hydra.job.override_dirname`, which leaves out the
execution options `run.*`; see sim/conf/config.yaml), e.g. `scenario.epsilon=0.3,seed=2`.

`SweepManifest` is a Hydra callback. It opens `sweep.json` in the launching process before any cell
starts, and records each cell as it starts and ends (overrides, parameters, run directory, status,
error). Cells may run in other processes or on other machines (joblib, submitit, Ray launchers), so
every update is a read-modify-write under an exclusive file lock, written to a temporary file and
renamed into place: a reader never sees a half-written manifest, and no update is lost.

Relative paths are resolved against the directory socsim was started in (`hydra.runtime.cwd`), not
the cell's own working directory: a Ray worker, for one, runs in the directory its cluster was
started from.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from sim.recorder import now_iso

MANIFEST = "sweep.json"
_LOCK = ".sweep.json.lock"
# Files a sweep that never started a cell leaves behind; removed again when the launch fails.
_LAUNCH_FILES = (MANIFEST, _LOCK, "multirun.yaml")

# Sweep directories opened by this process and not yet closed (the launching process only).
_open: set[Path] = set()


class SweepError(ValueError):
    """The sweep cannot start (bad run.dir, swept execution options, a directory already in use)."""


class CellInputError(Exception):
    """A cell's own input was refused (bad value, unreadable file, unreachable server); the message
    is the one line socsim prints for that error. Picklable, so any launcher can carry it back."""


def _launch_dir(hydra_cfg: Any) -> Path:
    return Path(hydra_cfg.runtime.cwd or os.getcwd())


def sweep_dir(hydra_cfg: Any) -> Path:
    """The sweep's directory, absolute, from the `hydra` node of a sweep or cell config."""
    return _launch_dir(hydra_cfg) / str(hydra_cfg.sweep.dir)


def cell_dir(hydra_cfg: Any) -> Path:
    """Where a cell writes its run: the sweep directory / the cell's name."""
    return sweep_dir(hydra_cfg) / str(hydra_cfg.sweep.subdir)


def _parsed(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides(overrides)


def parameters(overrides: list[str], exclude: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The values a cell's overrides set, by key (`seed=2` -> {"seed": 2}), without the `exclude`d keys
    (the execution options that do not name a cell either); deletions are left out."""
    kept = [o for o in _parsed(overrides) if not o.is_delete() and o.key_or_group not in exclude]
    return {o.key_or_group: o.value() for o in kept}


def _swept_keys(overrides: list[str]) -> list[str]:
    return [o.key_or_group for o in _parsed(overrides) if o.is_sweep_override()]


def _is_run_key(key: str) -> bool:
    return key.split(".")[0] == "run"


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / _LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read(root: Path) -> dict[str, Any]:
    return json.loads((Path(root) / MANIFEST).read_text())


def _write(root: Path, manifest: dict[str, Any]) -> None:
    tmp = root / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, root / MANIFEST)


def _update(root: Path, change: Any) -> dict[str, Any]:
    with _locked(root):
        manifest = read(root)
        change(manifest)
        manifest["counts"] = _counts(manifest["cells"])
        _write(root, manifest)
        return manifest


def _counts(cells: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("running", "completed", "failed"), 0)
    for cell in cells:
        counts[cell["status"]] = counts.get(cell["status"], 0) + 1
    return counts


def _put_cell(manifest: dict[str, Any], cell: dict[str, Any]) -> None:
    cells = [c for c in manifest["cells"] if c["num"] != cell["num"]]
    manifest["cells"] = sorted([*cells, cell], key=lambda c: c["num"])


def open_sweep(config: DictConfig) -> Path:
    """Check the sweep can start and write its manifest; raise SweepError (nothing written) if not."""
    if not OmegaConf.is_missing(config.run, "dir") and not str(config.run.dir or "").strip():
        raise SweepError("run.dir: must be a path (leave it out to sweep into multirun/<date>/<time>)")
    task_overrides = list(config.hydra.overrides.task)
    swept = _swept_keys(task_overrides)
    swept_run = [key for key in swept if _is_run_key(key)]
    if swept_run:
        raise SweepError(
            f"{swept_run[0]}: execution options (run.*) cannot be swept: their cells would share one directory; "
            "start one sweep per value"
        )
    root = sweep_dir(config.hydra)
    if (root / "manifest.json").exists():
        raise SweepError(f"run.dir {root} holds a single run; a sweep needs a directory of its own")
    if (root / MANIFEST).exists() and not config.run.get("overwrite", False):
        raise SweepError(f"run.dir {root} already holds a sweep; choose another or set run.overwrite=true")
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        _write(
            root,
            {
                "sweep_dir": str(root),
                "status": "running",
                "started_at": now_iso(),
                "finished_at": None,
                "overrides": task_overrides,
                "swept": swept,
                "launcher": OmegaConf.select(config, "hydra.launcher._target_"),
                "sweeper": OmegaConf.select(config, "hydra.sweeper._target_"),
                "counts": _counts([]),
                "cells": [],
            },
        )
    _open.add(root)
    return root


def _cell_entry(config: DictConfig) -> dict[str, Any]:
    hydra_cfg = config.hydra
    overrides = list(hydra_cfg.overrides.task)
    root, run_dir = sweep_dir(hydra_cfg), cell_dir(hydra_cfg)
    return {
        "num": int(hydra_cfg.job.num),
        "name": str(hydra_cfg.sweep.subdir),
        "overrides": overrides,
        "params": parameters(overrides, list(hydra_cfg.job.config.override_dirname.exclude_keys)),
        "run_dir": os.path.relpath(run_dir, root) if root in run_dir.parents else str(run_dir),
        "host": socket.gethostname(),
    }


def error_line(exc: BaseException) -> str:
    """One line for an error: a cell's input error as it is; else the exception's type and first line, or
    the last `...Error: ...` line of a message that carries a remote traceback (Ray's do)."""
    if isinstance(exc, CellInputError):
        return str(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines[1:] if re.match(r"^[\w.]*(Error|Exception): ", line)]
    if causes:
        return causes[-1]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _run_id(run_dir: Path) -> str | None:
    with suppress(OSError, ValueError):
        return json.loads((run_dir / "manifest.json").read_text()).get("run_id")
    return None


def start_cell(config: DictConfig) -> None:
    entry = {**_cell_entry(config), "status": "running", "started_at": now_iso(), "finished_at": None}
    entry.update(error=None, input_error=False, run_id=None)
    _update(sweep_dir(config.hydra), lambda m: _put_cell(m, entry))


def end_cell(config: DictConfig, job_return: JobReturn) -> None:
    root = sweep_dir(config.hydra)
    failed = job_return.status != JobStatus.COMPLETED
    # The stored value, not the `return_value` property: that re-raises a failed cell's exception.
    exc = job_return._return_value if failed else None
    end = {
        "status": "failed" if failed else "completed",
        "finished_at": now_iso(),
        "error": error_line(exc) if isinstance(exc, BaseException) else ("failed" if failed else None),
        "input_error": isinstance(exc, CellInputError),
        "run_id": _run_id(cell_dir(config.hydra)),
    }

    def change(manifest: dict[str, Any]) -> None:
        entry = next((c for c in manifest["cells"] if c["num"] == int(config.hydra.job.num)), None)
        _put_cell(manifest, {**(entry or {**_cell_entry(config), "started_at": None}), **end})

    _update(root, change)


def close_sweep(root: Path, launch_error: str | None = None) -> dict[str, Any]:
    """Mark the sweep finished. Cells that never reported their end (a launcher lost them) are failed."""

    def change(manifest: dict[str, Any]) -> None:
        lost = launch_error or "the launcher lost this cell before it reported its end"
        for cell in manifest["cells"]:
            if cell["status"] == "running":
                cell.update(status="failed", error=lost)
        ok = launch_error is None and all(c["status"] == "completed" for c in manifest["cells"])
        manifest.update(status="completed" if ok else "failed", finished_at=now_iso())
        if launch_error is not None:
            manifest["error"] = launch_error

    _open.discard(root)
    return _update(root, change)


def abandon(root: Path) -> None:
    """Remove what a sweep that never started a cell wrote (its manifest, lock, Hydra's multirun.yaml)."""
    _open.discard(root)
    for name in _LAUNCH_FILES:
        (root / name).unlink(missing_ok=True)
    path, stop = root, Path.cwd()
    while path != stop and path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        if stop not in path.parents:
            break
        path = path.parent


def open_sweeps() -> list[Path]:
    """Sweeps this process opened and has not closed (for the CLI to close after a launch failed)."""
    return sorted(_open)


class SweepManifest(Callback):
    """Keeps `sweep.json` in the sweep directory; does nothing for a single run."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            open_sweep(config)
        except SweepError as exc:
            # Hydra turns a callback's exceptions into warnings and launches anyway; a refused sweep
            # must end here, before anything is written, as any bad input does: one line, status 2.
            from sim.cli import fail

            fail(str(exc))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _in_sweep(config):
            start_cell(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if _in_sweep(config):
            end_cell(config, job_return)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = sweep_dir(config.hydra)
        manifest = close_sweep(root)
        counts = manifest["counts"]
        print(
            f"socsim: sweep of {len(manifest['cells'])} cells written to {root} "
            f"({counts['completed']} completed, {counts['failed']} failed)",
            file=sys.stderr,
        )


def _in_sweep(config: DictConfig) -> bool:
    from hydra.types import RunMode

    return OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN
