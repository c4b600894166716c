"""The worked example of a scenario outside the repository (examples/public_goods), installed as a user
would install it, found by `socsim scenario=public_goods`, and tested with socsim's shared contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "public_goods"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    """pip-installs the example (not in editable mode) into a folder of its own; the environment to use it."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return {**os.environ, "PYTHONPATH": str(target)}


def test_an_installed_scenario_runs_from_the_command_line(installed, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sim", "scenario=public_goods", "population.size=8", "seed=1",
         f"run.dir={tmp_path / 'run'}", "run.progress=false"],
        env=installed, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["scenario"] == "public_goods"
    assert manifest["config"]["scenario"]["multiplier"] == 1.6  # the package's own YAML gave the defaults


def test_the_example_passes_socsims_scenario_contract(installed):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env=installed, cwd=EXAMPLE, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
