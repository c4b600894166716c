"""Budgets: tokens, requests and wall time. Reached after a step, the run checkpoints and stops with
status budget_exhausted (exit status 3); resumed with a raised budget it ends as an unbudgeted run would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim.config import compose
from sim.resume import resume
from sim.run import run
from sim.stop import RunStopped
from tests.contract import read_table

IPD = ["scenario=ipd", "population.size=4", "population.mix={llm:4}", "scenario.rounds=4", "seed=2",
       "run.progress=false", "run.log_every=0"]  # fmt: skip


def llm(server, tmp_path, name: str) -> list[str]:
    return ["backend=vllm", f"backend.base_url={server.base_url}", f"backend.model={server.model}",
            f"backend.cache_dir={tmp_path / ('cache-' + name)}", f"run.dir={tmp_path / name}"]  # fmt: skip


def rows(run_dir):
    return read_table(run_dir, "interactions").drop("run_id", "latency_ms", "cached").sort("step", "actor_id")


@pytest.mark.parametrize("budget", ["backend.max_total_tokens=300", "backend.max_requests=20"])
def test_a_budget_stops_the_run_resumably_and_a_raised_one_finishes_it(fake_openai, tmp_path, budget):
    reference = run(compose([*IPD, *llm(fake_openai, tmp_path, "reference")]))
    key = budget.split("=")[0]
    with pytest.raises(RunStopped) as stopped:
        run(compose([*IPD, *llm(fake_openai, tmp_path, "run"), budget]))
    assert stopped.value.status == "budget_exhausted" and stopped.value.exit_code == 3
    assert f"budget exhausted: {budget} reached" in str(stopped.value)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "budget_exhausted" and 0 < manifest["totals"]["steps"] < 4
    resume(tmp_path / "run", [f"{key}=100000"])
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "completed"
    assert rows(tmp_path / "run").equals(rows(reference))


def test_wall_time_through_the_command_line_exits_3(tmp_path):
    overrides = ["scenario=hegselmann_krause", "population.size=300", "scenario.initial=uniform",
                 "scenario.dimensions=[x]", "scenario.epsilon=0.05", "scenario.tolerance=1e-15",
                 "scenario.max_steps=400", "run.max_wall_time_s=0.000001", f"run.dir={tmp_path / 'run'}",
                 "run.progress=false", "run.log_every=0"]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "sim", *overrides], capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "budget exhausted: run.max_wall_time_s=1e-06 reached" in result.stderr.strip().splitlines()[-1]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["totals"]["steps"] == 1
    resume_cli = [sys.executable, "-c", "from sim.cli import resume_main; resume_main()"]
    again = subprocess.run([*resume_cli, str(tmp_path / "run"), "run.max_wall_time_s=3600"],
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    assert again.returncode == 0, again.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["totals"]["steps"] > 1
