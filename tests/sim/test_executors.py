"""Executors: more shards than agents; the in-process executor under a running event loop (Jupyter)."""

from __future__ import annotations

import asyncio

import pytest

from sim.executors import ShardError
from tests.contract import read_table, run_with


def test_more_shards_than_agents(tmp_path, ray_session):
    overrides = ["population.size=3", "scenario.rounds=2", "run.shards=5", "run.shard_cpus=0.2", "seed=2"]
    wide = run_with(overrides, tmp_path / "wide")
    local = run_with(["population.size=3", "scenario.rounds=2", "seed=2"], tmp_path / "local")
    assert read_table(wide, "interactions").equals(read_table(local, "interactions"))


def test_too_many_shards_for_the_cluster_fails_at_once(tmp_path, ray_session):
    with pytest.raises(ShardError, match=r"run.shards=5 x run.shard_cpus=1.0 needs 5 CPUs but the Ray cluster has 2"):
        run_with(["population.size=6", "run.shards=5", "seed=2"], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_in_process_run_inside_a_running_event_loop(tmp_path):
    """Notebooks call run() while their own asyncio loop is running."""

    async def notebook_cell():
        return run_with(["population.size=4", "scenario.rounds=2", "seed=2"], tmp_path / "nb")

    run_dir = asyncio.run(notebook_cell())
    assert read_table(run_dir, "interactions").height == 6 * 2 * 2
