"""socsim-resume and socsim-fork as a user meets them: what they accept, what they refuse (one line,
status 2, nothing changed), and what they write; a failed run and a run stopped mid-step (a budget)
resume to the uninterrupted tables; a fork stacks beside its parent in analysis."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analysis import load
from scenarios.donor_game import DonorGame
from scenarios.ipd import IteratedGame
from sim import checkpoint
from sim.config import ConfigError
from sim.resume import ResumeError, fork, resume
from sim.status import now_iso
from sim.stop import RunStopped
from tests.contract import assert_same_rows, read_table, run_with, stop_after_planning

BIN = Path(sys.executable).parent
QUIET = ["run.progress=false", "run.log_every=0"]
IPD = ["scenario=ipd", "population.size=8", "scenario.rounds=8", "seed=2", "run.checkpoint_every=2"]
# the paper's 12 agents, 3 generations of 3 rounds: steps 0-2, 3-5, 6-8
DONOR = ["scenario=donor_game", "scenario.rounds=3", "scenario.generations=3", "seed=4", "run.checkpoint_every=1",
         "run.keep_checkpoints=all"]  # fmt: skip


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def command(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(run_dir)): (p.stat().st_mtime_ns, p.stat().st_size) for p in run_dir.rglob("*")}


@pytest.fixture(scope="module")
def ipd_reference(tmp_path_factory) -> Path:
    return run_with(IPD, tmp_path_factory.mktemp("ipd") / "run")


@pytest.fixture
def interrupted(tmp_path, monkeypatch) -> Path:
    stop_after_planning(monkeypatch, IteratedGame, 5)
    with pytest.raises(RunStopped):
        run_with(IPD, tmp_path / "run")
    monkeypatch.undo()
    return tmp_path / "run"


# ---- resume ----------------------------------------------------------------------------------------
def test_resume_refuses_a_key_that_changes_the_results(interrupted):
    before = snapshot(interrupted)
    result = command("socsim-resume", str(interrupted), "scenario.rounds=9")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("socsim-resume: error: scenario.rounds: would change the run's results")
    assert f"socsim-fork {interrupted} --at STEP" in lines[0]
    assert snapshot(interrupted) == before


def test_resume_accepts_execution_keys_and_rejects_unknown_ones(interrupted, ipd_reference):
    with pytest.raises(ConfigError, match=r"^run\.flush_rowz: would change"):
        resume(interrupted, ["run.flush_rowz=3"])
    with pytest.raises(ConfigError, match=r"^backend\.timeout_s: Input should be greater than 0"):
        resume(interrupted, ["backend.timeout_s=-1"])
    resume(interrupted, [*QUIET, "run.flush_rows=7", "run.checkpoint_every=1", "backend.timeout_s=5"])
    done = manifest(interrupted)
    assert done["config"]["run"]["flush_rows"] == 7 and done["resumed"][0]["after"] == "interrupted"
    assert_same_rows(read_table(interrupted, "interactions"), read_table(ipd_reference, "interactions"))


def test_resuming_a_completed_run_says_so_and_changes_nothing(ipd_reference):
    before = snapshot(ipd_reference)
    result = command("socsim-resume", str(ipd_reference))
    assert result.returncode == 0 and "has already completed; nothing to do" in result.stderr
    assert snapshot(ipd_reference) == before


def test_a_running_run_is_not_resumed_under_its_feet(interrupted):
    alive = {**manifest(interrupted), "status": "running", "pid": os.getpid(), "host": socket.gethostname(),
             "heartbeat_at": now_iso(), "heartbeat_s": 5.0}  # fmt: skip
    (interrupted / "manifest.json").write_text(json.dumps(alive))
    with pytest.raises(ResumeError, match=rf"is still running \(pid {os.getpid()} on "):
        resume(interrupted)


def test_a_failed_run_resumes(tmp_path, monkeypatch, ipd_reference):
    original = IteratedGame.resolve

    def broken(self, world, step, *args):
        if step == 5:
            raise RuntimeError("boom at step 5")
        return original(self, world, step, *args)

    monkeypatch.setattr(IteratedGame, "resolve", broken)
    with pytest.raises(RuntimeError, match="boom"):
        run_with(IPD, tmp_path / "run")
    monkeypatch.undo()
    assert manifest(tmp_path / "run")["status"] == "failed"
    resume(tmp_path / "run", QUIET)
    assert_same_rows(read_table(tmp_path / "run", "interactions"), read_table(ipd_reference, "interactions"))


def test_a_stop_after_the_world_changed_resumes_from_the_previous_checkpoint(tmp_path, monkeypatch, ipd_reference):
    """A stop raised mid-resolve (the world half updated) writes no checkpoint of that world: the run
    says so with the stop's own status and code (a budget here) and resumes from the last one."""
    original = IteratedGame.resolve

    def over_budget(self, world, step, *args):
        result = original(self, world, step, *args)
        if step == 5:
            raise RunStopped("budget_exhausted", 3, "token budget spent")
        return result

    monkeypatch.setattr(IteratedGame, "resolve", over_budget)
    with pytest.raises(RunStopped) as stopped:
        run_with(IPD, tmp_path / "run")
    monkeypatch.undo()
    assert stopped.value.exit_code == 3
    after = manifest(tmp_path / "run")
    assert after["status"] == "budget_exhausted" and after["error"] == "token budget spent"
    assert checkpoint.steps(tmp_path / "run") == [4]  # not 5: that world was already touched
    resume(tmp_path / "run", QUIET)
    assert_same_rows(read_table(tmp_path / "run", "interactions"), read_table(ipd_reference, "interactions"))


