"""A run's status never lies: a `running` manifest whose process is gone reads as `crashed`, for the
engine's readers (socsim-resume) and for analysis alike (which restates the rule, never importing sim)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analysis.load import effective_status as analysis_status
from sim.status import describe, effective_status

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HERE = socket.gethostname()


def running(pid: int, host: str = HERE, beat_s_ago: float = 1.0, interval: float = 5.0) -> dict:
    beat = (NOW - timedelta(seconds=beat_s_ago)).isoformat(timespec="milliseconds")
    return {"status": "running", "pid": pid, "host": host, "heartbeat_at": beat, "heartbeat_s": interval}


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    return proc.pid


@pytest.fixture
def zombie_pid():
    """A child that exited and is not reaped yet: its pid still answers kill(pid, 0)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, 0)  # still "exists"
    yield proc.pid
    proc.wait()


def cases(dead: int, zombie: int) -> list[tuple[dict, str]]:
    alive = os.getpid()
    return [
        ({"status": "completed"}, "completed"),
        ({"status": "interrupted", "error": "interrupted (SIGTERM)"}, "interrupted"),
        ({"status": "failed"}, "failed"),
        (running(alive), "running"),
        (running(dead), "crashed"),  # same host, dead pid: at once, whatever the heartbeat says
        (running(zombie), "crashed"),
        (running(dead, host="elsewhere"), "running"),  # another host's pid says nothing here
        (running(dead, host="elsewhere", beat_s_ago=31), "crashed"),  # 6 intervals of 5 s without a beat
        (running(dead, host="elsewhere", beat_s_ago=31, interval=60), "running"),
        (running(alive, beat_s_ago=3600), "crashed"),  # alive but silent for an hour: hung, or pid reused
        ({"status": "running", "pid": dead, "host": "elsewhere"}, "crashed"),  # no heartbeat at all
        ({}, "unknown"),
    ]


def test_effective_status(dead_pid, zombie_pid):
    for manifest, expected in cases(dead_pid, zombie_pid):
        assert effective_status(manifest, NOW) == expected, manifest


def test_analysis_reads_status_by_the_same_rule(dead_pid, zombie_pid):
    for manifest, expected in cases(dead_pid, zombie_pid):
        assert analysis_status(manifest, NOW) == expected, manifest


def test_describe_names_the_process(dead_pid):
    assert describe(running(dead_pid), NOW) == f"crashed (pid {dead_pid} on {HERE} is gone, last heartbeat 1 s ago)"
    assert describe({"status": "failed", "error": "OSError: disk full"}) == "failed (OSError: disk full)"
