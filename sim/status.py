"""A run's status as a fact about a process.

While a run executes, its manifest says `status: running` with the process (`pid`, `host`) and a
`heartbeat_at` time the run refreshes every `heartbeat_s` seconds. Whoever reads a manifest
(`analysis.load`, `socsim-report`, `socsim-resume`) asks `effective_status`, which turns a `running`
manifest whose process is gone into `crashed`: on the same host when the pid is dead (or a zombie),
anywhere when the heartbeat is older than a few intervals. A manifest is never rewritten by a reader.

Pure standard library: the recorder (the writer) and analysis (a reader) share this one definition.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUNNING, COMPLETED, CRASHED = "running", "completed", "crashed"
INTERRUPTED, FAILED = "interrupted", "failed"
BUDGET_EXHAUSTED = "budget_exhausted"
STALE_INTERVALS = 6  # a heartbeat this many intervals old means the process stopped beating
DEFAULT_HEARTBEAT_S = 5.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def this_process() -> dict[str, Any]:
    """The manifest fields that identify the running process."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): the signal test is all we have
    return state != "Z"


def heartbeat_age_s(manifest: dict[str, Any], now: datetime | None = None) -> float | None:
    beat = manifest.get("heartbeat_at")
    if not isinstance(beat, str):
        return None
    try:
        then = datetime.fromisoformat(beat)
    except ValueError:
        return None
    return ((now or datetime.now(UTC)) - then).total_seconds()


def effective_status(manifest: dict[str, Any], now: datetime | None = None) -> str:
    """The manifest's status, with a `running` run whose process is gone reported as `crashed`."""
    status = str(manifest.get("status") or "unknown")
    if status != RUNNING:
        return status
    pid, host = manifest.get("pid"), manifest.get("host")
    if isinstance(pid, int) and host == socket.gethostname() and not pid_alive(pid):
        return CRASHED
    age = heartbeat_age_s(manifest, now)
    interval = float(manifest.get("heartbeat_s") or DEFAULT_HEARTBEAT_S)
    if age is None or age > STALE_INTERVALS * interval:
        return CRASHED
    return RUNNING


def describe(manifest: dict[str, Any], now: datetime | None = None) -> str:
    """One line on how a run stands, for messages (`crashed (pid 123 on host-a is gone)`)."""
    status = effective_status(manifest, now)
    where = f"pid {manifest.get('pid')} on {manifest.get('host')}"
    if status == CRASHED:
        age = heartbeat_age_s(manifest, now)
        beat = f", last heartbeat {age:.0f} s ago" if age is not None else ""
        return f"crashed ({where} is gone{beat})"
    if status == RUNNING:
        return f"running ({where})"
    reason = manifest.get("error")
    return f"{status} ({reason})" if reason and status != COMPLETED else status
