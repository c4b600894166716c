"""The recorder streams parts atomically and closes the manifest however a run ends."""

from __future__ import annotations

import json
import threading
import time

import polars as pl
import pytest

from scenarios.ipd import IteratedGame
from sim.config import compose
from sim.recorder import WRITERS, Recorder
from sim.run import run
from tests.contract import read_table


def test_parts_stream_with_flat_memory(tmp_path):
    run_dir = run(compose(["population.size=10", "run.flush_rows=90", "scenario.rounds=5", f"run.dir={tmp_path}",
                           "run.progress=false"]))  # fmt: skip
    parts = sorted((run_dir / "interactions").iterdir())
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(len(parts))] and len(
        parts
    ) == 5  # one per step of 90 rows
    assert read_table(run_dir, "interactions").height == 45 * 2 * 5
    assert not list(run_dir.rglob("*.tmp"))


def test_a_step_larger_than_flush_rows_is_written_as_equal_parts_in_order(tmp_path):
    """90 rows a step with flush_rows=40: three parts of 30 rows each, which read back as the step."""
    run_dir = run(compose(["population.size=10", "run.flush_rows=40", "scenario.rounds=2", f"run.dir={tmp_path}",
                           "run.progress=false"]))  # fmt: skip
    parts = sorted((run_dir / "interactions").iterdir())
    assert [pl.read_parquet(p).height for p in parts] == [30] * 6
    whole = read_table(run_dir, "interactions")
    assert pl.concat([pl.read_parquet(p) for p in parts]).equals(whole)
    assert whole["step"].to_list() == [0] * 90 + [1] * 90
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["totals"]["parts"]["interactions"] == 6 and manifest["totals"]["rows"]["interactions"] == 180


def test_failed_run_keeps_complete_parts_and_says_why(tmp_path, monkeypatch):
    original = IteratedGame.resolve

    def broken(self, world, step, *args):
        if step == 3:
            raise RuntimeError("boom at step 3")
        return original(self, world, step, *args)

    monkeypatch.setattr(IteratedGame, "resolve", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run(compose(["population.size=6", "run.flush_rows=30", f"run.dir={tmp_path}", "run.progress=false"]))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "boom at step 3" in manifest["error"]
    rows = read_table(tmp_path, "interactions")
    assert sorted(rows["step"].unique().to_list()) == [0, 1, 2]  # complete steps only
    assert manifest["totals"]["rows"]["interactions"] == rows.height


def test_manifest_records_versions_config_and_git(tmp_path):
    run(compose(["population.size=4", "scenario.rounds=1", f"run.dir={tmp_path}", "run.progress=false"]))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["scenario"]["rounds"] == 1 and manifest["config"]["run"]["dir"] == str(tmp_path)
    assert {"socsim", "numpy", "polars", "ray"} <= set(manifest["versions"])
    assert manifest["started_at"] <= manifest["ended_at"]
    agents = pl.read_parquet(tmp_path / "agents.parquet")
    assert agents["agent_id"].to_list() == [0, 1, 2, 3] and "value_benevolence" in agents.columns


def test_graph_is_recorded_and_read_back_by_analysis(tmp_path):
    from analysis import load
    from analysis.plots import edges_from_config
    from scenarios.base import SocialGraph

    run(compose(["graph=watts_strogatz", "population.size=30", "scenario.rounds=1", "seed=3", f"run.dir={tmp_path}",
                 "run.progress=false"]))  # fmt: skip
    edges = pl.read_parquet(tmp_path / "graph.parquet")
    assert edges.height == 30 * 6 // 2 and (edges["source"] < edges["target"]).all()
    runs = load(tmp_path)
    rebuilt = edges_from_config(runs.manifest(), runs.agents.collect(), run_dir=tmp_path)
    assert SocialGraph.from_edges(30, rebuilt).edges.tolist() == edges.to_numpy().tolist()


def test_overwrite_replaces_every_part_of_the_old_run(tmp_path):
    base = ["population.size=10", "run.flush_rows=90", f"run.dir={tmp_path}", "run.progress=false"]
    run(compose([*base, "scenario.rounds=5"]))
    assert len(list((tmp_path / "interactions").iterdir())) == 5
    (tmp_path / "notes.txt").write_text("mine")
    run(compose([*base, "scenario.rounds=2", "run.overwrite=true"]))
    assert len(list((tmp_path / "interactions").iterdir())) == 2  # no stale parts from the first run
    assert read_table(tmp_path, "interactions")["step"].max() == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only run files are removed


def test_an_ordered_job_waits_for_every_part_before_it_and_skips_after_a_failure(tmp_path):
    """Parts are written two at a time; a checkpoint (an ordered job) still follows all of them, and
    is not written once a part before it failed."""
    recorder = Recorder(tmp_path, {}, flush_rows=1)
    done: list[str] = []
    both_running = threading.Barrier(2, timeout=10) if WRITERS > 1 else None

    def part(name: str, seconds: float) -> None:
        if both_running is not None:
            both_running.wait()  # the two parts do run side by side
        time.sleep(seconds)
        done.append(name)

    recorder.submit(part, "slow part", 0.3, ordered=False)
    recorder.submit(part, "fast part", 0.0, ordered=False)
    recorder.submit(done.append, "checkpoint")
    recorder.drain()
    assert done[-1] == "checkpoint" and sorted(done[:2]) == ["fast part", "slow part"]

    def broken() -> None:
        time.sleep(0.1)
        raise OSError(28, "No space left on device")

    recorder.submit(broken, ordered=False)
    recorder.submit(done.append, "checkpoint after a failed part")
    with pytest.raises(OSError, match="No space left"):
        recorder.drain()
    recorder.drain()
    assert "checkpoint after a failed part" not in done
    recorder.abandon()
