"""The sweep manifest under parallel cells: many processes record their cells' start and end at once, and
sweep.json ends up listing every one of them, completed, with its parameters."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

from sim import sweep

EXCLUDE = ["run", "run.dir", "run.progress"]


def sweep_config(root: Path, task: list[str], num: int = 0, subdir: str = "") -> DictConfig:
    return OmegaConf.create(
        {
            "run": {"dir": str(root), "overwrite": False},
            "hydra": {
                "runtime": {"cwd": str(root.parent)},
                "sweep": {"dir": root.name, "subdir": subdir},
                "overrides": {"task": task},
                "job": {"num": num, "config": {"override_dirname": {"exclude_keys": EXCLUDE}}},
                "launcher": {"_target_": "some.Launcher"},
            },
        }
    )


def record_cells(root: Path, nums: list[int]) -> None:
    for num in nums:
        overrides = [f"seed={num}", "scenario.noise=0.05", "run.progress=false"]
        config = sweep_config(root, overrides, num, subdir=f"scenario.noise=0.05,seed={num}")
        sweep.start_cell(config)
        done = JobReturn(status=JobStatus.COMPLETED)
        done.return_value = None
        sweep.end_cell(config, done)


def test_parallel_cells_are_all_recorded(tmp_path):
    root = tmp_path / "sweep"
    sweep.open_sweep(sweep_config(root, ["seed=range(48)", "scenario.noise=0.05"]))
    batches = [list(range(start, 48, 6)) for start in range(6)]
    with ProcessPoolExecutor(6) as pool:
        list(pool.map(record_cells, [root] * len(batches), batches))
    manifest = sweep.read(root)
    assert [c["num"] for c in manifest["cells"]] == list(range(48))
    assert manifest["counts"] == {"running": 0, "completed": 48, "failed": 0}
    assert manifest["swept"] == ["seed"]
    cell = manifest["cells"][7]
    assert cell["params"] == {"seed": 7, "scenario.noise": 0.05}  # run.* are execution options
    assert cell["run_dir"] == "scenario.noise=0.05,seed=7"
    assert not list(root.glob(".sweep.json.*.tmp"))


def test_a_failed_cell_keeps_its_one_line_error_and_a_lost_cell_is_failed_at_close(tmp_path):
    root = tmp_path / "sweep"
    sweep.open_sweep(sweep_config(root, ["seed=1,2,3"]))
    bad, lost = sweep_config(root, ["seed=1"], 0, "seed=1"), sweep_config(root, ["seed=2"], 1, "seed=2")
    sweep.start_cell(bad)
    failed = JobReturn(status=JobStatus.FAILED)
    failed.return_value = sweep.CellInputError("scenario.rounds: Input should be greater than or equal to 1 (got 0)")
    sweep.end_cell(bad, failed)
    sweep.start_cell(lost)
    manifest = sweep.close_sweep(root)
    assert manifest["status"] == "failed"
    first, second = manifest["cells"]
    assert (first["status"], first["input_error"]) == ("failed", True)
    assert first["error"] == "scenario.rounds: Input should be greater than or equal to 1 (got 0)"
    assert (second["status"], second["input_error"]) == ("failed", False)
    assert "lost" in second["error"]
    assert json.loads((root / "sweep.json").read_text()) == manifest
    assert root not in sweep.open_sweeps()