# ---- fork ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def donor_parent(tmp_path_factory) -> Path:
    return run_with(DONOR, tmp_path_factory.mktemp("donor") / "parent")


def test_a_fork_copies_the_steps_before_it_and_stacks_beside_its_parent(donor_parent, tmp_path):
    """What if donations had been worth three times as much from generation 2 on (step 3)?"""
    out = tmp_path / "fork"
    result = command("socsim-fork", str(donor_parent), "--at", "3", "--out", str(out), "scenario.multiplier=3",
                     *QUIET)  # fmt: skip
    assert result.returncode == 0, result.stderr
    parent, child = manifest(donor_parent), manifest(out)
    assert child["status"] == "completed" and child["run_id"] != parent["run_id"]
    assert child["forked_from"]["run_id"] == parent["run_id"] and child["forked_from"]["step"] == 3
    assert child["config"]["scenario"]["multiplier"] == 3.0
    for table in ("interactions", "states", "strategies"):
        a, b = read_table(donor_parent, table), read_table(out, table)
        assert set(b["run_id"]) == {child["run_id"]}
        assert_same_rows(a.filter(pl.col("step") < 3).drop("run_id"), b.filter(pl.col("step") < 3).drop("run_id"))
        assert child["totals"]["rows"][table] == b.height
    later = [read_table(d, "interactions").filter(pl.col("step") >= 3).drop("run_id") for d in (donor_parent, out)]
    assert not later[0].equals(later[1])  # the multiplier changed what followed
    both = load(donor_parent, out)
    meta = both.runs.select("run_id", "forked_from", "forked_at", "param_multiplier").sort("forked_at", nulls_last=True)
    assert meta.rows() == [(child["run_id"], parent["run_id"], 3, 3.0), (parent["run_id"], None, None, 2.0)]
    assert both.interactions.select(pl.col("run_id").n_unique()).collect().item() == 2


