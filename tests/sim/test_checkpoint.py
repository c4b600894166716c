"""Checkpoint files, the checkpoint cadence, the run totals' round trip, stop signals and the heartbeat."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter

import numpy as np
import polars as pl
import pytest

from agents.graph import SocialGraph
from sim import checkpoint
from sim.checkpoint import AUTO_MIN_INTERVAL_S, OVERHEAD_FACTOR, Cadence, Checkpoint, CheckpointError
from sim.recorder import Recorder
from sim.scheduler import Totals
from sim.stop import RunStopped, StopSignals


def sample(step: int = 4, run_id: str = "r1") -> Checkpoint:
    arrays = {
        "resources": np.linspace(0, 1, 5),
        "reputation": np.array([[True, False], [False, True]]),
        "codes": np.arange(5, dtype=np.int16),
        "empty": np.zeros(0, np.int64),
        "nested.values": np.array([np.nan, 1.5]),
    }
    data = {"generation": 2, "strategy": {"__text__": ["a", None]}, "parents": [None, ["1_2"]]}
    position = {"parts": {"interactions": 3}, "rows": {"interactions": 90}}
    return Checkpoint(step, run_id, arrays, data, {"steps": step}, position, 1.5)


def test_a_checkpoint_reads_back_exactly(tmp_path):
    written = sample()
    folder = checkpoint.write(tmp_path, written)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.json", "world.npz"]
    back = checkpoint.read(tmp_path, 4, "r1")
    assert (back.step, back.run_id, back.world, back.totals, back.recorder, back.wall_time_s) == (
        4,
        "r1",
        written.world,
        written.totals,
        written.recorder,
        1.5,
    )
    assert back.arrays.keys() == written.arrays.keys()
    for name, array in written.arrays.items():
        assert back.arrays[name].dtype == array.dtype and np.array_equal(back.arrays[name], array, equal_nan=True)


def test_object_arrays_are_refused_rather_than_pickled(tmp_path):
    bad = sample()
    bad.arrays["text"] = np.array(["x", None], dtype=object)
    with pytest.raises(CheckpointError, match="'text': an object array cannot be checkpointed"):
        checkpoint.write(tmp_path, bad)
    assert not (tmp_path / checkpoint.FOLDER).exists()  # refused before anything is written


def test_unfinished_checkpoints_are_invisible_and_pruned(tmp_path):
    checkpoint.write(tmp_path, sample(2))
    root = tmp_path / checkpoint.FOLDER
    (root / ".step-00000004.tmp").mkdir()  # a write killed before its rename
    (root / ".step-00000004.tmp" / "world.npz").write_bytes(b"half")
    (root / "step-00000006").mkdir()  # a folder without its checkpoint.json
    assert checkpoint.steps(tmp_path) == [2] and checkpoint.latest(tmp_path).step == 2
    checkpoint.prune(tmp_path, "all")
    assert not (root / ".step-00000004.tmp").exists()


def test_keep_last_keeps_the_newest_and_keep_all_keeps_every_one(tmp_path):
    for step in (2, 4, 6):
        checkpoint.write(tmp_path / "all", sample(step))
        checkpoint.prune(tmp_path / "all", "all")
        checkpoint.write(tmp_path / "last", sample(step))
        checkpoint.prune(tmp_path / "last", "last")
    assert checkpoint.steps(tmp_path / "all") == [2, 4, 6]
    assert checkpoint.steps(tmp_path / "last") == [6]


def test_a_missing_or_foreign_checkpoint_is_one_line(tmp_path):
    checkpoint.write(tmp_path, sample(2))
    checkpoint.write(tmp_path, sample(4))
    with pytest.raises(CheckpointError, match=r"no checkpoint at step 3 \(have: 2, 4\)"):
        checkpoint.read(tmp_path, 3)
    with pytest.raises(CheckpointError, match="checkpoint of run 'r1', not 'other'"):
        checkpoint.read(tmp_path, 2, "other")
    meta = tmp_path / checkpoint.FOLDER / "step-00000004" / "checkpoint.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 99}))
    with pytest.raises(CheckpointError, match="checkpoint format 99"):
        checkpoint.read(tmp_path, 4)


def test_cadence_every_k_steps_and_only_when_stopped():
    every3 = Cadence(3, has_llm=False)
    assert [s for s in range(1, 10) if every3.due(s, 0.1)] == [3, 6, 9]
    never = Cadence(0, has_llm=True)
    assert not any(never.due(s, 100.0) for s in range(1, 10))


def test_automatic_cadence_every_step_with_llm_agents_else_at_most_five_percent():
    assert Cadence(None, has_llm=True).every == 1
    auto = Cadence(None, has_llm=False)
    assert not auto.due(1, AUTO_MIN_INTERVAL_S - 1)
    assert auto.due(2, 1.0)  # a minute of stepping since the start
    auto.written(cost_s=10.0)  # an expensive checkpoint: the next one waits 20 times as long
    assert not auto.due(3, OVERHEAD_FACTOR * 10.0 - 1)
    assert auto.due(4, 1.0)


def test_totals_round_trip_through_json():
    totals = Totals(steps=3, decisions=Counter({"llm": 4, "tit_for_tat": 2}), llm_calls=4, llm_cached=1,
                    prompt_tokens=40, completion_tokens=8, llm_latency_ms=12.5,
                    fallbacks=Counter({"timeout": 1}))  # fmt: skip
    back = Totals.from_state(json.loads(json.dumps(totals.state())))
    assert back == totals and Totals.from_state(None) == Totals()


def test_a_signal_waits_for_the_step_boundary_unless_the_run_is_interruptible():
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.requested is not None and signals.requested.exit_code == 143  # noted, not raised
        with pytest.raises(RunStopped) as stopped:
            signals.check()
        assert stopped.value.status == "interrupted" and "SIGTERM" in stopped.value.reason
    with StopSignals() as signals, pytest.raises(RunStopped) as stopped, signals.interruptible():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # interrupted at once
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_signals_are_left_alone_outside_the_main_thread():
    seen = {}

    def worker():
        with StopSignals() as signals:
            seen["installed"] = bool(signals._previous)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == {"installed": False}


def test_the_heartbeat_thread_refreshes_the_manifest(tmp_path):
    recorder = Recorder(tmp_path, {"interactions": pl.Schema({"run_id": pl.String, "step": pl.Int64})}, 10)
    recorder.start({"run_id": "r"}, pl.DataFrame({"agent_id": [0, 1]}), SocialGraph.complete_graph(2), 0.05)
    first = json.loads((tmp_path / "manifest.json").read_text())
    assert first["status"] == "running" and first["pid"] == os.getpid() and first["heartbeat_s"] == 0.05
    recorder.start_heartbeat()
    deadline = time.monotonic() + 30
    while json.loads((tmp_path / "manifest.json").read_text())["heartbeat_at"] == first["heartbeat_at"]:
        assert time.monotonic() < deadline, "the heartbeat never refreshed"
        time.sleep(0.02)
    recorder.finish("completed", {})
    closed = json.loads((tmp_path / "manifest.json").read_text())
    assert closed["status"] == "completed"
    time.sleep(0.2)  # no beat after the end
    assert json.loads((tmp_path / "manifest.json").read_text()) == closed


def test_after_a_failed_write_no_later_job_runs(tmp_path):
    """A checkpoint queued after a part that failed to be written must not land: it would count it."""
    recorder = Recorder(tmp_path, {"interactions": pl.Schema({"run_id": pl.String, "step": pl.Int64})}, 10)
    ran = []

    def full_disk():
        raise OSError(28, "No space left on device")

    recorder.submit(full_disk)
    recorder.submit(ran.append, "checkpoint")
    with pytest.raises(OSError, match="No space left"):
        recorder.drain()
    recorder.abandon()
    assert ran == []
