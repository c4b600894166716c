"""The socsim command as a user meets it: one-line errors with status 2, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def socsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sim", *args, "run.progress=false"], cwd=cwd, capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("scenario.roundz=3", "scenario.roundz: unknown key"),
        ("scenario.rounds=abc", "scenario.rounds: Input should be a valid integer"),
        ("scenario.rounds=0", "scenario.rounds: Input should be greater than or equal to 1"),
        ("graph=erdos_renyi graph.p=1.5", "graph.p: Input should be less than or equal to 1"),
        ("population.mix={tit_for_tat:3}", "population.mix counts sum to 3 but population.size is 20"),
        ("population.mix={llm:20}", "'llm' agents need a model"),
        ("graph=edgelist", "graph.path: missing value"),
        ("population.source=missing.csv", "persona file missing.csv: not found"),
        ("scenario=no_such_game", "Could not find 'scenario/no_such_game'"),
    ],
)
def test_bad_input_is_one_line_status_2_and_no_run_dir(tmp_path, override, expected):
    result = socsim(*override.split(), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # Hydra's output dir was removed, nothing written


def test_default_run_lands_in_hydra_output_dir(tmp_path):
    result = socsim("population.size=10", "scenario.rounds=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = next((tmp_path / "outputs").glob("*/*/manifest.json"))
    assert json.loads(manifest.read_text())["status"] == "completed"


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = socsim("--cfg", "job", "scenario.rounds=4", cwd=tmp_path)
    assert result.returncode == 0
    assert "rounds: 4" in result.stdout and "kind: complete" in result.stdout


def test_experiment_yaml_in_a_users_folder(tmp_path):
    (tmp_path / "exp.yaml").write_text(
        "defaults:\n  - config\n  - override graph: watts_strogatz\n  - _self_\n"
        "seed: 5\npopulation:\n  size: 10\n  mix: {always_defect: 5, tit_for_tat: 5}\n"
        "graph:\n  k: 4\nscenario:\n  game: bos\n  rounds: 3\n"
    )
    result = socsim("--config-dir", str(tmp_path), "--config-name", "exp", f"run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "out" / "manifest.json").read_text())["config"]
    assert config["graph"] == {"kind": "watts_strogatz", "k": 4, "p": 0.1}
    assert config["scenario"]["game"] == "bos" and config["seed"] == 5


def test_multirun_sweep_writes_one_run_per_job(tmp_path):
    result = socsim("-m", "seed=1,2", "population.size=6", "scenario.rounds=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seeds = sorted(json.loads(p.read_text())["seed"] for p in (tmp_path / "multirun").glob("*/*/*/manifest.json"))
    assert seeds == [1, 2]


def test_existing_run_dir_is_not_overwritten_silently(tmp_path):
    assert socsim("population.size=6", "scenario.rounds=1", f"run.dir={tmp_path / 'r'}", cwd=tmp_path).returncode == 0
    again = socsim("population.size=6", "scenario.rounds=1", f"run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    assert socsim("population.size=6", "scenario.rounds=1", f"run.dir={tmp_path / 'r'}", "run.overwrite=true",
                  cwd=tmp_path).returncode == 0  # fmt: skip