def test_an_interrupted_fork_resumes_to_the_same_tables(donor_parent, tmp_path, monkeypatch):
    whole = fork(donor_parent, 3, tmp_path / "whole", ["scenario.multiplier=3", *QUIET])
    stop_after_planning(monkeypatch, DonorGame, 6)
    with pytest.raises(RunStopped):
        fork(donor_parent, 3, tmp_path / "stopped", ["scenario.multiplier=3", *QUIET])
    monkeypatch.undo()
    resume(tmp_path / "stopped", QUIET)
    assert manifest(tmp_path / "stopped")["run_id"] == manifest(whole)["run_id"]
    for table in ("interactions", "states", "strategies"):
        assert_same_rows(read_table(tmp_path / "stopped", table), read_table(whole, table), table)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--at", "3", "population.size=14"], "population.size: cannot change in a fork"),
        (["--at", "3", "seed=5"], "seed: cannot change in a fork"),
        (["--at", "3", "scenario=ipd"], "scenario: cannot change in a fork"),
        (["--at", "3", "graph=watts_strogatz"], "graph: cannot change in a fork"),
        (["--at", "4", "scenario.rounds=4"], "scenario.rounds: cannot change at step 4: the run has changed the world"),
        (["--at", "3", "scenario.agents_per_generation=14"], "scenario.agents_per_generation"),
        (["--at", "3", "scenario.multiplyer=3"], "scenario.multiplyer: unknown key"),
        (["--at", "30"], "--at 30: "),
    ],
)
def test_a_fork_refuses_what_cannot_change_in_one_line(donor_parent, tmp_path, args, expected):
    out = tmp_path / "fork"
    result = command("socsim-fork", str(donor_parent), "--out", str(out), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("socsim-fork: error: ") and expected in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_a_forked_parameter_the_world_holds_takes_effect(tmp_path):
    """Deffuant keeps each agent's bound in the world (derived from epsilon at the start): a fork with
    another epsilon gets the new bounds, while the positions continue from the parent's."""
    parent = run_with(["scenario=deffuant", "population.size=30", "graph=watts_strogatz", "graph.k=4",
                       "scenario.max_steps=6", "scenario.record_every=1", "run.checkpoint_every=1",
                       "run.keep_checkpoints=all", "seed=9"], tmp_path / "parent")  # fmt: skip
    out = fork(parent, 3, tmp_path / "fork", ["scenario.epsilon=0.6", *QUIET])
    started = checkpoint.read(out, 3)
    assert set(started.arrays["eps"].tolist()) == {0.6}
    assert checkpoint.read(parent, 3).arrays["eps"].tolist() == [0.2] * 30
    assert (started.arrays["positions"] == checkpoint.read(parent, 3).arrays["positions"]).all()
    before, after = (read_table(d, "states").filter(pl.col("step") == 3).drop("run_id") for d in (parent, out))
    assert before.equals(after)  # the state both start from
    moved = [read_table(d, "states").filter(pl.col("step") == 6)["value"] for d in (parent, out)]
    assert not moved[0].equals(moved[1])


def test_a_fork_at_a_step_without_checkpoint_lists_the_ones_there_are(tmp_path):
    parent = run_with(["scenario=ipd", "population.size=6", "scenario.rounds=6", "run.checkpoint_every=2",
                       "run.keep_checkpoints=all"], tmp_path / "parent")  # fmt: skip
    expected = r"--at 3: .* has no checkpoint at step 3 \(have: 2, 4\); to fork at any step, run with run\.checkp"
    with pytest.raises(ResumeError, match=expected):
        fork(parent, 3, tmp_path / "fork", ["scenario.noise=0.1"])


def test_a_server_outage_stops_the_run_resumably(tmp_path, monkeypatch, ipd_reference):
    """The backend raises BackendOutage when every endpoint stays down; the step loop turns it into status
    interrupted, exit code 75, a checkpoint at the step it abandons."""
    from sim.backends.errors import BackendOutage
    from sim.executors import InProcessExecutor

    original, calls = InProcessExecutor.decide, {"n": 0}

    def decide(self, batches):
        calls["n"] += 1
        if calls["n"] == 6:  # step 5
            raise BackendOutage("every endpoint refused connections for 600 s")
        return original(self, batches)

    monkeypatch.setattr(InProcessExecutor, "decide", decide)
    with pytest.raises(RunStopped) as stopped:
        run_with(IPD, tmp_path / "run")
    monkeypatch.undo()
    assert stopped.value.exit_code == 75
    after = manifest(tmp_path / "run")
    assert after["status"] == "interrupted" and "LLM server outage: every endpoint refused" in after["error"]
    assert after["last_checkpoint"] == 5 and after["totals"]["steps"] == 5
    resume(tmp_path / "run", QUIET)
    assert_same_rows(read_table(tmp_path / "run", "interactions"), read_table(ipd_reference, "interactions"))
