"""Runs that did not complete: `load` leaves them out with a warning unless asked, then shows their status
as it is (a dead `running` run as `crashed`); the report names them."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import AnalysisError, load
from analysis.report import build_report


def set_manifest(run_dir: Path, run_id: str, **fields) -> None:
    path = run_dir / "manifest.json"
    manifest = {**json.loads(path.read_text()), "run_id": run_id, **fields}
    path.write_text(json.dumps(manifest))


@pytest.fixture
def sweep(ipd_run: Path, tmp_path: Path) -> Path:
    """Four copies of one run: completed, crashed (running, its pid gone), interrupted, failed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = tmp_path / "sweep"
    states = {
        "done": {"status": "completed"},
        "killed": {"status": "running", "pid": dead.pid, "host": socket.gethostname(),
                   "heartbeat_at": "2026-11-30T12:00:00.000+00:00", "heartbeat_s": 5.0, "last_checkpoint": 1},
        "stopped": {"status": "interrupted", "error": "interrupted (SIGTERM)"},
        "broken": {"status": "failed", "error": "OSError: [Errno 28] No space left on device"},
    }  # fmt: skip
    for name, fields in states.items():
        shutil.copytree(ipd_run, root / name)
        set_manifest(root / name, name, **fields)
    return root


def test_incomplete_runs_are_left_out_with_a_warning(sweep: Path) -> None:
    with pytest.warns(UserWarning, match=r"left out 3 run\(s\) .* \(1 crashed, 1 failed, 1 interrupted\); pass "
                                         r"include_incomplete=True"):  # fmt: skip
        runs = load(sweep)
    assert runs.run_ids == ["done"]


def test_with_include_incomplete_the_status_column_says_how_each_ended(sweep: Path) -> None:
    runs = load(sweep, include_incomplete=True)
    assert dict(runs.runs.select("run_id", "status").iter_rows()) == {
        "broken": "failed", "done": "completed", "killed": "crashed", "stopped": "interrupted"
    }  # fmt: skip
    statuses = runs.interactions.select("run_id", "status").unique().collect()
    assert dict(statuses.iter_rows())["killed"] == "crashed"


def test_no_completed_run_at_all_is_one_line(sweep: Path) -> None:
    with pytest.raises(AnalysisError, match=r"left out 1 run\(s\) .* \(1 crashed\); no completed run remains"):
        load(sweep / "killed")


def test_the_report_names_a_crashed_run(sweep: Path) -> None:
    page = build_report(sweep / "killed")
    assert "Run killed did not complete: crashed; last checkpoint at step 1." in page
    assert f"socsim-resume {sweep / 'killed'}" in page
