"""The socsim command as a user meets it: one-line errors with status 2, nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import sim
from sim.config import RunOptions
from tests.cli import socsim


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


def test_multirun_names_each_cell_from_its_overrides_and_lists_it_in_sweep_json(tmp_path):
    result = socsim("-m", "seed=1,2", "population.size=6", "scenario.rounds=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["multirun"]  # no outputs/<date>/ either
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    names = [f"population.size=6,scenario.rounds=2,seed={seed}" for seed in (1, 2)]  # run.* do not name cells
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == names
    manifest = json.loads((sweep / "sweep.json").read_text())
    assert (manifest["status"], manifest["swept"], manifest["counts"]["completed"]) == ("completed", ["seed"], 2)
    for cell, name, seed in zip(manifest["cells"], names, (1, 2), strict=True):
        assert (cell["name"], cell["run_dir"], cell["status"]) == (name, name, "completed")
        assert cell["params"] == {"seed": seed, "population.size": 6, "scenario.rounds": 2}
        run = json.loads((sweep / name / "manifest.json").read_text())
        assert (run["seed"], run["run_id"], run["config"]["run"]["dir"]) == (seed, cell["run_id"], str(sweep / name))


def test_run_dir_is_the_sweep_root_and_is_not_reused_silently(tmp_path):
    args = ("-m", "seed=1,2", "population.size=6", "scenario.rounds=1", "run.dir=sweep")
    assert socsim(*args, cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    cells = {c["name"]: c["status"] for c in json.loads((tmp_path / "sweep" / "sweep.json").read_text())["cells"]}
    assert cells == {"population.size=6,scenario.rounds=1,seed=1": "completed",
                     "population.size=6,scenario.rounds=1,seed=2": "completed"}  # fmt: skip
    again = socsim(*args, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"socsim: error: run.dir {tmp_path / 'sweep'} already holds a sweep; choose another or set run.overwrite=true"
    ]
    assert socsim(*args, "run.overwrite=true", cwd=tmp_path).returncode == 0


def test_a_cell_with_bad_input_fails_alone_and_the_sweep_says_so(tmp_path):
    result = socsim("-m", "scenario.rounds=0,2", "population.size=6", "run.dir=sweep", cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"socsim: error: sweep {tmp_path / 'sweep'}: 1 of 2 cells failed (first: population.size=6,scenario.rounds=0: "
        "scenario.rounds: Input should be greater than or equal to 1 (got 0)); see "
        f"{tmp_path / 'sweep' / 'sweep.json'}"
    )
    assert "Traceback" not in result.stderr
    manifest = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert manifest["status"] == "failed"
    assert [(c["status"], c["input_error"]) for c in manifest["cells"]] == [("failed", True), ("completed", False)]
    assert not (tmp_path / "sweep" / "population.size=6,scenario.rounds=0").exists()  # the failed cell wrote nothing
    assert (tmp_path / "sweep" / "population.size=6,scenario.rounds=2" / "manifest.json").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("run.dir=",), "run.dir: must be a path (leave it out to write to outputs/<date>/<time>)"),
        (
            ("-m", "seed=1,2", "run.dir="),
            "run.dir: must be a path (leave it out to sweep into multirun/<date>/<time>)",
        ),
        (("run.dir=null",), "run.dir: must be a path"),
        (("-m", "seed=1,2", "run.dir=null"), "run.dir: must be a path"),
        (("-m", "seed=1", "run.shards=0,1"), "run.shards: execution options (run.*) cannot be swept"),
        (("-m", "scenario.roundz=1,2"), "scenario.roundz: unknown key"),
    ],
)
def test_refused_sweeps_and_empty_run_dir_are_one_line_and_write_nothing(tmp_path, args, expected):
    result = socsim(*args, "population.size=6", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"socsim: error: {expected}"), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_run_with_run_dir_leaves_no_hydra_output_dir(tmp_path):
    assert socsim("population.size=6", "scenario.rounds=1", "run.dir=mine", cwd=tmp_path).returncode == 0
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_every_execution_option_is_left_out_of_cell_names():
    """A new run.* option must join hydra.job.config.override_dirname.exclude_keys in sim/conf/config.yaml."""
    config = OmegaConf.load(Path(sim.__file__).parent / "conf" / "config.yaml")
    excluded = set(config.hydra.job.config.override_dirname.exclude_keys)
    assert excluded == {"run"} | {f"run.{name}" for name in RunOptions.model_fields}


def test_existing_run_dir_is_not_overwritten_silently(tmp_path):
    assert socsim("population.size=6", "scenario.rounds=1", f"run.dir={tmp_path / 'r'}", cwd=tmp_path).returncode == 0
    again = socsim("population.size=6", "scenario.rounds=1", f"run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert again.returncode == 2 and "already holds a run" in again.stderr
    assert socsim("population.size=6", "scenario.rounds=1", f"run.dir={tmp_path / 'r'}", "run.overwrite=true",
                  cwd=tmp_path).returncode == 0  # fmt: skip
