"""Sweeps through Hydra launchers, as a user runs them: submitit_local, joblib, and the Ray launcher against
a real `ray start --head` cluster. Every cell lands in the sweep directory under its own name, `sweep.json`
lists it as completed, and its Parquet equals the same run in-process."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from sim.testing import read_table, run_with
from tests import cli
from tests.sim.ray_head import clean_env

SCIENCE = ["population.size=6", "scenario.rounds=2"]
QUIET = ["run.progress=false", "run.log_every=0"]


def socsim(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return cli.socsim(*args, cwd=cwd, env=env or clean_env(), quiet=QUIET)


def assert_cells_match_in_process(sweep: Path, seeds: list[int], launcher: str, tmp_path: Path) -> None:
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert manifest["status"] == "completed" and manifest["launcher"].endswith(launcher)
    assert [c["name"] for c in manifest["cells"]] == [f"population.size=6,scenario.rounds=2,seed={s}" for s in seeds]
    assert all(c["status"] == "completed" for c in manifest["cells"])
    for cell, seed in zip(manifest["cells"], seeds, strict=True):
        assert cell["params"] == {"seed": seed, "population.size": 6, "scenario.rounds": 2}
        alone = run_with([*SCIENCE, f"seed={seed}"], tmp_path / f"alone-{seed}")
        assert read_table(sweep / cell["run_dir"], "interactions").equals(read_table(alone, "interactions"))
        assert json.loads((sweep / cell["run_dir"] / "manifest.json").read_text())["run_id"] == cell["run_id"]


def test_submitit_local_sweep(tmp_path):
    result = socsim("-m", "hydra/launcher=submitit_local", "seed=1,2", *SCIENCE, "run.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_cells_match_in_process(tmp_path / "sweep", [1, 2], "LocalLauncher", tmp_path)


def test_joblib_sweep_records_every_parallel_cell(tmp_path):
    args = ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3", *SCIENCE, "run.dir=sweep"]
    result = socsim(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_cells_match_in_process(tmp_path / "sweep", [1, 2, 3], "JoblibLauncher", tmp_path)


@pytest.mark.ray
def test_ray_launcher_sweep_on_an_existing_cluster(ray_cluster, ray_launcher_plugin, tmp_path):
    env = ray_cluster.client_env(RAY_ADDRESS=ray_cluster.address, PYTHONPATH=str(ray_launcher_plugin))
    result = socsim("-m", "hydra/launcher=ray", "seed=1,2", *SCIENCE, "run.dir=sweep", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert_cells_match_in_process(tmp_path / "sweep", [1, 2], "RayLauncher", tmp_path)
    # Workers run in the cluster's directory; relative paths still mean the launching directory.
    assert not (ray_cluster.workdir / "sweep").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None,
    reason="hydra-ray-launcher is installed in this environment",
)
def test_a_missing_launcher_plugin_names_the_extra_and_writes_nothing(tmp_path):
    result = socsim("-m", "hydra/launcher=ray", "seed=1,2", *SCIENCE, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("socsim: error: RuntimeError: Unknown plugin class : 'hydra_plugins.hydra_ray_launcher")
    assert line.endswith("(install the launcher: pip install 'socsim[ray-launcher]')")
    assert list(tmp_path.iterdir()) == []
